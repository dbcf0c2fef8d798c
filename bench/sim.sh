#!/usr/bin/env bash
# Simulator benchmark: SPEC §7 measures and cost per round for several swarm sizes.
# Usage: bench/sim.sh [SIZES...]   (default: 10 30 60 100). Writes bench/sim-results.md.
# Every agent is a full engine replica that receives every message: cost per round grows
# as N^2 (see bench/README.md), so 1,000 agents is out of reach for this model today.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ $# -eq 0 ] && sizes=(10 30 60 100)
cargo build --release -p slotmesh >/dev/null
bin=target/release/slotmesh
out=bench/sim-results.md
{
  echo "# slotmesh sim — measured $(date -u +%Y-%m-%d) on $(nproc) cores"
  echo
  echo "30% liars, heuristic strategy, no faults, seeds 1–3 (medians), 2 lying samples per run."
  echo
  echo "| agents | rounds | wall ms | ms/round | slots/s | peak RSS KiB | turnaround_ratio | lying_gain | trust_auc | agreement | violations |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} > "$out"
for n in "${sizes[@]}"; do
  rows=()
  for seed in 1 2 3; do
    rows+=("$("$bin" sim --agents "$n" --liars 0.3 --seed "$seed" --lying-samples 2 --json | tail -n 1)")
  done
  printf '%s\n' "${rows[@]}" | python3 bench/summarize.py >> "$out"
  tail -n 1 "$out"
done
