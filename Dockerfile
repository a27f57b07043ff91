# brisk: a multi-stage build. The builder compiles the release binary (RocksDB's C++ sources
# included: the first build takes about ten minutes on two cores); the runtime image is
# debian-slim with the binary, a non-root user and the data volume.
#
#   docker build --build-arg BRISK_COMMIT=$(git rev-parse --short=12 HEAD) -t brisk .
#   docker compose up        # a three-node cluster, see docker-compose.yml

FROM rust:1.89-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev \
 && rm -rf /var/lib/apt/lists/*
# The commit brisk_build_info reports (the build context has no .git).
ARG BRISK_COMMIT=unknown
ENV BRISK_COMMIT=${BRISK_COMMIT}
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin brisk \
 && cp target/release/brisk /usr/local/bin/brisk

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/brisk brisk \
 && mkdir -p /var/lib/brisk \
 && chown brisk:brisk /var/lib/brisk
COPY --from=builder /usr/local/bin/brisk /usr/local/bin/brisk
USER brisk
VOLUME ["/var/lib/brisk"]
# client gRPC, HTTP (/healthz, /readyz, /metrics), Raft peers, Redis
EXPOSE 7001 8001 9001 6379
# Healthy once ready: the node applied the cluster's commit index as the leader reported it.
HEALTHCHECK --interval=5s --timeout=2s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8001/readyz || exit 1
ENTRYPOINT ["brisk", "serve"]
CMD ["--id", "1", "--data-dir", "/var/lib/brisk", "--listen", "0.0.0.0:7001", \
     "--peer-listen", "0.0.0.0:9001", "--http", "0.0.0.0:8001", "--redis", "0.0.0.0:6379", \
     "--bootstrap", "1=127.0.0.1:7001/127.0.0.1:9001", "--peer-insecure"]
