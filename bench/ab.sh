#!/usr/bin/env bash
# Side-by-side benchmark of two slotmesh binaries (say, before and after a protocol change),
# alternating A and B run by run so that both see the same machine:
# - daemons on loopback: `swarm --nodes N --slot-ms 0` for N = 3, 8, 16, seeds 1-3, reading
#   every daemon's status.json (round latency median and p99, messages and bytes per round
#   per node; bench/daemon_summary.py);
# - the simulator: the 200-agent fault run and the 1,000-agent whole run (wall time, rounds,
#   transcript), `--lying-samples 0`.
# Usage: bench/ab.sh BIN_A BIN_B [OUT]   (default OUT: bench/ab-results.md)
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1
b=$2
out=${3:-bench/ab-results.md}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
{
  echo "# A/B: \`$a\` (A) against \`$b\` (B) — measured $(date -u +%Y-%m-%d) on $(nproc) cores"
  echo
  echo "Runs alternate A, B, A, B…; each figure is the median over seeds 1–3."
  echo
  echo "## Daemons on loopback (\`swarm --nodes N --slot-ms 0\`, heuristic, 30% liars, phase timeout 1000 ms)"
  echo
  echo "| binary | N | slot ms | rounds | latency median ms | p99 ms | full-swarm median ms | slot utilisation | msgs/round/node | bytes/round/node | peak RSS/daemon MiB (max) | wall s | failed runs |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} > "$out"
for n in 3 8 16; do
  declare -A runs=([A]="" [B]="")
  declare -A failed=([A]=0 [B]=0)
  for seed in 1 2 3; do
    for which in A B; do
      bin=$a
      [ "$which" = B ] && bin=$b
      dir="$work/$which-n$n-$seed"
      start=$(now)
      if "$bin" swarm --nodes "$n" --seed "$seed" --slot-ms 0 --timeout-s 180 --out "$dir" >/dev/null 2>&1; then
        runs[$which]+=" $dir:$(python3 -c "print($(now)-$start)")"
      else
        failed[$which]=$((failed[$which] + 1))
      fi
    done
  done
  for which in A B; do
    # shellcheck disable=SC2086
    row=$(python3 bench/daemon_summary.py "$n" 0 "${failed[$which]}" ${runs[$which]})
    echo "| $which $row" >> "$out"
    tail -n 1 "$out"
  done
done
{
  echo
  echo "## Simulator"
  echo
  echo "| binary | run | rounds | wall ms | violations | agreement | transcript |"
  echo "|---|---|---:|---:|---:|---:|---|"
} >> "$out"
sim_row() { python3 bench/sim_row.py "$1" "$2"; }
for seed in 1 2; do
  for which in A B; do
    bin=$a
    [ "$which" = B ] && bin=$b
    "$bin" sim --agents 200 --loss 0.1 --crash 5 --partition 20:5 --seed "$seed" --lying-samples 0 --json 2>/dev/null \
      | sim_row "$which" "200 agents, faults, seed $seed" >> "$out"
    tail -n 1 "$out"
  done
done
for which in A B; do
  bin=$a
  [ "$which" = B ] && bin=$b
  "$bin" sim --agents 1000 --seed 1 --lying-samples 0 --json 2>/dev/null \
    | sim_row "$which" "1,000 agents, seed 1" >> "$out"
  tail -n 1 "$out"
done
