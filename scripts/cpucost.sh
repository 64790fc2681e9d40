#!/usr/bin/env bash
# Measures the server's CPU time per decision, a cost that stays readable on
# a shared machine (unlike decisions/s): for each build it creates the
# database of scripts/ratios.sh, starts margen serve, sends N decisions in a
# closed loop (C connections, 8 members, 1,000 customers), and reads the
# server process's user+system CPU time (/proc/PID/stat) before and after
# the load, and its peak resident memory (VmHWM). Builds are measured
# alternately, ROUNDS times.
#
#   BEFORE=5b829bb N=20000 ROUNDS=3 scripts/cpucost.sh    # before and after, SQLite
#   ENGINE=postgres MARGEN_BENCH_POSTGRES=postgres://... scripts/cpucost.sh
#
# Knobs: N (20000), C (64), ROUNDS (3), BEFORE (a git revision; empty: none),
# ENGINE (sqlite or postgres), PROFILE=1 (keep a 10 s CPU profile of each
# "after" run in ./cpucost-after-ROUND.pprof).
set -euo pipefail

N=${N:-20000}
C=${C:-64}
ROUNDS=${ROUNDS:-3}
BEFORE=${BEFORE:-}
ENGINE=${ENGINE:-sqlite}
PG=${MARGEN_BENCH_POSTGRES:-}
PROFILE=${PROFILE:-}

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pids=()
schemas=()
cleanup() {
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	for s in "${schemas[@]}"; do
		PGOPTIONS="-c client_min_messages=warning" psql "$PG" -qc "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

builds=(after)
(cd "$root" && go build -o "$tmp/after/margen" ./cmd/margen && go build -o "$tmp/margen-load" ./cmd/margen-load)
if [[ -n $BEFORE ]]; then
	mkdir -p "$tmp/src-before"
	git -C "$root" archive "$BEFORE" | tar -x -C "$tmp/src-before"
	(cd "$tmp/src-before" && go build -o "$tmp/before/margen" ./cmd/margen)
	builds=(before after)
fi
L="$tmp/margen-load"
tick=$(getconf CLK_TCK)

cat >"$tmp/policy.yaml" <<'YAML'
currency: EUR
actions:
  - id: courtesy_gift
    label: {es: "Cortesía", en: "Courtesy gift"}
roles:
  - id: frontline
    label: {es: "Primera línea", en: "Frontline"}
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

export MARGEN_RATE_LIMIT_TOKEN=0 MARGEN_RATE_LIMIT_ADDRESS=0

# cpu PID: user+system CPU ticks of a process.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg); $(go version); engine $ENGINE; N=$N C=$C"
for round in $(seq 1 "$ROUNDS"); do
	for b in "${builds[@]}"; do
		M="$tmp/$b/margen"
		db="$tmp/$b-$round.db"
		if [[ $ENGINE == postgres ]]; then
			s="cpucost_${b}_${round}_$$"
			schemas+=("$s")
			psql "$PG" -qc "CREATE SCHEMA $s" >/dev/null
			db="${PG}&search_path=$s"
		fi
		"$M" migrate --db "$db" >/dev/null 2>&1
		"$M" org create --db "$db" --slug bench --name Bench --currency EUR --timezone Europe/Madrid \
			--owner boss --owner-name Boss >/dev/null
		toks=()
		for i in 1 2 3 4 5 6 7 8; do
			"$M" member add --db "$db" --org bench --login "m$i" --name "M $i" --access frontline --role frontline >/dev/null
		done
		"$M" policy publish --db "$db" --org bench --note bench "$tmp/policy.yaml" >/dev/null
		for i in 1 2 3 4 5 6 7 8; do
			toks+=("$("$M" token create --db "$db" --org bench --member "m$i" --name bench 2>/dev/null)")
		done
		tokens=$(IFS=,; echo "${toks[*]}")
		"$M" serve --db "$db" --addr 127.0.0.1:0 --debug-addr 127.0.0.1:0 >"$tmp/serve.log" 2>&1 &
		srv=$!
		pids+=("$srv")
		url=""
		for _ in $(seq 1 100); do
			url=$(grep -o '^margen listening on http://127\.0\.0\.1:[0-9]*' "$tmp/serve.log" | head -1 | sed 's/.*listening on //' || true)
			[[ -n $url ]] && break
			sleep 0.1
		done
		[[ -n $url ]] || { cat "$tmp/serve.log" >&2; exit 1; }
		# warm up (policy cache, prepared statements), then measure
		"$L" -url "$url" -token "$tokens" -c "$C" -n 2000 -customers 1000 >/dev/null
		prof=""
		if [[ -n $PROFILE && $b == after ]]; then
			dbg=$(grep -o '^margen debug listening on http://127\.0\.0\.1:[0-9]*' "$tmp/serve.log" | head -1 | sed 's/.*listening on //' || true)
			if [[ -n $dbg ]]; then
				curl -s -o "cpucost-after-$round.pprof" "$dbg/debug/pprof/profile?seconds=10" &
				prof=$!
			fi
		fi
		c0=$(cpu "$srv")
		"$L" -url "$url" -token "$tokens" -c "$C" -n "$N" -customers 1000 >"$tmp/load.txt"
		c1=$(cpu "$srv")
		# the profile covers 10 s: keep the server up until it is written
		[[ -n $prof ]] && wait "$prof"
		hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$srv/status")
		kill -TERM "$srv"; wait "$srv" 2>/dev/null || true
		ok=$(grep -c '^status     map\[201:[0-9]*\]$' "$tmp/load.txt" || true)
		rate=$(awk '$1 == "throughput" {print $2}' "$tmp/load.txt")
		chk=$("$M" ledger check --db "$db" --org bench 2>&1 | tail -1)
		awk -v b="$b" -v r="$round" -v c0="$c0" -v c1="$c1" -v t="$tick" -v n="$N" -v rate="$rate" -v ok="$ok" \
			-v l="$(cut -d' ' -f1 /proc/loadavg)" -v chk="$chk" -v hwm="$hwm" 'BEGIN {
			printf "round %d %-6s server CPU %6.1f µs/decision, peak RSS %d MB  (%.0f decisions/s, load %s, all 201: %s) %s\n",
				r, b, (c1 - c0) / t / n * 1e6, hwm / 1024, rate, l, (ok == 1 ? "yes" : "NO"), chk }'
	done
done
