#!/usr/bin/env bash
# The real `docker compose up` on this machine's Docker engine, with no registry: builds the
# image docker-compose.yml expects (scripts/docker-image.sh: a statically linked slotmesh in
# an image FROM scratch tagged slotmesh:latest), starts the compose swarm (mDNS on the compose network),
# `docker kill`s one agent mid-run, keeps it down until the others have suspended it, then
# `docker start`s it again: it rejoins on its volume and finishes too. Checks that all five
# finish (exit 0) and that their ledgers, copied out of the volumes, verify and agree. Always
# tears down what it started. Prints how long the restarted agent took to take part again.
set -euo pipefail
cd "$(dirname "$0")/.."
project=slotmesh-test-$$
work=$(mktemp -d)
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
dc() { "${compose[@]}" -p "$project" -f docker-compose.yml "$@"; }
cleanup() {
  dc down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bash scripts/docker-image.sh
bin=target/static/x86_64-unknown-linux-gnu/release/slotmesh

echo "== docker compose up (slots of 1.5 s, so the kill and the restart land mid-run)"
# Long enough that the others still have work when D is back, however slow docker is on a
# loaded machine: A, B, C and E hold 17 slots between them.
export SLOTMESH_SLOT_MS=1500
dc up -d --no-build
declare -A ids
for service in a b c d e; do ids[$service]=$(dc ps -q "$service"); done
cid() { echo "${ids[$1]}"; }
# The furthest round the services named have logged as final (one `docker logs` call each:
# cheaper than `docker exec` on a loaded machine, and still there once a service has exited).
logged_round() {
  local service
  for service in "$@"; do docker logs --tail 40 "$(cid "$service")" 2>&1; done \
    | grep -o 'round final round=[0-9]*' | grep -o '[0-9]*$' | sort -n | tail -n 1 | grep . || echo 0
}

deadline=$((SECONDS + 120))
until [ "$(logged_round d)" -ge 2 ]; do
  if [ $SECONDS -gt $deadline ]; then echo "the swarm did not reach round 2" >&2; dc logs --tail 30 >&2; exit 1; fi
  sleep 0.5
done
killed_round=$(logged_round d)
echo "== docker kill d (at round $killed_round)"
docker kill "$(cid d)" >/dev/null
killed_at=$SECONDS
# Down long enough to be suspended (3 missed rounds), and started again while the others
# still have work.
deadline=$((SECONDS + 120))
until [ "$(logged_round a b c e)" -ge $((killed_round + 5)) ]; do
  if [ $SECONDS -gt $deadline ]; then echo "the others did not go on without d" >&2; dc logs --tail 30 >&2; exit 1; fi
  sleep 0.5
done
echo "== docker start d (the others at round $(logged_round a b c e))"
docker start "$(cid d)" >/dev/null
started_at=$SECONDS

status=0
for service in a b c d e; do
  id=$(cid "$service")
  code=$(timeout 180 docker wait "$id" || echo timeout)
  if [ "$code" != 0 ]; then
    echo "agent $service ended with $code" >&2
    docker logs --tail 40 "$id" >&2 || true
    status=1
  fi
done
echo "all finished $((SECONDS - killed_at)) s after the kill, $((SECONDS - started_at)) s after d started again"

echo "== ledgers out of the volumes"
for service in a b c d e; do
  mkdir -p "$work/ledgers/$service"
  docker cp "$(cid "$service"):/data/ledger.log" "$work/ledgers/$service/ledger.log"
done
"$bin" verify "$work"/ledgers/{a,b,c,d,e} || status=1
for service in a b c d e; do
  docker cp "$(cid "$service"):/data/status.json" "$work/ledgers/$service/status.json"
done
python3 - "$work/ledgers" <<'PY' || status=1
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*/status.json")):
    status = json.loads(path.read_text())
    members = {m["name"]: m["status"] for m in status["members"]}
    print(f'{status["name"]}: rounds {len(status["schedule"])}, members {members}')
    assert status["done"], f'{status["name"]} did not finish'
PY
exit $status
