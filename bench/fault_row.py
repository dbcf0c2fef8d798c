"""Reads one `slotmesh sim --json` line on stdin (the fault run) and prints its markdown row."""
import json
import sys

r = json.loads(sys.stdin.read())
done = sum(1 for a in r["per_agent"] if a["status"] == "completed")
cells = [
    str(r["rounds"]),
    f"{r['wall_ms']:,}",
    f"{r['peak_rss_kib']:,}",
    f"{r['turnaround_ratio']:.3f}",
    f"{r['trust_auc']:.3f}",
    f"{r['agreement']:.3f}",
    str(r["invariant_violations"]),
    f"{done} of {len(r['per_agent'])}",
]
print("| " + " | ".join(cells) + " |")
