# syntax=docker/dockerfile:1
# csp-harness in a container: the whole command line (run, simulate, compare, check, trend, ingest,
# merge). The profiles are built into the binary (`csp-harness profile list`), so the image needs
# no profiles folder; mount one to run your own. Build and try:
#
#   docker build -t csp-harness .
#   docker run --rm -v "$PWD/out:/csp/out" csp-harness compare --simulate
#   docker run --rm -p 4433:4433/udp csp-harness ingest --listen 0.0.0.0:4433 --cert-out /csp/out/ingest.pem
#
# QUIC runs over UDP, and at tens of thousands of alerts per second the kernel's default UDP socket
# buffers (about 208 KiB) drop datagrams before quinn reads them. net.core.rmem_max and
# net.core.wmem_max are not namespaced, so `docker run --sysctl` cannot raise them: set them on the
# host, e.g. `sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000`.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target folders are BuildKit caches, so a rebuild after a source change only
# recompiles the workspace; the binary is copied out of the cache before the step ends.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p csp-harness \
    && install -D -m 0755 target/release/csp-harness /out/csp-harness

FROM debian:bookworm-slim
# A user of its own: the harness needs no privilege (the ports below are above 1024).
RUN groupadd --system --gid 10001 csp \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/csp csp \
    && mkdir -p /csp/out \
    && chown -R csp:csp /csp
COPY --from=build /out/csp-harness /usr/local/bin/csp-harness
WORKDIR /csp
USER 10001:10001
# The reference ingest endpoint (`csp-harness ingest --listen 0.0.0.0:4433`): QUIC, so UDP. Live
# metrics, when asked for (`--metrics-listen 0.0.0.0:9464`, README "Live metrics"): TCP. The
# results themselves are the files written under /csp/out.
EXPOSE 4433/udp 9464/tcp
VOLUME ["/csp/out"]
ENTRYPOINT ["csp-harness"]
CMD ["--help"]
