#!/usr/bin/env python3
"""Does lying pay? The adversary library against two builds of `slotmesh sim`, side by side.

For each binary, population size and adversary share, `slotmesh sim --agents N --mix ...
--json` over seeds; from each run's JSON:
- lying_gain_by_kind: per adversary kind, the relative change of one sampled agent's
  turnaround when it attacks rather than plays honestly (negative: the attack cost it);
- lying_gain: the same for the heuristic's own lies (sampled heuristic agents);
- honest ratio: honest agents' (heuristic, never lied, no fault) mean turnaround against
  theirs in the SRPT schedule of every completed job, computed here from per_agent so that
  both builds are measured alike;
- trust AUC: final trust separating truthful heuristic agents from agents that lied in a
  claim (computed here alike).

Usage: bench/mechanism.py BIN [BIN ...] [AGENTS] [SEEDS] > rows.md
"""

import heapq
import json
import statistics
import subprocess
import sys
import os
import time

# Adversary kinds spread over the population (BENCH_KINDS: comma-separated; a build that does
# not know a kind refuses it in --mix).
KINDS = os.environ.get("BENCH_KINDS", "underclaim,pledge-break,withhold").split(",")


def mix(share):
    """`--mix` with `share` percent adversaries spread evenly over the kinds."""
    if share == 0:
        return "heuristic:100"
    # Integer weights: share / len(KINDS) percent each.
    return ",".join([f"heuristic:{(100 - share) * len(KINDS)}"] + [f"{k}:{share}" for k in KINDS])


def srpt_turnarounds(jobs):
    """Each job's turnaround in the preemptive SRPT schedule, one slot at a time."""
    order = sorted(range(len(jobs)), key=lambda i: jobs[i][0])
    out = [0] * len(jobs)
    ready, k = [], 0
    slot = jobs[order[0]][0] if jobs else 0
    left = dict((i, jobs[i][1]) for i in range(len(jobs)))
    done = 0
    while done < len(jobs):
        while k < len(order) and jobs[order[k]][0] <= slot:
            i = order[k]
            heapq.heappush(ready, (left[i], i))
            k += 1
        if not ready:
            slot = jobs[order[k]][0]
            continue
        rem, i = heapq.heappop(ready)
        rem -= 1
        if rem == 0:
            out[i] = slot + 1 - jobs[i][0]
            done += 1
        else:
            heapq.heappush(ready, (rem, i))
        slot += 1
    return out


def auc(pos, neg):
    if not pos or not neg:
        return None
    wins = 0.0
    for p in pos:
        wins += sum(1.0 if p > n else 0.5 if p == n else 0.0 for n in neg)
    return wins / (len(pos) * len(neg))


def measure(binary, agents, share, seed, liars):
    cmd = [binary, "sim", "--agents", str(agents), "--mix", mix(share), "--liars", str(liars),
           "--seed", str(seed), "--lying-samples", "1", "--json"]
    started = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    wall = time.time() - started
    report = json.loads(out.stdout.strip().splitlines()[-1])
    per = report["per_agent"]
    done = [a for a in per if a["turnaround"] is not None and a["arrival_round"] is not None]
    best = srpt_turnarounds([(a["arrival_round"], a["burst"]) for a in done])
    honest = [(a["turnaround"], b) for a, b in zip(done, best)
              if a.get("strategy", "heuristic") == "heuristic" and not a["lied"] and not a["fault"]]
    ratio = (sum(t for t, _ in honest) / sum(b for _, b in honest)) if honest else None
    admitted = [a for a in per if a["status"] is not None]
    truthful = [a["trust"] for a in admitted
                if not a["lied"] and a.get("strategy", "heuristic") == "heuristic" and not a["fault"]]
    lied = [a["trust"] for a in admitted if a["lied"]]
    return {
        "gains": report.get("lying_gain_by_kind", {}),
        "lying_gain": report.get("lying_gain"),
        "ratio": ratio,
        "auc": auc(truthful, lied),
        "violations": report["invariant_violations"],
        "wall": wall,
    }


def fmt(v, spec="+.3f"):
    return "—" if v is None else format(v, spec)


def main():
    bins = [a for a in sys.argv[1:] if not a.isdigit()]
    numbers = [int(a) for a in sys.argv[1:] if a.isdigit()]
    agents = numbers[0] if numbers else 30
    seeds = numbers[1] if len(numbers) > 1 else 5
    print("| binary | agents | adversaries | heuristic liars | "
          + " | ".join(f"gain {k}" for k in KINDS)
          + " | lying_gain (heuristic) | honest ratio | trust AUC | violations | wall s |")
    print("|---|---:|---:|---:|" + "---:|" * (len(KINDS) + 6))
    for share, liars in [(10, 0.3), (30, 0.3), (0, 0.0)]:
        for binary in bins:
            runs = [measure(binary, agents, share, seed, liars) for seed in range(1, seeds + 1)]
            med = lambda xs: statistics.median(xs) if xs else None
            gains = [fmt(med([r["gains"][k] for r in runs if k in r["gains"]])) for k in KINDS]
            print(f"| {binary} | {agents} | {share}% | {int(liars * 100)}% | " + " | ".join(gains)
                  + f" | {fmt(med([r['lying_gain'] for r in runs if r['lying_gain'] is not None]))}"
                  + f" | {fmt(med([r['ratio'] for r in runs if r['ratio']]), '.3f')}"
                  + f" | {fmt(med([r['auc'] for r in runs if r['auc'] is not None]), '.3f')}"
                  + f" | {sum(r['violations'] for r in runs)}"
                  + f" | {fmt(med([r['wall'] for r in runs]), '.1f')} |", flush=True)


if __name__ == "__main__":
    main()
