#!/usr/bin/env bash
# --exec benchmark: `slotmesh swarm --exec-demo` (the seed preset, each agent's job a
# CPU-bound process that runs only in the slots it wins) at several slot lengths. For every
# won slot the job outlived, the fraction of the slot it actually got the CPU
# (job CPU time in the slot / slot length), from the daemons' status files.
# Usage: bench/exec.sh [SLOT_MS...] (default 100 200 400). Writes bench/exec-results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
slots=("$@")
[ $# -eq 0 ] && slots=(100 200 400)
cargo build --release -p slotmesh >/dev/null
bin=target/release/slotmesh
out=bench/exec-results.md
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
  echo "# slotmesh --exec — measured $(date -u +%Y-%m-%d) on $(nproc) cores"
  echo
  echo "\`slotmesh swarm --exec-demo --slot-ms MS --seed S\`, seeds 1–3: the fraction of each won slot"
  echo "in which the job had the CPU (slots the job outlived; 3 daemons and 1 running job share 2 cores)."
  echo
  echo "| slot ms | slots measured | median fraction | min | max |"
  echo "|---:|---:|---:|---:|---:|"
} > "$out"
for slot in "${slots[@]}"; do
  dirs=()
  for seed in 1 2 3; do
    "$bin" swarm --exec-demo --seed "$seed" --slot-ms "$slot" --out "$work/s$slot-$seed" >/dev/null 2>&1
    dirs+=("$work/s$slot-$seed")
  done
  python3 - "$slot" "${dirs[@]}" >> "$out" <<'PY'
import json, pathlib, statistics, sys
slot = sys.argv[1]
fractions = []
for d in sys.argv[2:]:
    for f in pathlib.Path(d).glob("*/status.json"):
        for s in json.loads(f.read_text())["slots"]:
            if s["job_cpu_ms"] is not None:
                fractions.append(s["job_cpu_ms"] / max(1, s["end_unix_ms"] - s["start_unix_ms"]))
print(f"| {slot} | {len(fractions)} | {statistics.median(fractions):.2f} | {min(fractions):.2f} | {max(fractions):.2f} |")
PY
  tail -n 1 "$out"
done
