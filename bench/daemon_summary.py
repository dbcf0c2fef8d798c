"""One row of bench/daemon-results.md from the data dirs of several `slotmesh swarm` runs."""
import json
import pathlib
import statistics
import sys


def run_figures(directory, wall):
    statuses = [json.loads(p.read_text()) for p in pathlib.Path(directory).glob("*/status.json")]
    # Round latency: gaps between consecutive final rounds as the longest-lived node saw them.
    longest = max(statuses, key=lambda s: len(s["schedule"]))
    times = [e["final_unix_ms"] for e in longest["schedule"]]
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    # Rounds before the first completion: every agent still active.
    first_done = min((len(s["schedule"]) for s in statuses), default=0)
    full = sorted(b - a for a, b in zip(times[1:first_done], times[2:first_done]))
    rounds = len(longest["schedule"])
    slots = [slot for s in statuses for slot in s["slots"]]
    busy = sum(s["end_unix_ms"] - s["start_unix_ms"] for s in slots)
    span = (max(s["end_unix_ms"] for s in slots) - min(s["start_unix_ms"] for s in slots)) if slots else 0
    per_node_rounds = [max(1, len(s["schedule"])) for s in statuses]
    msgs = statistics.median(s["messages_out"] / r for s, r in zip(statuses, per_node_rounds))
    bytes_ = statistics.median(s["bytes_out"] / r for s, r in zip(statuses, per_node_rounds))
    return {
        "rounds": rounds,
        "median": statistics.median(gaps) if gaps else 0,
        "full": statistics.median(full) if full else float("nan"),
        "p99": gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))] if gaps else 0,
        "util": busy / span if span else float("nan"),
        "msgs": msgs,
        "bytes": bytes_,
        "rss": max(s["peak_rss_kib"] for s in statuses) / 1024,
        "wall": wall,
    }


def main():
    n, slot, failed = sys.argv[1], sys.argv[2], sys.argv[3]
    figures = []
    for arg in sys.argv[4:]:
        directory, wall = arg.rsplit(":", 1)
        figures.append(run_figures(directory, float(wall)))
    if not figures:
        print(f"| {n} | {slot} | — | — | — | — | — | — | — | — | — | {failed} |")
        return
    med = lambda key: statistics.median(f[key] for f in figures)
    util = med("util") if slot != "0" else float("nan")
    util_text = "—" if slot == "0" else f"{util:.3f}"
    print(
        f"| {n} | {slot} | {med('rounds'):.0f} | {med('median'):.1f} | {med('p99'):.1f} | {med('full'):.1f} "
        f"| {util_text} | {med('msgs'):.1f} | {med('bytes'):.0f} | {med('rss'):.1f} | {med('wall'):.1f} | {failed} |"
    )


main()
