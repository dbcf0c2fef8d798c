#!/usr/bin/env bash
# Simulator benchmark (the measures of docs/SIMULATION.md and the cost of a round), written to bench/sim-results.md.
# Usage: bench/sim.sh [--quick]
#   1. the cost of one signature (what a daemon pays per message; the simulator signs only
#      what it writes with --out);
#   2. the cost of a round at N = 100, 1,000, 10,000 agents (`--max-rounds`: the first rounds,
#      when every agent is active), on the default hosts; at 100 also one replica per agent,
#      at 1,000 also 2 and 4 hosts (what the replicas' share of the cost is);
#   3. whole runs with every measure: 100 and 300 agents (seeds 1-3, 2 lying samples each) and
#      1,000 agents (seed 1, 2 lying samples: each costs two more whole runs), and 1,000
#      truthful agents — skipped with --quick;
#   4. the fault run: 200 agents, --loss 0.1 --crash 5 --partition 20:5.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=${1:-}
cargo build --release -p slotmesh >/dev/null
cargo build --release -p slotmesh-proto --example sign_cost >/dev/null
bin=target/release/slotmesh
out=bench/sim-results.md
# A run with violations exits 1: its JSON line (violations counted) still goes in the table.
sim() { { "$bin" sim --liars "${liars:-0.3}" --json "$@" || true; } | tail -n 1; }
{
  echo "# slotmesh sim — measured $(date -u +%Y-%m-%d) on $(nproc) cores"
  echo
  echo "Heuristic strategy, 30% liars. Produced by \`bench/sim.sh\`."
  echo
  echo "## One signature"
  echo
  echo "    $(target/release/examples/sign_cost)"
  echo
  echo "## Cost of a round (the first rounds, every agent active)"
  echo
  echo "| agents | hosts | rounds | wall ms | ms/round | µs per agent-round | ms/round ÷ (N log₂N), ×1000 | peak RSS KiB | violations |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} > "$out"
round_cost() { # agents hosts rounds
  sim --agents "$1" --hosts "$2" --max-rounds "$3" --lying-samples 0 --seed 1 \
    | python3 bench/round_cost.py "$2" >> "$out"
  tail -n 1 "$out"
}
round_cost 100 0 40
round_cost 100 100 40
round_cost 1000 0 20
round_cost 1000 4 20
round_cost 1000 2 20
round_cost 10000 0 4
{
  echo
  echo "## Whole runs (medians of the seeds)"
  echo
  echo "| agents | rounds | wall ms | ms/round | slots/s | peak RSS KiB | turnaround_ratio | lying_gain | trust_auc | agreement | violations |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} >> "$out"
whole() { # agents lying-samples seeds...
  local n=$1 samples=$2
  shift 2
  for seed in "$@"; do sim --agents "$n" --seed "$seed" --lying-samples "$samples"; done \
    | python3 bench/summarize.py >> "$out"
  tail -n 1 "$out"
}
whole 100 2 1 2 3
if [ "$quick" != "--quick" ]; then
  whole 300 2 1 2 3
  whole 1000 2 1
  {
    echo
    echo "All truthful (\`--liars 0\`): the schedule against SRPT with nothing to punish."
    echo
    echo "| agents | rounds | wall ms | ms/round | slots/s | peak RSS KiB | turnaround_ratio | lying_gain | trust_auc | agreement | violations |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  } >> "$out"
  liars=0 whole 1000 0 1
fi
{
  echo
  echo "## Faults: 200 agents, \`--loss 0.1 --crash 5 --partition 20:5 --seed 1\`"
  echo
  echo "| rounds | wall ms | peak RSS KiB | turnaround_ratio | trust_auc | agreement | violations | completed |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
} >> "$out"
sim --agents 200 --loss 0.1 --crash 5 --partition 20:5 --seed 1 --lying-samples 0 \
  | python3 bench/fault_row.py >> "$out"
tail -n 1 "$out"
