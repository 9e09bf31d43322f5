# modgate container image: build with the Rust toolchain, run on a small Debian.
#
#   docker build -t modgate .
#   docker run -p 8080:8080 -v modgate-data:/data modgate
#
# Configure with MODGATE_* environment variables or a TOML file
# (MODGATE_CONFIG=/etc/modgate/modgate.toml); see config/modgate.toml.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin modgate \
 && strip target/release/modgate

FROM debian:bookworm-slim AS runtime
# ca-certificates: modgate verifies upstream and checksum-database TLS against the system roots.
# golang-go, git, openssh-client: `direct` in private_upstream runs the go command against VCS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates golang-go git openssh-client \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 modgate \
 && useradd --system --uid 10001 --gid modgate --home-dir /data --shell /usr/sbin/nologin modgate \
 && mkdir -p /data \
 && chown modgate:modgate /data
COPY --from=builder /src/target/release/modgate /usr/local/bin/modgate
COPY config/modgate.toml /etc/modgate/modgate.toml

ENV MODGATE_LISTEN=0.0.0.0:8080 \
    MODGATE_DATA_DIR=/data \
    MODGATE_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
USER modgate:modgate

# `modgate healthcheck` GETs /healthz on MODGATE_LISTEN (no curl needed in the image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/modgate", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/modgate"]
CMD ["serve"]
