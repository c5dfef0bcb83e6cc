#!/usr/bin/env bash
# Benchmark of the HTTP egress (not a test): the harness's engine and transports (egress/examples/
# blast.rs: N alerts fed straight into the real engine, no model) against h2load, side by side, on
# the same nginx on loopback with the same body (one rendered JSON alert) and the same concurrency:
#   HTTP/2:   h2load -c C -m M          vs  blast --http2 --connections C --in-flight M
#   HTTP/1.1: h2load --h1 -c C1         vs  blast --http1.1 --connections C1
#   HTTP/3:   blast --http3 against Caddy (and h2load over h3, if this h2load build speaks it),
#             beside blast over csp-alert/QUIC to the reference endpoint for the raw-QUIC figure.
# Prints the ratios, and for HTTP/2 each client's CPU time per request (user + system, from
# /usr/bin/time): on a shared machine the rates drift with the other load, the CPU cost does not.
# Usage: bench/http/run.sh [alerts]   (from the repository root; writes bench/http/last-run.txt).
# Needs nginx, caddy, h2load, time (Debian: nginx caddy nghttp2-client time), openssl.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-200000}"
C=4; M=100; C1=32
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p egress --example blast -p csp-harness >/dev/null
BLAST="$CARGO_TARGET_DIR/release/examples/blast"
HARNESS="$CARGO_TARGET_DIR/release/csp-harness"
DIR=$(mktemp -d /tmp/csp-bench-http.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 2; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$DIR/key.pem" \
  -out "$DIR/cert.pem" -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null
"$BLAST" --write-body "$DIR/body.json"
BODY=$(wc -c <"$DIR/body.json")
HDRS=(-H 'content-type: application/json' -H 'idempotency-key: 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a-246912'
      -H 'x-csp-alert-kind: POA' -H 'x-csp-alert-code: AD1')

NGX=$(free_port)
cat >"$DIR/nginx.conf" <<NGINX
daemon off;
master_process off;
pid $DIR/nginx.pid;
error_log $DIR/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $DIR/body;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$NGX ssl http2;
    ssl_certificate $DIR/cert.pem;
    ssl_certificate_key $DIR/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location /alerts { return 204; }
  }
}
NGINX
nginx -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/error.log" & PIDS+=($!)
wait_port "$NGX"

CDY=$(free_port)
cat >"$DIR/Caddyfile" <<CADDY
{
	admin off
	auto_https disable_redirects
	skip_install_trust
	storage file_system $DIR/caddy-data
	servers {
		protocols h1 h2 h3
	}
}
https://127.0.0.1:$CDY, https://localhost:$CDY {
	tls $DIR/cert.pem $DIR/key.pem
	respond /alerts* 204
}
CADDY
HOME="$DIR" XDG_DATA_HOME="$DIR/xdg" XDG_CONFIG_HOME="$DIR/xdg" \
  caddy run --adapter caddyfile --config "$DIR/Caddyfile" >"$DIR/caddy.log" 2>&1 & PIDS+=($!)
wait_port "$CDY"; sleep 0.5

ING=$(free_port)
"$HARNESS" ingest --listen "127.0.0.1:$ING" --cert-out "$DIR/ingest-cert.pem" >"$DIR/ingest.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do [ -s "$DIR/ingest-cert.pem" ] && break; sleep 0.1; done; sleep 0.3

h2rate() { awk '/finished in/{for(i=1;i<=NF;i++) if($i=="req/s,") print $(i-1)}'; }
blastrate() { sed -n 's/.*acked_per_s=\([0-9.]*\).*/\1/p'; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
cpu_us() { awk -v n="$N" '{printf "%.1f", ($1 + $2) * 1e6 / n}' "$1"; }

{
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  nproc=$(nproc)  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)  mem=$(free -m | awk '/Mem:/{print $2}') MiB"
echo "# alerts=$N body=${BODY}B  h2: c=$C m=$M  h1: c=$C1  $(nginx -v 2>&1)  caddy $(caddy version | cut -d' ' -f1)  $(h2load --version | head -1)"
URL="https://127.0.0.1:$NGX/alerts"
H2=$(/usr/bin/time -f '%U %S' -o "$DIR/t-h2load" h2load -n "$N" -c "$C" -m "$M" -d "$DIR/body.json" "${HDRS[@]}" "$URL" | h2rate)
B2=$(/usr/bin/time -f '%U %S' -o "$DIR/t-blast" "$BLAST" --threads 1 --url "$URL" --ca "$DIR/cert.pem" --http2 --connections "$C" --in-flight "$M" --alerts "$N" | tee "$DIR/b2" | blastrate)
echo "HTTP/2   nginx: h2load $H2 req/s   harness $B2 acked/s   ratio $(ratio "$B2" "$H2")   [$(cat "$DIR/b2")]"
echo "HTTP/2   client CPU per request (user+sys): h2load $(cpu_us "$DIR/t-h2load") us   harness $(cpu_us "$DIR/t-blast") us"
H1=$(h2load --h1 -n "$N" -c "$C1" -d "$DIR/body.json" "${HDRS[@]}" "$URL" | h2rate)
B1=$("$BLAST" --url "$URL" --ca "$DIR/cert.pem" --http1.1 --connections "$C1" --in-flight 1 --alerts "$N" | tee "$DIR/b1" | blastrate)
echo "HTTP/1.1 nginx: h2load --h1 $H1 req/s   harness $B1 acked/s   ratio $(ratio "$B1" "$H1")   [$(cat "$DIR/b1")]"
CURL="https://127.0.0.1:$CDY/alerts"
H3=$(h2load --npn-list=h3 -n "$N" -c "$C" -m "$M" -d "$DIR/body.json" "${HDRS[@]}" "$CURL" 2>/dev/null | h2rate || true)
case "$H3" in ""|0|0.00) H3="not supported by this h2load build (no QUIC): 0 requests done";; *) H3="$H3 req/s";; esac
B3=$("$BLAST" --url "h3://127.0.0.1:$CDY/alerts" --server-name localhost --ca "$DIR/cert.pem" --connections "$C" --in-flight "$M" --alerts "$N" | tee "$DIR/b3" | blastrate)
C2=$("$BLAST" --url "$CURL" --server-name localhost --ca "$DIR/cert.pem" --http2 --connections "$C" --in-flight "$M" --alerts "$N" | blastrate)
HC2=$(h2load -n "$N" -c "$C" -m "$M" -d "$DIR/body.json" "${HDRS[@]}" "https://localhost:$CDY/alerts" | h2rate)
Q=$("$BLAST" --url "quic://127.0.0.1:$ING" --server-name localhost --ca "$DIR/ingest-cert.pem" --connections 4 --streams 4 --in-flight 256 --alerts "$N" | blastrate)
echo "HTTP/3   caddy: harness $B3 acked/s (h2load over h3: $H3)   [$(cat "$DIR/b3")]"
echo "HTTP/2   caddy: h2load $HC2 req/s   harness $C2 acked/s   ratio $(ratio "$C2" "$HC2")"
echo "csp-alert/2 over QUIC, reference endpoint (4 conn x 4 streams x 256): harness $Q acked/s"
} | tee bench/http/last-run.txt
