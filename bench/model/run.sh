#!/usr/bin/env bash
# Benchmark of the network model and the real-time driver (not a test). Side by side with a
# baseline build of an earlier commit (default: ec11c23, main before issues 11/12), same machine,
# same session:
#   1. `simulate` of the six 30k seed profiles: wall time (whole command) and peak RSS, new and old;
#   2. `simulate` of 1M premises (profiles/scale/*-1m.toml), both regions, new and old;
#   3. `simulate` of 10M premises, both regions, new (old with WITH_OLD_10M=1: ~3 min, 7 GiB each);
#   4. `run --time-scale 60` of 1M premises, both regions, against the embedded QUIC endpoint, and
#      the driver alone against the in-process instant-ack sink (virtual-hubs example `realtime`):
#      hand-over lag p99/p99.9/max in real ms and whether delivered == simulate.
# Usage: bench/model/run.sh   (from anywhere; writes bench/model/last-run.txt)
#   BASE=<commit>    baseline commit (built once into the workspace's target dir, bench-base/)
#   OLD_BIN=<path>   use this csp-harness as the baseline instead of building BASE
#   SKIP_REALTIME=1  skip part 4 (about 3 minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BASE="${BASE:-ec11c23}"
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
cargo build --release -p csp-harness >/dev/null
cargo build --release -p virtual-hubs --example realtime >/dev/null
NEW="$TARGET_DIR/release/csp-harness"
RT="$TARGET_DIR/release/examples/realtime"
WORK="$(mktemp -d)"
trap 'git -C "$ROOT" worktree remove --force "$WORK/base" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

# The baseline: its binary and its profiles (its own format), plus the scale profiles, which
# only extend a region's current.toml and read the same in both formats.
git -C "$ROOT" worktree add --detach "$WORK/base" "$BASE" >/dev/null 2>&1
if [ -z "${OLD_BIN:-}" ]; then
  OLD_BIN="$TARGET_DIR/bench-base/release/csp-harness"
  if [ ! -x "$OLD_BIN" ] || [ "$(cat "$TARGET_DIR/bench-base/commit" 2>/dev/null)" != "$BASE" ]; then
    echo "building the baseline $BASE (once)..." >&2
    (cd "$WORK/base" && CARGO_TARGET_DIR="$TARGET_DIR/bench-base" cargo build --release -p csp-harness >/dev/null)
    echo "$BASE" >"$TARGET_DIR/bench-base/commit"
  fi
fi
OLD_PROFILES="$WORK/base/profiles"
mkdir -p "$OLD_PROFILES/scale" && cp profiles/scale/*.toml "$OLD_PROFILES/scale/"

# One simulate: "wall_s peak_rss_MiB delivered_poa delivered_pra" (wall of the whole command).
sim() { # binary profiles-dir profile
  local out="$WORK/out-$RANDOM"
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$1" simulate --profile "$2/$3.toml" --seed 1 --quiet --out "$out" >/dev/null
  read -r wall kb <"$WORK/time"
  echo "$wall $((kb / 1024)) $(jq -r '"\(.alerts.poa.delivered) \(.alerts.pra.delivered)"' "$out/summary.json")"
  rm -rf "$out"
}

# Before `tee` truncates last-run.txt, which would make every tree look modified.
VERSION="$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo '+dirty')"
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  nproc=$(nproc)  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)  mem=$(free -m | awk '/Mem:/{print $2}') MiB  load=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# new: $VERSION  old: $BASE"
  echo "## simulate: profile | new wall s, peak MiB | old wall s, peak MiB | delivered POA/PRA new = old"
  for p in north/current north/option-a north/option-b central-south/current central-south/option-a central-south/option-b scale/north-1m scale/central-south-1m; do
    read -r nw nm np nr <<<"$(sim "$NEW" profiles "$p")"
    read -r ow om op or <<<"$(sim "$OLD_BIN" "$OLD_PROFILES" "$p")"
    same=$([ "$np $nr" = "$op $or" ] && echo yes || echo NO)
    echo "$p | $nw s, $nm MiB | $ow s, $om MiB | $np/$nr $same"
  done
  for p in scale/north-10m scale/central-south-10m; do
    read -r nw nm np nr <<<"$(sim "$NEW" profiles "$p")"
    if [ -n "${WITH_OLD_10M:-}" ]; then
      read -r ow om op or <<<"$(sim "$OLD_BIN" "$OLD_PROFILES" "$p")"
      echo "$p | $nw s, $nm MiB | $ow s, $om MiB | $np/$nr $([ "$np $nr" = "$op $or" ] && echo yes || echo NO)"
    else
      echo "$p | $nw s, $nm MiB | (not run: WITH_OLD_10M=1) | $np/$nr"
    fi
  done
  if [ -z "${SKIP_REALTIME:-}" ]; then
    echo "## real time, 1M premises, --time-scale 60: lag real ms p99 / p99.9 / max | lagged | delivered POA/PRA | = simulate"
    for r in north central-south; do
      out="$WORK/rt-$r"
      /usr/bin/time -f '%e %M' -o "$WORK/time" "$NEW" run --profile "profiles/scale/$r-1m.toml" --time-scale 60 --quiet --out "$out" >/dev/null 2>&1 || true
      read -r wall kb <"$WORK/time"
      read -r sp sr <<<"$(sim "$NEW" profiles "scale/$r-1m" | cut -d' ' -f3-)"
      jq -r --arg r "$r" --arg wall "$wall" --arg mib "$((kb / 1024))" --arg sim "$sp/$sr" '
        "run (QUIC, embedded endpoint) \($r) | \(.health.real_lag_ms.p99) / \(.health.real_lag_ms.p999) / \(.health.real_lag_ms.max) | lagged \(.health.lagged) | \(.alerts.poa.delivered)/\(.alerts.pra.delivered) | \(if "\(.alerts.poa.delivered)/\(.alerts.pra.delivered)" == $sim then "yes" else "NO (simulate \($sim))" end) | egress send lag p99 \(.health.egress.send_lag_p99_ms) scenario ms | real-time scheduling \(.health.real_lag_ms.realtime_scheduling) | wall \($wall) s, peak \($mib) MiB"' "$out/summary.json"
      "$RT" "profiles/scale/$r-1m.toml" --time-scale 60 | jq -r --arg r "$r" '
        "driver alone (instant-ack sink) \($r) | \(.lag_real_ms.p99) / \(.lag_real_ms.p999) / \(.lag_real_ms.max) | - | \(.real.poa.delivered)/\(.real.pra.delivered) | \(if .same_as_simulate then "yes" else "NO" end) | real-time scheduling \(.hand_over_realtime)"'
    done
  fi
} | tee bench/model/last-run.txt
