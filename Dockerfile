# Multi-stage build: compile with the Rust toolchain, run on a slim Debian as a non-root user.
# Verified with podman by scripts/verify-image.sh (see the README, "Docker").
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Stripped: the release profile keeps line tables for backtraces, 70 MB the image does not need.
RUN cargo build --release --locked --bin wagate && strip target/release/wagate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /app wagate \
    && mkdir -p /app/data && chown wagate /app/data
COPY --from=build /src/target/release/wagate /usr/local/bin/wagate
USER wagate
WORKDIR /app
ENV WAGATE_LISTEN=0.0.0.0:3000 \
    WAGATE_DATA_DIR=/app/data
VOLUME ["/app/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s CMD curl -fsS http://127.0.0.1:3000/ping || exit 1
ENTRYPOINT ["/usr/local/bin/wagate"]
