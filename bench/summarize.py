"""Reads `slotmesh sim --json` lines on stdin (one run each) and prints one markdown row of medians."""
import json
import statistics
import sys

runs = [json.loads(line) for line in sys.stdin if line.strip()]


def median(key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt(value, places=3):
    if value is None:
        return "-"
    return f"{value:.{places}f}" if isinstance(value, float) else str(value)


rounds, wall = median("rounds"), median("wall_ms")
cells = [
    str(runs[0]["agents"]),
    fmt(rounds),
    fmt(wall),
    f"{wall / max(rounds, 1):.2f}",
    fmt(median("slots_per_sec"), 0),
    fmt(median("peak_rss_kib")),
    fmt(median("turnaround_ratio")),
    fmt(median("lying_gain")),
    fmt(median("trust_auc")),
    fmt(median("agreement")),
    str(sum(r["invariant_violations"] for r in runs)),
]
print("| " + " | ".join(cells) + " |")
