#!/usr/bin/env bash
# Acceptance run of issue 10 (not a CI gate by itself; the same tests run in CI): the real-process
# endpoint faults of tests/real_faults.rs -- kill -9, SIGTERM, SIGSTOP 5 s and 30 s, ledger disk
# full then freed (a real tmpfs; needs root, else reported SKIPPED), token changed mid-run, two
# consecutive runs against one endpoint -- each a real `csp-harness run --time-scale 120` against
# a real `csp-harness ingest`, and the floods of tests/floods.rs (forged QUIC Initials, drip-fed
# frames, half-open streams) next to a good client. Prints one line per fault: exit code,
# delivered, lost by cause, and the reconciliation of the harness's ledger with the endpoint's
# (ACKs counted twice, ids stored twice, delivered-but-missing, stored-but-not-acked).
#
# Usage: bench/faults/run.sh   (from anywhere; writes bench/faults/last-run.txt)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=bench/faults/last-run.txt
{
  echo "# bench/faults/run.sh -- $(date -u +%Y-%m-%dT%H:%MZ) -- $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
  cargo nextest run --release -p csp-loadtest -E 'binary(real_faults) | binary(floods)' \
    --no-capture --no-fail-fast -j 2 2>&1 | grep -E '^(REAL-FAULT|FLOOD)|FAIL|PASS' || true
} | tee "$OUT"
