#!/usr/bin/env bash
# The egress ratio (issue 12, goal 1): acknowledged alerts/s of the harness's egress beside a raw
# quinn client, with the same frame size and transport settings, back to back in one script.
#
#   bench/egress/run.sh [--reps 3] [--baseline-rev REV | --baseline BIN] [-- egress-bench run options...]
#
# Each repetition runs, in this order (interleaved, so that drift on a shared machine hits every
# configuration alike):
#   raw    -> raw     raw quinn client, raw quinn server (the baseline)
#   egress -> raw     the harness's egress (engine + QUIC transport + ledger), raw quinn server
#   raw    -> ingest  raw quinn client, the reference ingest `run` embeds (ledger file, flush)
#   egress -> ingest  the harness's egress, the reference ingest (what `csp-harness run` does)
#   egress -> ingest-fsync  the same with the ledger synced before each ACK (fsync durability,
#                     a standalone `csp-harness ingest`'s default)
# and, with --baseline-rev REV (e.g. main), the same two egress runs with the egress of commit
# REV: this bench program is built against REV's tree (exported with git archive under
# ${TMPDIR:-/tmp}/egress-bench-REV, kept between runs), so only the egress differs. --baseline BIN
# takes an egress-bench built some other way.
#
# Prints every run, then per configuration the median acks/s and CPU ns per alert, and the ratios
# against raw -> raw. Run it at normal priority. A run whose threads waited for a core (runqueue
# wait, from /proc schedstat) longer than they ran is marked DISTURBED: its acks/s measured the
# other work on the machine; repeat the script when the machine is quieter. CPU ns per alert moves
# much less with such load than acks/s does. The output is also written to bench/egress/last-run.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."

reps=3
baseline=""
baseline_rev=""
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --reps) reps="$2"; shift 2 ;;
        --baseline) baseline="$2"; shift 2 ;;
        --baseline-rev) baseline_rev="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

# Everything printed is also kept in bench/egress/last-run.txt (RESULTS.md quotes it).
exec > >(tee bench/egress/last-run.txt)

# Build under nice (the build must not disturb other people's measurements); measure without.
nice -n 15 cargo build --quiet --release -p egress-bench
bin=target/release/egress-bench
if [[ -n "$baseline_rev" ]]; then
    rev=$(git rev-parse --short "$baseline_rev^{commit}")
    dir="${TMPDIR:-/tmp}/egress-bench-$rev"
    if [[ ! -d "$dir/src" ]]; then
        mkdir -p "$dir/src"
        git archive "$rev" | tar -x -C "$dir/src"
    fi
    # This bench program (only if it changed: a copy would make cargo rebuild it), as a member
    # of REV's workspace.
    if ! diff -rq bench/egress "$dir/src/bench/egress" >/dev/null 2>&1; then
        rm -rf "$dir/src/bench/egress"
        mkdir -p "$dir/src/bench"
        cp -r bench/egress "$dir/src/bench/egress"
    fi
    grep -q '"bench/egress"' "$dir/src/Cargo.toml" ||
        sed -i 's|^members = \[\(.*\)\]|members = [\1, "bench/egress"]|' "$dir/src/Cargo.toml"
    echo "# building the baseline ($rev) in $dir (nice, first time: minutes)"
    (cd "$dir/src" && CARGO_TARGET_DIR="$dir/target" nice -n 15 cargo build --quiet --release -p egress-bench)
    baseline="$dir/target/release/egress-bench"
fi
if [[ -n "$baseline" && ! -x "$baseline" ]]; then
    echo "--baseline $baseline: not an executable" >&2
    exit 2
fi

echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, kernel $(uname -r), $(rustc --version)"
echo "# commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
configs=("raw raw $bin" "egress raw $bin" "raw ingest $bin" "egress ingest $bin" "egress ingest-fsync $bin")
[[ -n "$baseline" ]] && configs+=("egress raw $baseline ${baseline_rev:-baseline}" "egress ingest $baseline ${baseline_rev:-baseline}")
for rep in $(seq 1 "$reps"); do
    for c in "${configs[@]}"; do
        read -r client server b tag <<<"$c"
        line=$("$b" run --client "$client" --server "$server" "${extra[@]}")
        name="${client}${tag:+($tag)}->${server}"
        # Disturbed: the threads waited for a core longer than they ran.
        flag=$(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
            END { if (v["runqueue_wait_ms"] + 0 > v["cpu_ns_per_alert"] * v["alerts"] / 1e6) print " DISTURBED" }' <<<"$line")
        echo "rep=$rep config=$name $line$flag"
        echo "$name $line" >>"$out"
    done
done

echo
echo "# medians of $reps (acks/s; CPU ns per alert of the whole process, client and server)"
awk '
function field(s, k,   i, n, kv) {
    n = split(s, kv, " ")
    for (i = 1; i <= n; i++) if (index(kv[i], k "=") == 1) return substr(kv[i], length(k) + 2)
    return ""
}
function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return a[int((n + 1) / 2)]
}
{
    if (!($1 in rate)) order[++k] = $1
    if ($NF == "DISTURBED") disturbed++
    rate[$1] = rate[$1] " " field($0, "acked_per_s")
    cpu[$1] = cpu[$1] " " field($0, "cpu_ns_per_alert")
}
END {
    for (i = 1; i <= k; i++) {
        c = order[i]; r[c] = median(rate[c]); p[c] = median(cpu[c])
        printf "%-24s acks/s %9d   cpu ns/alert %5d   runs:%s\n", c, r[c], p[c], rate[c]
    }
    base = "raw->raw"
    print ""
    for (i = 1; i <= k; i++) {
        c = order[i]
        if (c == base) continue
        printf "ratio %-22s / %s = %.2f (acks/s)   %.2f (raw CPU ns / its CPU ns)\n", c, base, r[c] / r[base], p[base] / p[c]
    }
    if (disturbed) printf "\n%d of %d runs DISTURBED (runqueue wait > CPU time): acks/s ratios are unreliable\n", disturbed, NR
    if (("raw->ingest" in r) && ("egress->ingest" in r))
        printf "ratio %-22s / %s = %.2f (acks/s)\n", "egress->ingest", "raw->ingest", r["egress->ingest"] / r["raw->ingest"]
}' "$out"
