#!/usr/bin/env bash
# Benchmark of the reference endpoint's ingest (not a test): acknowledged alerts per second of a
# real `csp-harness ingest` fed over csp-alert/QUIC on loopback by ingest/examples/feed.rs (4
# connections x 4 streams, 256 alerts in flight per stream, 190-byte ALERT frames), with its
# ledger under `--durability flush` and `--durability fsync`, and without a ledger as the
# baseline -- side by side in one script, alternating, each ROUNDS times (the machine is shared;
# the median of the rounds is reported, every round is printed).
#
# Usage: bench/ingest/run.sh [alerts per round] [rounds]   (from anywhere; writes
# bench/ingest/last-run.txt). The ledger lives under target/ (the real disk, not a tmpfs, so that
# fsync costs what it costs).
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-2000000}"
ROUNDS="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p ingest --example feed -p csp-harness >/dev/null
FEED="$CARGO_TARGET_DIR/release/examples/feed"
HARNESS="$CARGO_TARGET_DIR/release/csp-harness"
DIR=$(mktemp -d "$CARGO_TARGET_DIR/bench-ingest.XXXXXX")
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# One round: start the endpoint in MODE (none | flush | fsync), feed it N alerts, stop it with
# SIGTERM; prints "MODE acks/s writes syncs".
round() {
  local mode=$1 port ledger_args=()
  port=$(free_port)
  # Nothing of the previous round may be read as this one's (its "listening" line, its cert).
  rm -f "$DIR/ledger.csv" "$DIR/ingest.out" "$DIR/cert.pem"
  case $mode in
    none) ;;
    *) ledger_args=(--ledger "$DIR/ledger.csv" --durability "$mode") ;;
  esac
  "$HARNESS" ingest --listen "127.0.0.1:$port" --cert-out "$DIR/cert.pem" "${ledger_args[@]}" \
    >"$DIR/ingest.out" 2>"$DIR/ingest.err" &
  PID=$!
  for _ in $(seq 200); do grep -q "listening on" "$DIR/ingest.out" 2>/dev/null && break; sleep 0.05; done
  local line rate
  line=$("$FEED" --endpoint "127.0.0.1:$port" --ca "$DIR/cert.pem" --alerts "$N")
  rate=$(sed -E 's/.*: ([0-9]+) alerts\/s.*/\1/' <<<"$line")
  kill -TERM "$PID"; wait "$PID" || true; PID=
  local stats writes syncs stored lines
  stats=$(grep '^{' "$DIR/ingest.out" | tail -1)
  writes=$(python3 -c 'import json,sys;print(json.loads(sys.argv[1])["ledger_writes"])' "$stats")
  syncs=$(python3 -c 'import json,sys;print(json.loads(sys.argv[1])["ledger_syncs"])' "$stats")
  stored=$(python3 -c 'import json,sys;print(json.loads(sys.argv[1])["alerts_stored"])' "$stats")
  lines=0
  [ "$mode" != none ] && lines=$(( $(wc -l <"$DIR/ledger.csv") - 1 ))
  if [ "$mode" != none ] && [ "$lines" != "$stored" ]; then
    echo "ledger holds $lines lines, endpoint stored $stored" >&2; exit 1
  fi
  echo "$mode $rate $writes $syncs $stored"
}

{
  echo "# bench/ingest/run.sh $N $ROUNDS -- $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "# machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(uname -sr); ledger on $(df --output=fstype "$DIR" | tail -1)"
  echo "# mode acks_per_s ledger_writes ledger_syncs alerts_stored"
  for r in $(seq "$ROUNDS"); do
    for mode in none flush fsync; do round "$mode"; done
  done
} | tee "$DIR/rounds.txt"

python3 - "$DIR/rounds.txt" <<'PY' | tee -a "$DIR/rounds.txt"
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("#")]
med = {}
for mode in ("none", "flush", "fsync"):
    rs = [r for r in rows if r[0] == mode]
    rate = statistics.median(int(r[1]) for r in rs)
    med[mode] = rate
    per_sync = ""
    syncs = sum(int(r[3]) for r in rs)
    if syncs:
        per_sync = f", {sum(int(r[4]) for r in rs) / syncs:,.0f} alerts per fsync (group commit)"
    print(f"{mode:>5}: median {rate:>12,.0f} acks/s over {len(rs)} rounds{per_sync}")
print(f"flush / no ledger: {med['flush'] / med['none']:.2f}; fsync / flush: {med['fsync'] / med['flush']:.2f}")
PY
cp "$DIR/rounds.txt" bench/ingest/last-run.txt
