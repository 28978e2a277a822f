#!/usr/bin/env bash
# Smoke test of `make bench` (tests/bench/bench.sh) with tiny sizes: it must
# complete, verify correctness (one result per input, database == ledger, for
# the main run, the latency runs, both ceiling replays and the sweep points)
# and write its report.  Speed is not judged here.  Output goes to
# build/bench-smoke/ so a real benchmark's build/bench/ is left alone.
source "$(dirname "$0")/../lib/testlib.sh"

out=$SK_ROOT/build/bench-smoke
log=$SK_TEST_TMP/bench.log
rc=0
make -C "$SK_ROOT" --no-print-directory bench BENCH_OUT="$out" \
    BENCH_EVENTS=3000 BENCH_LAT_EVENTS=1000 BENCH_GAMES=50 BENCH_USERS=500 \
    BENCH_SWEEP=1 BENCH_SWEEP_EVENTS=1000 BENCH_SWEEP_LAT_EVENTS=200 BENCH_SWEEP_RATE=1000 \
    BENCH_SWEEP_BATCH=100 BENCH_SWEEP_LINGER= BENCH_SWEEP_POOL= \
    BENCH_MEM=0 BENCH_PROFILE=0 BENCH_TIMEOUT=60 >"$log" 2>&1 || rc=$?
tap_is "make bench exits 0" "$rc" 0
[[ $rc -eq 0 ]] || tap_diag "$(tail -n 20 "$log")"
sum=$out/summary.tsv
val() { awk -F'\t' -v k="$1" '$1 == k { v = $2 } END { print v }' "$sum" 2>/dev/null; }
tap_is "main run verified (results and database totals)" "$(val main_verified)" yes
tap_check "throughput measured" test -n "$(val main_eps_ready_last)"
tap_check "latency percentiles measured" test -n "$(val lat_half)"
tap_check "the daemon's own breakdown of that latency scraped from /metrics" \
    grep -Eq '^age [0-9.]+ [0-9.]+ inside [0-9.]+ [0-9.]+ wait [0-9.]+ [0-9.]+ txn [0-9.]+ [0-9.]+$' \
    <<<"$(val lat_half_daemon)"
tap_check "cold-start latency measured" test -n "$(val lat_cold)"
tap_check "latency runs verified (the one on the main database against both ledgers)" \
    bash -c "grep -q 'latency: verified' '$log' && grep -q 'cold start: verified' '$log'"
tap_check "the latency daemon started on the main run's database and read its users" \
    grep -Eq 'knew [1-9][0-9]* users from the database' "$out/runs/latency/daemon.log"
tap_check "ceiling measured" test -n "$(val ratio_events)"
tap_check "results.md written" test -s "$out/results.md"
tap_check "results.md has the ceiling ratio" grep -q 'daemon ÷ ceiling' "$out/results.md"
tap_check "sweep table written" grep -q '^| batch100 |' "$out/results.md"
tap_check "log says verified" grep -q 'main: verified' "$log"
tap_done
