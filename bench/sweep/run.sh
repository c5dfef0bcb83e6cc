#!/usr/bin/env bash
# Benchmark of issue 13's studies (not a test): how long `csp-harness sweep` (10 outage sizes,
# 250 ... 1,000,000 premises, × Current/A/B, one region), `csp-harness sensitivity` (one profile,
# every [cal] parameter at ±20%) and `simulate --seeds 10` (seed bands) take on this machine. Side by side in the same session, each study
# with --jobs 1 (one simulation at a time: the baseline) and with the machine's cores, so the
# ratio is the parallel speed-up and the absolute times say whether "minutes on 2 cores" holds.
# Usage: bench/sweep/run.sh   (from anywhere; writes bench/sweep/last-run.txt)
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
cargo build --release -p csp-harness >/dev/null
BIN="$TARGET_DIR/release/csp-harness"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
OUT=bench/sweep/last-run.txt
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD)"
  echo "machine: nproc $(nproc); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
       "$(free -m | awk '/Mem:/ {print $2}') MiB"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT"
t() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "$label: %e s wall, %M KiB peak RSS" "$@" >/dev/null 2>"$WORK/err" \
    || { cat "$WORK/err"; exit 1; }
  tail -n 1 "$WORK/err" | tee -a "$OUT"
}
for region in north central-south; do
  P=(--profile "profiles/$region/current.toml" --profile "profiles/$region/option-a.toml"
     --profile "profiles/$region/option-b.toml")
  for jobs in 1 "$(nproc)"; do
    t "sweep $region 10 sizes x 3 options, --jobs $jobs" \
      "$BIN" sweep "${P[@]}" --jobs "$jobs" --quiet --out "$WORK/s-$region-$jobs"
  done
  cmp "$WORK/s-$region-1/sweep.csv" "$WORK/s-$region-$(nproc)/sweep.csv" \
    && echo "sweep $region: sweep.csv identical with --jobs 1 and $(nproc)" | tee -a "$OUT"
  for jobs in 1 "$(nproc)"; do
    t "sensitivity $region/current, --jobs $jobs" \
      "$BIN" sensitivity --profile "profiles/$region/current.toml" --jobs "$jobs" --quiet \
      --out "$WORK/t-$region-$jobs"
  done
  for jobs in 1 "$(nproc)"; do
    t "simulate $region/current --seeds 10, --jobs $jobs" \
      "$BIN" simulate --profile "profiles/$region/current.toml" --seeds 10 --jobs "$jobs" --quiet \
      --out "$WORK/m-$region-$jobs"
  done
  cmp "$WORK/m-$region-1/summary.json" "$WORK/m-$region-$(nproc)/summary.json" \
    && echo "seeds $region: summary.json identical with --jobs 1 and $(nproc)" | tee -a "$OUT"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT"
