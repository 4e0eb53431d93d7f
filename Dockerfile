# Container image of the harness: `mock-idp` and `harness` (stub BSR + scenario runner) in one small
# runtime image, and a chromedriver sidecar image. docker-compose.yml builds both stages.
#
#   docker build -t okta-bsr-harness .                          # the runtime image (last stage)
#   docker build --target chromedriver -t okta-bsr-chromedriver .
#
# Nothing is downloaded at build time except the base images, Debian packages and crates (the lock file pins
# the crates). The cache mounts below need BuildKit, the default builder since Docker 23; no `# syntax=` line,
# so no Dockerfile frontend image is pulled either.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------------------
# Build stage: the Rust toolchain, used only to compile the two binaries.
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
# Only what the workspace needs to compile: every member's manifest and sources (cargo reads all three
# members' manifests, including the tests crate's, even when it builds two packages).
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY mock-idp mock-idp
COPY harness harness
COPY tests tests
# The workspace's release profile keeps line tables for local backtraces; in the image they would triple the
# binaries' size (about 160 MB together), so the image's build leaves them out.
ENV CARGO_PROFILE_RELEASE_DEBUG=false
# The cache mounts keep the crate registry and the target folder between builds; the binaries are copied
# out of the cached target folder in the same step, because a cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release -p mock-idp -p harness --locked \
    && mkdir -p /out \
    && cp target/release/mock-idp target/release/harness /out/

# ---------------------------------------------------------------------------------------------------
# chromedriver sidecar: Debian's Chromium and its driver, for browser scenarios.
FROM debian:${DEBIAN_RELEASE}-slim AS chromedriver
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates chromium chromium-driver curl fonts-liberation \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/chrome --shell /usr/sbin/nologin chrome
USER 10001:10001
EXPOSE 9515
# Other containers connect by service name, so remote connections (--allowed-ips= with an empty list: any
# address, on every interface) and any Host header (--allowed-origins=*) are allowed; the port is published
# on no host interface by docker-compose.yml. curl is for this image's health check.
CMD ["chromedriver", "--port=9515", "--allowed-ips=", "--allowed-origins=*"]

# ---------------------------------------------------------------------------------------------------
# Runtime stage (the default target): both binaries, the scenario library and the compose tenant file.
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates for HTTPS identity providers. No curl: the health checks in docker-compose.yml are the
# binaries' own (`mock-idp --health-check URL`, `harness health-check URL`: exit 0 on a 2xx answer).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin harness
COPY --from=build /out/mock-idp /out/harness /usr/local/bin/
WORKDIR /opt/okta-bsr-harness
COPY scenarios scenarios
COPY docker/tenant.yaml docker/tenant.yaml
# Inside a container the servers must listen on every interface to be reachable from other containers
# (the binaries default to 127.0.0.1); docker-compose.yml publishes them on the host's loopback only.
ENV MOCK_IDP_ADDR=0.0.0.0:8080 \
    MOCK_IDP_CONFIG=/opt/okta-bsr-harness/docker/tenant.yaml \
    HARNESS_BSR_ADDR=0.0.0.0:3000
USER 10001:10001
EXPOSE 8080 3000
CMD ["mock-idp"]
