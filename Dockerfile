# The slotmesh image for users with a registry: a multi-stage build, a small non-root runtime.
#   docker build -t slotmesh:latest .      (or: docker compose build)
# On machines without a registry, scripts/docker-image.sh builds the same tag FROM scratch
# around a statically linked binary (scripts/docker/Dockerfile.scratch).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p slotmesh && cp target/release/slotmesh /slotmesh

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /slotmesh /usr/local/bin/slotmesh
# The data dir (identity key, ledger, memory) lives on a volume; nonroot is uid 65532.
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 4001
ENTRYPOINT ["/usr/local/bin/slotmesh"]
CMD ["--help"]
