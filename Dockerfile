# syntax=docker/dockerfile:1
# Meridian image: both binaries (`meridian`, `meridian-sim`) on Debian bookworm.
#   docker build -t meridian .
#   docker run --rm meridian meridian --help

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crates.io registry and incremental artifacts between builds
# (BuildKit, the default builder of current Docker). The binaries are copied out of
# the cached target dir because cache mounts are not part of the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p meridian -p meridian-sim \
 && install -D -m 0755 target/release/meridian target/release/meridian-sim -t /out/

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: TLS to managed PostgreSQL/MQTT; curl: health checks (see docker-compose.yml).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin meridian
COPY --from=build /out/meridian /out/meridian-sim /usr/local/bin/
COPY migrations /usr/share/meridian/migrations
USER meridian
ENV MERIDIAN_HTTP_ADDR=0.0.0.0:8080 \
    RUST_LOG=info
EXPOSE 8080
CMD ["meridian", "serve"]
