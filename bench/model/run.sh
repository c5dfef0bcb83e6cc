#!/usr/bin/env bash
# Benchmark of the network model (not a test): wall time of `simulate` for the six 30k profiles and
# wall time, peak RSS and bytes per hub for a 1,000,000-premises North scenario.
# Usage: bench/model/run.sh [seed]   (from the repository root; writes bench/model/last-run.txt)
set -euo pipefail
cd "$(dirname "$0")/../.."
SEED="${1:-1}"
# The workspace's own target directory (or $CARGO_TARGET_DIR when set), as cargo reports it.
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
cargo build --release -p csp-model --example simulate >/dev/null
BIN="$TARGET_DIR/release/examples/simulate"
OUT=bench/model/last-run.txt
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  nproc=$(nproc)  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)  mem=$(free -m | awk '/Mem:/{print $2}') MiB"
  for p in north/current north/option-a north/option-b central-south/current central-south/option-a central-south/option-b; do
    /usr/bin/time -f 'rss_kb=%M elapsed=%e' "$BIN" "profiles/$p.toml" "$SEED" 2>&1 | tr '\n' ' '
    echo
  done
  for p in north/current central-south/current; do
    /usr/bin/time -v "$BIN" "profiles/$p.toml" "$SEED" --premises 1000000 2>/tmp/bench-model-time.txt
    rss=$(awk -F: '/Maximum resident/{gsub(/ /,"",$2); print $2}' /tmp/bench-model-time.txt)
    wall=$(awk -F': ' '/Elapsed \(wall/{print $2}' /tmp/bench-model-time.txt)
    echo "1M $p: peak_rss_kb=$rss wall=$wall bytes_per_hub=$((rss * 1024 / 1000000))"
  done
} | tee "$OUT"
