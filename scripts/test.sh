#!/usr/bin/env bash
# The project's test command (README.md, .ci/run): every test layer that runs on one machine.
# Layers that need more (LAN namespaces, docker, a real model) have their own scripts.
set -euo pipefail
cd "$(dirname "$0")/.."

# Unit, property and deterministic multi-replica tests of proto; unit tests of the daemon.
cargo test --workspace --all-targets
