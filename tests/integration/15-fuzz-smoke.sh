#!/usr/bin/env bash
# Smoke test of the fuzz target: `make fuzz` with a small run count builds
# build/fuzz/fuzz_event with clang (libFuzzer + ASan + UBSan), seeds it from
# schemas/examples and tests/fuzz/regressions and runs FUZZ_RUNS inputs.
# Needs no stack; the long runs are done by hand (tests/fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
runs=${SK_FUZZ_SMOKE_RUNS:-20000}
log=build/fuzz-smoke.log
mkdir -p build

if ! command -v "${FUZZ_CC:-clang}" >/dev/null; then
    not_ok "clang is installed (tests/tools/deps.sh installs it)"
    echo "1..$n"
    exit 1
fi

start=$SECONDS
if timeout -k 5 120 make --no-print-directory fuzz FUZZ_RUNS="$runs" >"$log" 2>&1; then
    ok "make fuzz FUZZ_RUNS=$runs finds nothing ($((SECONDS - start)) s)"
else
    not_ok "make fuzz FUZZ_RUNS=$runs finds nothing (exit status $?, log: $log)"
    grep -E 'ERROR|fuzz_check|SUMMARY|artifact|Test unit written' "$log" | head -n 20 | sed 's/^/# /' || true
    tail -n 5 "$log" | sed 's/^/# /'
fi

# The seeds made it in: the run started from a non-trivial corpus.
seeds=$(find build/fuzz/corpus -type f 2>/dev/null | wc -l)
if ((seeds >= 16)); then
    ok "seed corpus has $seeds inputs from schemas/examples and tests/fuzz/regressions"
else
    not_ok "seed corpus has $seeds inputs, want >= 16"
fi
if grep -q "stat::number_of_executed_units: $runs" "$log"; then
    ok "all $runs runs executed"
else
    not_ok "all $runs runs executed"
fi
echo "1..$n"
((failed == 0))
