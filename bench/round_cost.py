"""Reads one `slotmesh sim --json --max-rounds R` line on stdin and prints a markdown row of the
cost of a round. Argument: the --hosts given (0: the default)."""
import json
import math
import sys

r = json.loads(sys.stdin.read())
n, rounds, wall = r["agents"], max(r["rounds"], 1), r["wall_ms"]
hosts = r.get("hosts") or sys.argv[1]
per_round = wall / rounds
cells = [
    f"{n:,}",
    str(hosts),
    str(r["rounds"]),
    f"{wall:,}",
    f"{per_round:.1f}",
    f"{per_round * 1000 / n:.1f}",
    f"{per_round / (n * math.log2(n)) * 1000:.3f}",
    f"{r['peak_rss_kib']:,}",
    str(r["invariant_violations"]),
]
print("| " + " | ".join(cells) + " |")
