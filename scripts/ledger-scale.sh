#!/usr/bin/env bash
# Measures `margen ledger check` at scale, for docs/benchmarks.md ("Ledger
# check at scale"): for each size it writes a SQLite database with one
# organisation of that many decisions (scripts/ledgerscale, through the
# store's own batch path, so every row is valid and sealed), then runs
# `margen ledger check` under /usr/bin/time -v and prints the check's
# summary, its wall time and its peak resident memory.
#
#   scripts/ledger-scale.sh                  # 10k, 100k and 1M decisions
#   SIZES="1000000 3000000 10000000" scripts/ledger-scale.sh
#
# With JOB=1 it also runs the check as the server does: `margen serve` on
# the database, the check queued with POST /api/v1/ledger/check (an owner's
# token), and the server's peak resident memory (VmHWM) read once the
# report says the check is done.
#
# Knobs (environment): SIZES, JOB, CLI (0: skip the command-line check,
# e.g. to measure only the job), DIR (where the databases go, default a
# temporary directory, removed on exit unless KEEP=1). Each decision writes
# about 1.7 kB (decision, act or approval, two ledger entries, an audit
# entry with its row digests): 10M decisions need about 17 GB of disk, and
# the audit check's partition files about as much again while it runs.
set -euo pipefail

SIZES=${SIZES:-10000 100000 1000000}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${DIR:-$(mktemp -d)}
if [[ -z "${DIR:-}" && -z "${KEEP:-}" ]]; then
	trap 'rm -rf "$dir"' EXIT
fi
# A fixed audit key for the generated databases (any 32 bytes, hex).
export MARGEN_AUDIT_KEY=${MARGEN_AUDIT_KEY:-6d617267656e207363616c652074657374206175646974206b65792033326221}

# job DB: the check as a job of `margen serve`, and the server's peak memory:
# its resident set before the check (idle), its peak (VmHWM), and at the
# highest sample (every 5 s) how much of it was the Go heap (in use, from
# /debug/pprof/heap) rather than SQLite's caches and the runtime. The heap profile
# taken at that sample is left in $dir/heap-peak.pprof.
job() {
	local db=$1 tok log="$dir/serve.log" url="" dbg="" report="" start pid rss heap top=0 topheap=0 idle
	tok=$("$dir/margen" token create --db "$db" --org scale --member owner --name "scale-$(date +%s%N)" 2>/dev/null | tail -1)
	"$dir/margen" serve --db "$db" --addr 127.0.0.1:0 --debug-addr 127.0.0.1:0 >"$log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do
		url=$(grep -o 'margen listening on http://127\.0\.0\.1:[0-9]*' "$log" | head -1 | sed 's/margen listening on //' || true)
		dbg=$(grep -o 'debug listening on http://127\.0\.0\.1:[0-9]*' "$log" | head -1 | sed 's/debug listening on //' || true)
		[[ -n $url && -n $dbg ]] && break
		sleep 0.1
	done
	[[ -n $url ]] || { cat "$log" >&2; kill "$pid"; return 1; }
	sleep 5
	idle=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
	start=$(date +%s)
	curl -sf -X POST -H "Authorization: Bearer $tok" "$url/api/v1/ledger/check" >/dev/null
	while sleep 5; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "margen serve stopped before the check ended:" >&2
			tail -5 "$log" >&2
			return 1
		fi
		rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
		if ((rss > top)); then
			top=$rss
			# Not /metrics: its first scrape counts rows, which fills
			# read connections' caches and would be measured too.
			heap=$(curl -sf "$dbg/debug/pprof/heap?debug=1" | awk '$2 == "HeapInuse" {printf "%d", $4 / 1024}')
			topheap=${heap:-0}
			curl -sf -o "$dir/heap-peak.pprof" "$dbg/debug/pprof/heap" || true
		fi
		report=$(curl -sf -H "Authorization: Bearer $tok" "$url/api/v1/ledger/check" || true)
		[[ $report == *'"running":false'* && $report != *'"checked_at":null'* ]] && break
	done
	echo "as a job of margen serve: $(( $(date +%s) - start )) s, server peak $(awk '/^VmHWM/ {print $2, $3}' "/proc/$pid/status")" \
		"(idle before the check $idle kB; highest 5 s sample $top kB, of which Go heap in use $topheap kB)"
	echo "${report:0:400}"
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null || true
}

cd "$root"
go build -o "$dir/margen" ./cmd/margen
go build -o "$dir/ledgerscale" ./scripts/ledgerscale

for n in $SIZES; do
	db="$dir/scale-$n.db"
	if [[ ! -e "$db" ]]; then
		"$dir/ledgerscale" -db "$db" -decisions "$n" -batch 2000
	fi
	echo "== $n decisions ($(du -h "$db" | cut -f1))"
	if [[ ${CLI:-1} != 0 ]]; then
		/usr/bin/time -v "$dir/margen" ledger check --db "$db" --org scale 2>"$dir/time.txt"
		grep -E "Elapsed|Maximum resident" "$dir/time.txt"
	fi
	if [[ -n ${JOB:-} ]]; then
		job "$db"
	fi
done
