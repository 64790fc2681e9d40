#!/usr/bin/env bash
# Measures the ratios of docs/benchmarks.md in one run: margen against an
# empty Go HTTP server (scripts/emptyserver) on the same machine, and
# optionally the margen of another git revision, interleaved with this one.
#
#   scripts/ratios.sh                             # this tree, SQLite only
#   BEFORE=4050a12 MARGEN_BENCH_POSTGRES=postgres://root@127.0.0.1:5432/test?sslmode=disable \
#     scripts/ratios.sh                           # before and after, both engines
#
# For each engine and each build ("after" is this tree, "before" is BEFORE,
# exported with git archive and built beside it) it creates a fresh database
# with the same organisation, members and policy as scripts/bench.sh, then:
#
#   empty closed   C connections, N requests against the empty server
#   margen closed  C connections, N decisions over 8 members, 1,000 customers
#   margen open    a fixed rate of half margen's closed-loop rate for DUR
#   empty open     the same rate against the empty server
#
# and prints, per build: decisions/s, the empty server's requests/s and
# their ratio (target >= 0.5 on SQLite); p99 at half margen's rate, the
# empty server's p99 at that rate and their ratio (target <= 4). It also
# runs the policy evaluation benchmark of each build (target <= 1 us with
# three CEL conditions), and times the disk's fdatasync after a small
# batch's writes (scripts/synclat): the floor of a durable answer's latency.
#
# Knobs (environment): N (default 50000), C (256), DUR (10s), ROUNDS (1),
# ENGINES ("sqlite postgres"), BEFORE (a git revision; empty: none).
set -euo pipefail

N=${N:-50000}
C=${C:-256}
DUR=${DUR:-10s}
ROUNDS=${ROUNDS:-1}
ENGINES=${ENGINES:-sqlite postgres}
BEFORE=${BEFORE:-}
PG=${MARGEN_BENCH_POSTGRES:-}

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pids=()
schema=""

cleanup() {
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [[ -n $schema ]]; then
		PGOPTIONS="-c client_min_messages=warning" psql "$PG" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

builds=(after)
echo "building (after: $root)..."
(cd "$root" && go build -o "$tmp/after/margen" ./cmd/margen && go build -o "$tmp/margen-load" ./cmd/margen-load &&
	go build -o "$tmp/emptyserver" ./scripts/emptyserver && go build -o "$tmp/synclat" ./scripts/synclat)
if [[ -n $BEFORE ]]; then
	echo "building (before: $BEFORE)..."
	mkdir -p "$tmp/src-before"
	git -C "$root" archive "$BEFORE" | tar -x -C "$tmp/src-before"
	(cd "$tmp/src-before" && go build -o "$tmp/before/margen" ./cmd/margen)
	builds=(before after)
fi
L="$tmp/margen-load"

echo
echo "=== machine"
echo "nproc $(nproc); $(free -h | awk '/^Mem:/ {print "memory " $2}'); load $(cut -d' ' -f1-3 /proc/loadavg); $(go version)"

echo
echo "=== the disk under a commit: fdatasync after a small batch's log writes (scripts/synclat)"
# The floor of any durable answer's latency: a decision waits for at least
# one such sync (two when it arrives while a batch is being synced).
"$tmp/synclat" -dir "$tmp" -n 2000 | tee "$tmp/sync.txt"

echo
echo "=== policy evaluation (go test -bench Evaluate -benchmem), interleaved"
for round in 1 2 3; do
	for b in "${builds[@]}"; do
		src=$root
		[[ $b == before ]] && src=$tmp/src-before
		(cd "$src" && go test -run '^$' -bench 'Evaluate$' -benchmem -count 1 ./policy/) |
			awk -v b="$b" '/^BenchmarkEvaluate-/ {print b, $0}'
	done
done

cat >"$tmp/policy.yaml" <<'YAML'
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
YAML

# start CMD... LOG: runs a server, waits for its "listening on http://"
# line, sets $url and $last (its pid).
start() {
	local log=${*: -1}
	"${@:1:$#-1}" >"$log" 2>&1 &
	last=$!
	pids+=("$last")
	for _ in $(seq 1 100); do
		url=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$log" | head -1 | sed 's/listening on //' || true)
		[[ -n $url ]] && return 0
		kill -0 "$last" 2>/dev/null || break
		sleep 0.1
	done
	echo "server did not start:" >&2
	cat "$log" >&2
	exit 1
}

stop() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

start "$tmp/emptyserver" -addr 127.0.0.1:0 "$tmp/empty.log"
empty=$url

# setup M DB: a fresh database as scripts/bench.sh makes it; prints tokens.
setup() {
	local M=$1 db=$2 toks=()
	"$M" migrate --db "$db" >/dev/null 2>&1
	"$M" org create --db "$db" --slug bench --name Bench --currency EUR --timezone Europe/Madrid \
		--owner boss --owner-name Boss >/dev/null
	for i in 1 2 3 4 5 6 7 8; do
		"$M" member add --db "$db" --org bench --login "m$i" --name "M $i" --access frontline --role frontline >/dev/null
	done
	"$M" policy publish --db "$db" --org bench --note bench "$tmp/policy.yaml" >/dev/null
	for i in 1 2 3 4 5 6 7 8; do
		toks+=("$("$M" token create --db "$db" --org bench --member "m$i" --name bench 2>/dev/null)")
	done
	(IFS=,; echo "${toks[*]}")
}

# allok FILE...: every request of every load answered 201.
allok() {
	local f
	for f in "$@"; do
		grep -q '^status     map\[201:[0-9]*\]$' "$f" || return 1
	done
}

field() { awk -v k="$1" '$1 == k {print $2}' "$2"; }
p99() { awk '/^latency/ {for (i = 1; i < NF; i++) if ($i == "p99") print $(i+1)}' "$1"; }

# ms DURATION: a Go duration (1.2ms, 850µs, 1.1s) in milliseconds.
ms() {
	awk -v d="$1" 'BEGIN {
		if (d ~ /ms$/) { sub(/ms$/, "", d); print d + 0 }
		else if (d ~ /µs$/) { sub(/µs$/, "", d); print d / 1000 }
		else if (d ~ /ns$/) { sub(/ns$/, "", d); print d / 1000000 }
		else if (d ~ /m[0-9.]*s$/) { split(d, a, "m"); sub(/s$/, "", a[2]); print a[1] * 60000 + a[2] * 1000 }
		else { sub(/s$/, "", d); print d * 1000 }
	}'
}

summary=()
run() {
	local engine=$1 b=$2 db=$3 tag="$1/$2" tokens srv rate half erate ep99 mp99
	tokens=$(setup "$tmp/$b/margen" "$db")
	echo
	echo "--- $tag: empty server, closed loop -c $C -n $N"
	"$L" -url "$empty" -token x -c "$C" -n "$N" | tee "$tmp/e.txt"
	erate=$(field throughput "$tmp/e.txt")
	# The rate limits are off, as in scripts/bench.sh: the load generator
	# sends thousands of requests a second from one address, which the
	# default limits (made for people and integrations) would refuse.
	MARGEN_RATE_LIMIT_TOKEN=0 MARGEN_RATE_LIMIT_ADDRESS=0 \
		start "$tmp/$b/margen" serve --db "$db" --addr 127.0.0.1:0 "$tmp/serve.log"
	srv=$last
	echo "--- $tag: margen, closed loop -c $C -n $N"
	"$L" -url "$url" -token "$tokens" -c "$C" -n "$N" -customers 1000 | tee "$tmp/m.txt"
	rate=$(field throughput "$tmp/m.txt")
	half=$(( ${rate%.*} / 2 ))
	[[ $half -lt 1 ]] && half=1
	echo "--- $tag: margen, open loop -rate $half for $DUR"
	"$L" -url "$url" -token "$tokens" -rate "$half" -duration "$DUR" -customers 1000 | tee "$tmp/mo.txt"
	mp99=$(p99 "$tmp/mo.txt")
	stop "$srv"
	echo "--- $tag: empty server, open loop -rate $half for $DUR"
	"$L" -url "$empty" -token x -rate "$half" -duration "$DUR" | tee "$tmp/eo.txt"
	ep99=$(p99 "$tmp/eo.txt")
	"$tmp/$b/margen" ledger check --db "$db" --org bench | tail -2
	local valid=""
	allok "$tmp/m.txt" "$tmp/mo.txt" || valid="  INVALID: not every answer was 201, see above"
	summary+=("$(awk -v v="$valid" -v t="$tag" -v r="$rate" -v e="$erate" -v h="$half" -v m="$(ms "$mp99")" -v p="$(ms "$ep99")" 'BEGIN {
		printf "%-16s %8.0f/s  empty %8.0f/s  ratio %.2f | p99 at %d/s: %7.2f ms  empty %6.2f ms  ratio %.1f%s\n", t, r, e, r / e, h, m, p, m / p, v }')")
}

for round in $(seq 1 "$ROUNDS"); do
	for engine in $ENGINES; do
		for b in "${builds[@]}"; do
			case $engine in
			sqlite)
				run sqlite "$b" "$tmp/$b-$round.db"
				;;
			postgres)
				if [[ -z $PG ]]; then
					echo "=== postgres: skipped (set MARGEN_BENCH_POSTGRES=postgres://...)"
					continue
				fi
				schema="margen_ratios_$$_$b$round"
				PGOPTIONS="-c client_min_messages=warning" psql "$PG" -qc "CREATE SCHEMA $schema" >/dev/null
				sep='?'
				[[ $PG == *\?* ]] && sep='&'
				run postgres "$b" "${PG}${sep}search_path=$schema"
				PGOPTIONS="-c client_min_messages=warning" psql "$PG" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null
				schema=""
				;;
			esac
		done
	done
done

echo
echo "=== summary (round by round, in the order run)"
printf '%s\n' "${summary[@]}"
echo "disk fdatasync (scripts/synclat): $(awk '/^latency/ {print $2, $3, $6, $7}' "$tmp/sync.txt")"
