#!/usr/bin/env bash
# Benchmarks durable decisions over HTTP on SQLite and (optionally)
# PostgreSQL, for docs/benchmarks.md.
#
#   scripts/bench.sh                      # SQLite only
#   MARGEN_BENCH_POSTGRES=postgres://root@127.0.0.1:5432/test?sslmode=disable scripts/bench.sh
#
# For each engine it builds margen and margen-load, creates a fresh database
# (a temporary SQLite file; a new schema on the PostgreSQL server, dropped at
# the end), an organisation, 8 frontline members with one token each and a
# policy with large budgets (per member per day, per customer per month),
# starts `margen serve` on a loopback port and runs:
#
#   closed   C connections, N decisions, over the 8 members and 1,000 customers
#   open     a fixed rate of half the closed-loop throughput for DUR (p99 at half load)
#   hot      C connections, N decisions, all on one member's budget and one customer
#
# Knobs (environment): N (default 200000), C (256), DUR (10s), ENGINES
# ("sqlite postgres"). Everything runs on 127.0.0.1 and stops by itself;
# temporary files, the server and the schema are removed on exit. The load
# generator runs on the same machine as the server and takes CPU from it.
set -euo pipefail

N=${N:-200000}
C=${C:-256}
DUR=${DUR:-10s}
ENGINES=${ENGINES:-sqlite postgres}
PG=${MARGEN_BENCH_POSTGRES:-}

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
server=""
schema=""

cleanup() {
	if [[ -n $server ]] && kill -0 "$server" 2>/dev/null; then
		kill -TERM "$server" 2>/dev/null || true
		wait "$server" 2>/dev/null || true
	fi
	if [[ -n $schema ]]; then
		PGOPTIONS="-c client_min_messages=warning" psql "$PG" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "building margen and margen-load..."
(cd "$root" && go build -o "$tmp/margen" ./cmd/margen && go build -o "$tmp/margen-load" ./cmd/margen-load)
M="$tmp/margen"
L="$tmp/margen-load"

cat >"$tmp/policy.yaml" <<'EOF'
currency: EUR
actions:
  - id: courtesy_gift
    label: {es: "Cortesía", en: "Courtesy gift"}
roles:
  - id: frontline
    label: {es: "Primera línea", en: "Frontline"}
  - id: owner
    label: {es: "Dueña", en: "Owner"}
    inherits: [frontline]
budgets:
  - id: member_daily
    scope: member
    period: day
    limit: 1000000000000
  - id: customer_monthly
    scope: customer
    period: month
    limit: 1000000000000
grants:
  - id: gift
    role: frontline
    actions: [courtesy_gift]
    max_amount: 100000
    budgets: [member_daily, customer_monthly]
EOF

# setup DB: migrate, organisation, members, policy, tokens; prints the tokens
# comma-separated.
setup() {
	local db=$1
	"$M" migrate --db "$db" >/dev/null 2>&1
	"$M" org create --db "$db" --slug bench --name Bench --currency EUR --timezone Europe/Madrid \
		--owner boss --owner-name Boss >/dev/null
	local toks=()
	for i in 1 2 3 4 5 6 7 8; do
		"$M" member add --db "$db" --org bench --login "m$i" --name "M $i" --access frontline --role frontline >/dev/null
	done
	"$M" policy publish --db "$db" --org bench --note bench "$tmp/policy.yaml" >/dev/null
	for i in 1 2 3 4 5 6 7 8; do
		toks+=("$("$M" token create --db "$db" --org bench --member "m$i" --name bench 2>/dev/null)")
	done
	(IFS=,; echo "${toks[*]}")
}

# serve DB: starts the server, sets $server and $url.
serve() {
	local db=$1
	# The rate limits are off: the load generator sends thousands of
	# requests a second with one token from one address, which the default
	# limits (made for people and integrations, not load tests) would refuse.
	MARGEN_RATE_LIMIT_TOKEN=0 MARGEN_RATE_LIMIT_ADDRESS=0 \
		"$M" serve --db "$db" --addr 127.0.0.1:0 >"$tmp/serve.log" 2>&1 &
	server=$!
	for _ in $(seq 1 100); do
		url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$tmp/serve.log" | head -1 || true)
		[[ -n $url ]] && return 0
		kill -0 "$server" 2>/dev/null || break
		sleep 0.1
	done
	echo "margen serve did not start:" >&2
	cat "$tmp/serve.log" >&2
	exit 1
}

stop() {
	kill -TERM "$server" 2>/dev/null || true
	wait "$server" 2>/dev/null || true
	server=""
}

bench() {
	local engine=$1 db=$2
	echo
	echo "=== $engine ==="
	local tokens first
	tokens=$(setup "$db")
	first=${tokens%%,*}
	serve "$db"

	echo "--- closed loop: -c $C -n $N, 8 members, 1000 customers"
	"$L" -url "$url" -token "$tokens" -c "$C" -n "$N" -customers 1000 | tee "$tmp/closed.txt"
	local tput half
	tput=$(awk '/^throughput/ {print $2}' "$tmp/closed.txt")
	half=$(( ${tput%.*} / 2 ))
	[[ $half -lt 1 ]] && half=1

	echo "--- open loop: -rate $half (half of $tput/s) for $DUR"
	"$L" -url "$url" -token "$tokens" -rate "$half" -duration "$DUR" -customers 1000

	echo "--- hot: -c $C -n $N, one member, one customer"
	"$L" -url "$url" -token "$first" -c "$C" -n "$N" -customers 1
	stop

	"$M" ledger check --db "$db" --org bench | tail -3
}

for engine in $ENGINES; do
	case $engine in
	sqlite)
		bench sqlite "$tmp/bench.db"
		;;
	postgres)
		if [[ -z $PG ]]; then
			echo
			echo "=== postgres: skipped (set MARGEN_BENCH_POSTGRES=postgres://...)"
			continue
		fi
		schema="margen_bench_$$"
		PGOPTIONS="-c client_min_messages=warning" psql "$PG" -qc "CREATE SCHEMA $schema" >/dev/null
		sep='?'
		[[ $PG == *\?* ]] && sep='&'
		bench postgres "${PG}${sep}search_path=$schema"
		PGOPTIONS="-c client_min_messages=warning" psql "$PG" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null
		schema=""
		;;
	esac
done
