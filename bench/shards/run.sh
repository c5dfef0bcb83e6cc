#!/usr/bin/env bash
# Shards on loopback (issue 12, goal 4): one run split into N shard processes (`run --shard I/N`,
# as the pods of deploy/k8s/shards-job.yaml run it) against one reference ingest, merged with
# `csp-harness merge`, beside the same run in one process and `simulate`, same profile and seed.
# Prints, per alert kind, expected / delivered / lost by cause / time to 50-80-95% for the three,
# whether every alert has the same fate (by id) in all three, each process's harness lag and
# egress rate, and the merge's wall time. Not a test (tests/shards_e2e.rs is): the figures go to
# bench/shards/RESULTS.md with the machine.
# Usage: bench/shards/run.sh   (from anywhere; writes bench/shards/last-run.txt)
#   PROFILE=north/current  SCALE=60  SEED=1  N=4
set -euo pipefail
cd "$(dirname "$0")/../.."
PROFILE="${PROFILE:-north/current}"
SCALE="${SCALE:-60}"
SEED="${SEED:-1}"
N="${N:-4}"
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
cargo build --release -p csp-harness >/dev/null
BIN="$TARGET_DIR/release/csp-harness"
WORK="$(mktemp -d)"
INGEST_PID=
cleanup() { [ -n "$INGEST_PID" ] && kill "$INGEST_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
exec > >(tee bench/shards/last-run.txt) 2>&1

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "harness: $("$BIN" --version)"
echo "profile $PROFILE, seed $SEED, --time-scale $SCALE, $N shards"

mkdir -p "$WORK/logs"
PORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" ingest --listen "127.0.0.1:$PORT" --cert-out "$WORK/ca.pem" --ledger "$WORK/ingest.csv" >"$WORK/logs/ingest.log" 2>&1 &
INGEST_PID=$!
while [ ! -s "$WORK/ca.pem" ]; do sleep 0.1; done
sleep 0.3
COMMON=(--profile "$PROFILE" --seed "$SEED" --quiet --endpoint "quic://127.0.0.1:$PORT" --ca "$WORK/ca.pem" --time-scale "$SCALE")
# A lagged process still writes its results (exit 3): reported below, not hidden.
ok() { local rc=0; "$@" || rc=$?; [ "$rc" = 0 ] || [ "$rc" = 3 ] || { echo "exit $rc: $*"; exit 1; }; }

start=$(date +%s.%N)
pids=()
for ((i = 0; i < N; i++)); do
  "$BIN" run "${COMMON[@]}" --shard "$i/$N" --run-id 0123456789abcdef0123456789abcdef \
    --out "$WORK/shard-$i" >"$WORK/logs/shard-$i.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do ok wait "$p"; done
shards_wall=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N)
ok "$BIN" run "${COMMON[@]}" --out "$WORK/whole" >"$WORK/logs/whole.log" 2>&1
whole_wall=$(echo "$(date +%s.%N) - $start" | bc)
kill "$INGEST_PID"; wait "$INGEST_PID" 2>/dev/null || true; INGEST_PID=
"$BIN" simulate --profile "$PROFILE" --seed "$SEED" --quiet --out "$WORK/sim" >/dev/null
start=$(date +%s.%N)
"$BIN" merge --quiet "$WORK"/shard-* --out "$WORK/merged" >/dev/null
merge_wall=$(echo "$(date +%s.%N) - $start" | bc)

printf '\nwall: %d shards at once %.1f s, one process %.1f s, merge %.2f s\n' "$N" "$shards_wall" "$whole_wall" "$merge_wall"
echo
printf '%-8s %-5s %8s %9s %-44s %7s %7s %7s\n' run kind expected delivered "lost by cause" t50_s t80_s t95_s
for r in sim whole merged; do
  for k in poa pra; do
    jq -r --arg r "$r" --arg k "$k" '.alerts[$k] as $a
      | [$r, $k, $a.expected, $a.delivered,
         ($a.loss_by_cause | to_entries | map("\(.key) \(.value)") | join(", ") | if . == "" then "-" else . end),
         ($a.time_to_pct_s["50"] // "never"), ($a.time_to_pct_s["80"] // "never"), ($a.time_to_pct_s["95"] // "never")]
      | @tsv' "$WORK/$r/summary.json" |
      awk -F'\t' '{ printf "%-8s %-5s %8s %9s %-44s %7s %7s %7s\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
  done
done
fates() { cut -d, -f1,6,8 "$1/alerts.csv" | sort; }
if cmp -s <(fates "$WORK/merged") <(fates "$WORK/whole") && cmp -s <(fates "$WORK/merged") <(fates "$WORK/sim"); then
  echo "fates by alert id: merged == one process == simulate ($(($(wc -l <"$WORK/merged/alerts.csv") - 1)) alerts)"
else
  echo "fates by alert id: DIFFER"
fi
echo
printf '%-8s %9s %11s %11s %9s %12s\n' process lag_p99 lag_p999 lag_max lagged sent/s
for d in "$WORK"/shard-* "$WORK/whole"; do
  jq -r --arg n "$(basename "$d")" '.health as $h
    | [$n, $h.p99_lag_ms, $h.p999_lag_ms, $h.max_lag_ms, $h.lagged, ($h.egress.send_rate_per_s | floor)] | @tsv' \
    "$d/summary.json" | awk -F'\t' '{ printf "%-8s %9s %11s %11s %9s %12s\n", $1, $2, $3, $4, $5, $6 }'
done
echo "(lag: scenario ms the hand-over ran behind its intended time)"
stored=$(grep -c '^0123456789abcdef0123456789abcdef,' "$WORK/ingest.csv" || true)
echo "endpoint stored $stored alerts under the shards' run id; merged delivered $(jq '.alerts.poa.delivered + .alerts.pra.delivered' "$WORK/merged/summary.json")"
