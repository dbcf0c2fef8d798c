#!/usr/bin/env bash
# Daemon benchmark: real `slotmesh daemon` processes on 127.0.0.1 (via `slotmesh swarm`),
# for N = 3, 8, 16 and --slot-ms 0 and 100. Reads every daemon's status.json at the end and
# reports round latency (median, p99, from one node's final-round times), slot utilisation
# (time a slot is executing / time from the first slot's start to the last slot's end),
# messages and bytes sent per round per node, and peak resident memory per daemon.
# Usage: bench/daemon.sh [SIZES...]   (default: 3 8 16). Writes bench/daemon-results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ $# -eq 0 ] && sizes=(3 8 16)
cargo build --release -p slotmesh >/dev/null
bin=target/release/slotmesh
out=bench/daemon-results.md
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
  echo "# slotmesh daemons on loopback — measured $(date -u +%Y-%m-%d) on $(nproc) cores"
  echo
  echo "\`slotmesh swarm --nodes N --seed S --slot-ms MS\` (heuristic, 30% liars, phase timeout 1000 ms),"
  echo "seeds 1–3; each figure is the median over the three runs. Loopback one-way delay is ~0.05 ms."
  echo
  echo "Round latency is measured twice: over all rounds (members leave as their jobs end, so later"
  echo "rounds are smaller), and over the rounds in which all N agents were still active (\"full\")."
  echo "Messages and bytes per round are a node's own signed messages (relays and transport overhead not counted)."
  echo
  echo "| N | slot ms | rounds | latency median ms | p99 ms | full-swarm median ms | slot utilisation | msgs/round/node | bytes/round/node | peak RSS/daemon MiB (max) | wall s | failed runs |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} > "$out"
for n in "${sizes[@]}"; do
  for slot in 0 100; do
    runs=()
    failed=0
    for seed in 1 2 3; do
      dir="$work/n$n-s$slot-$seed"
      start=$(date +%s.%N)
      if "$bin" swarm --nodes "$n" --seed "$seed" --slot-ms "$slot" --timeout-s 120 --out "$dir" >/dev/null 2>&1; then
        end=$(date +%s.%N)
        runs+=("$dir:$(python3 -c "print($end-$start)")")
      else
        failed=$((failed + 1))
      fi
    done
    python3 bench/daemon_summary.py "$n" "$slot" "$failed" "${runs[@]}" >> "$out"
    tail -n 1 "$out"
  done
done
