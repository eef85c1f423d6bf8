# The gallring operator image.
#
#   docker build -t gallring:0.1.0 .
#
# The cache mounts need BuildKit (the default builder since Docker 23; Podman/Buildah support
# them too). The runtime image is distroless: no shell, no package manager, user 65532.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# Only what the build reads: the workspace manifest and lock file, the crate, and tests/
# (operator/Cargo.toml names test targets there, so they must exist for the manifest to load).
COPY Cargo.toml Cargo.lock ./
COPY operator ./operator
COPY tests ./tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gallring --bin gallring \
    && install -D -m 0755 target/release/gallring /out/gallring

# glibc from Debian 12, like the builder; CA certificates for S3 endpoints.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="gallring" \
      org.opencontainers.image.description="Retention operator for call recordings in S3-compatible object storage" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=builder /out/gallring /usr/local/bin/gallring
USER 65532:65532
# /metrics, /healthz and /readyz (`--metrics-addr`).
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/gallring"]
CMD ["operator"]
