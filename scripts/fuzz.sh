#!/usr/bin/env bash
# Fuzzes every decoder (cargo fuzz, libFuzzer) for SECONDS each (default 30), starting from
# the corpus kept in fuzz/corpus/<target>/, and prints the executions per target.
# cargo-fuzz needs nightly features; the stable toolchain provides them with RUSTC_BOOTSTRAP=1.
# A crash leaves its input in fuzz/artifacts/<target>/: turn it into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
targets=(envelope payload final_round sync ledger_file)
cargo fuzz build -O
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  log=$(mktemp)
  if ! cargo fuzz run -O "$target" "fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz target $target failed" >&2
    exit 1
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  echo "$target: $runs executions in ${seconds} s, corpus $(ls "fuzz/corpus/$target" | wc -l) inputs"
  rm -f "$log"
done
