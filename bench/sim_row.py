"""One row of bench/ab.sh's simulator table from `slotmesh sim --json` on stdin."""
import json
import sys

report = json.loads(sys.stdin.read().strip().splitlines()[-1])
which, run = sys.argv[1], sys.argv[2]
print(
    f"| {which} | {run} | {report['rounds']} | {report['wall_ms']} | "
    f"{report['invariant_violations']} | {report['agreement']:.3f} | {report['transcript'][:8]}… |"
)
