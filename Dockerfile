# syntax=docker/dockerfile:1
# The `bazaar` binary (every server role: serve | http | grpc | worker |
# migrate | seed) in a small, non-root runtime image.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Manifests first so dependency builds are cached across source edits.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p bazaar \
 && cp target/release/bazaar /usr/local/bin/bazaar

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/bazaar --create-home bazaar
COPY --from=build /usr/local/bin/bazaar /usr/local/bin/bazaar
USER 10001:10001
WORKDIR /var/lib/bazaar
ENV BAZAAR_LOG_FORMAT=json
EXPOSE 8080 50051 9090
ENTRYPOINT ["/usr/local/bin/bazaar"]
CMD ["serve", "--data-dir", "/var/lib/bazaar/data", "--http-addr", "0.0.0.0:8080", "--grpc-addr", "0.0.0.0:50051"]
