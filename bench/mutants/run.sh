#!/usr/bin/env bash
# Mutation testing (cargo-mutants) of the model's core, the ledger and the wire codec, each file's
# mutants judged by its own package's tests only (not the calibration or end-to-end tests), so a run
# takes minutes.
# Not a test: the scores and the surviving mutants are recorded in docs/testing.md.
#
# Usage: bench/mutants/run.sh [PACKAGE ...]   (default: csp-model, ledger and wire; works on a copy of
#        the tree, never in place)
# Output: bench/mutants/out/<package>/mutants.out (git-ignored) and one line per file:
#   score = caught / (caught + missed); timeouts (a mutant that makes the tests hang: detected)
#   and unviable mutants (do not compile) are listed apart.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked

# package whose tests judge the files -> files
declare -A FILES=(
  [csp-model]="model/src/network.rs model/src/channel.rs model/src/stage.rs model/src/hub.rs model/src/sim.rs"
  [ledger]="ledger/src/lib.rs ledger/src/vocab.rs ledger/src/region.rs ledger/src/text_pos.rs"
  [wire]="wire/src/lib.rs"
)

summarise() { # outcomes.json file
  jq -r --arg f "$2" '
    [.outcomes[] | select(.scenario.Mutant?.file == $f)] as $m
    | ($m | map(select(.summary == "CaughtMutant")) | length) as $caught
    | ($m | map(select(.summary == "MissedMutant")) | length) as $missed
    | ($m | map(select(.summary == "Timeout")) | length) as $timeout
    | ($m | map(select(.summary == "Unviable")) | length) as $unviable
    | "\($f): \($m | length) mutants: \($caught) caught, \($missed) missed, \($timeout) timeouts, \($unviable) unviable; score \(if ($caught + $missed) > 0 then ($caught * 1000 / ($caught + $missed) | floor) / 10 else "n/a" end)%",
      ($m[] | select(.summary == "MissedMutant") | "    missed: \(.scenario.Mutant.name)")' "$1"
}

PKGS=("$@")
[ ${#PKGS[@]} -eq 0 ] && PKGS=(csp-model ledger wire)
for pkg in "${PKGS[@]}"; do
  if [ -z "${FILES[$pkg]:-}" ]; then
    echo "bench/mutants/run.sh: unknown package '$pkg' (known: ${!FILES[*]})" >&2
    exit 2
  fi
  out="bench/mutants/out/$pkg"
  mkdir -p "$out"
  args=()
  for f in ${FILES[$pkg]}; do args+=(--file "$f"); done
  # Exit code 2 means some mutants survived: that is the measurement, not a failure of the script.
  cargo mutants --workspace "${args[@]}" --test-package "$pkg" --test-tool nextest \
    -o "$out" >"$out/run.log" 2>&1 || true
  for f in ${FILES[$pkg]}; do summarise "$out/mutants.out/outcomes.json" "$f"; done
done
