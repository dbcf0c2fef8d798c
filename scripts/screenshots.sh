#!/usr/bin/env bash
# Remakes docs/screenshots/{dashboard,report}.png from the seed preset as it runs today: a
# `slotmesh swarm --preset seed --http` whose dashboards linger after the run, A's dashboard
# captured by headless Chromium once the run is over, then `slotmesh report` of the run.
# Needs Chromium (Debian's `chromium`) and a release build (`cargo build --release -p slotmesh`).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SLOTMESH_BIN:-target/release/slotmesh}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then echo "no Chromium found" >&2; exit 1; fi
work=$(mktemp -d)
swarm_pid=
cleanup() {
  if [ -n "$swarm_pid" ]; then kill "$swarm_pid" 2>/dev/null || true; wait "$swarm_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
shoot() { # URL PNG
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$work/profile" --window-size=1100,1000 --virtual-time-budget=3000 \
    --screenshot="$2" "$1" >/dev/null 2>&1
}

"$bin" swarm --preset seed --slot-ms 500 --http 127.0.0.1:0 --linger 30 --out "$work/run" \
  >"$work/summary.txt" 2>"$work/progress.txt" &
swarm_pid=$!
# The run is over once the summary's verdict is printed; the dashboards linger after it.
for _ in $(seq 1 240); do
  grep -q "ledgers agree" "$work/summary.txt" 2>/dev/null && break
  sleep 0.5
done
grep -q "ledgers agree" "$work/summary.txt" || { cat "$work/progress.txt" >&2; exit 1; }
url=$(grep -o 'A: dashboard http://[0-9.:]*/' "$work/progress.txt" | grep -o 'http://.*')
shoot "${url}?live=0" docs/screenshots/dashboard.png
"$bin" report "$work/run" --out "$work/report" >/dev/null
shoot "file://$work/report/index.html" docs/screenshots/report.png
cat "$work/summary.txt"
echo "wrote docs/screenshots/dashboard.png and docs/screenshots/report.png"
