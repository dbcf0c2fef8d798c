#!/usr/bin/env bash
# Builds the image docker-compose.yml runs, slotmesh:latest, with no registry: a statically
# linked slotmesh wrapped in an image FROM scratch (scripts/docker/Dockerfile.scratch). Then
# `docker compose up --no-build` (or `docker-compose up --no-build`) starts the swarm.
set -euo pipefail
cd "$(dirname "$0")/.."
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT

echo "== static binary (cargo build --release, crt-static; a cold build takes several minutes)"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p slotmesh \
  --target x86_64-unknown-linux-gnu --target-dir target/static >/dev/null
bin=target/static/x86_64-unknown-linux-gnu/release/slotmesh

echo "== image slotmesh:latest FROM scratch"
mkdir -p "$context/data"
cp "$bin" "$context/slotmesh"
strip "$context/slotmesh" 2>/dev/null || true
docker build -q -t slotmesh:latest -f scripts/docker/Dockerfile.scratch "$context" >/dev/null
echo "built slotmesh:latest; start the swarm with: docker compose up --no-build"
