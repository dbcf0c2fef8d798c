#!/usr/bin/env bash
# The project's test command (README.md, .ci/run): every test layer that runs on one machine.
# Layers that need more (LAN namespaces, docker, a real model) have their own scripts.
set -euo pipefail
cd "$(dirname "$0")/.."

# Unit, property and deterministic multi-replica tests of proto; the simulator; the binary's
# command line; and real daemon processes on 127.0.0.1 (slotmesh/tests/network.rs: explicit
# peers, mDNS off, kill -9, restart, late join, a hostile peer).
# --release: the quick start's profile, so its build is reused (Cargo.toml says why).
cargo test --release --workspace --all-targets
