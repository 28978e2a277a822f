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
    grep -Eq '^age [0-9.]+ [0-9.]+ inside [0-9.]+ [0-9.]+ wait [0-9.]+ [0-9.]+ txn [0-9.]+ [0-9.]+ own [0-9.]+ [0-9.]+$' \
    <<<"$(val lat_half_daemon)"
tap_check "a bare client committed the same row changes at the same rate" \
    grep -Eq '^[0-9.]+ [0-9.]+ [0-9]+ [0-9]+ [0-9.]+$' <<<"$(val lat_half_bare)"
tap_check "the latency report leads with the daemon's own share beside the bare client's" \
    bash -c "grep -A2 '^## Latency' '$out/results.md' | grep -q 'inside the daemon, less the transaction that applied it.*a bare client'"
tap_check "cold-start latency measured" test -n "$(val lat_cold)"
# the machine beside each second's p99: as many seconds, idle cores within
# the machine's cores
words() { wc -w <<<"$1" | tr -d ' '; }
cores=$(nproc)
for k in lat_half lat_cold; do
    tap_check "$k: a p99 for each second of sending" \
        awk '{ if (NF == 0) exit 1; for (i = 1; i <= NF; i++) if ($i !~ /^-?[0-9]+$/) exit 1 }' \
        <<<"$(val ${k}_p99_per_s)"
    for m in idle iowait steal; do # idle cores, disk waits, cores stolen
        tap_is "$k: ${m}_per_s has a value for each of those seconds" \
            "$(words "$(val ${k}_${m}_per_s)")" "$(words "$(val ${k}_p99_per_s)")"
    done
    tap_check "$k: idle cores are within 0 and the machine's $cores (+0.2 for sampling)" \
        awk -v c="$cores" '{ for (i = 1; i <= NF; i++) if ($i !~ /^[0-9]+\.[0-9][0-9]$/ || $i > c + 0.2) exit 1 }' \
        <<<"$(val ${k}_idle_per_s)"
done
tap_check "results.md gives the machine beside the p99 of each second" \
    grep -q "the machine's idle cores" "$out/results.md"
tap_check "results.md gives the cores stolen beside them" \
    grep -q "the cores the host took" "$out/results.md"
# what the events cost at each rate: counted from the server and /proc
for k in lat_half lat_cold; do
    tap_check "$k: its batches, rows, handler calls and commits counted" \
        awk -v b="$(val ${k}_batches)" -v g="$(val ${k}_gp_rows)" -v h="$(val ${k}_handler_ops)" \
        -v c="$(val ${k}_commits)" 'BEGIN { exit !(b > 0 && g > 0 && h >= g && c > 0) }'
    tap_check "$k: the daemon's CPU per million events" \
        awk -v a="$(val ${k}_cpu_s_per_m)" 'BEGIN { exit !(a > 0) }'
    if [[ $SK_STACK_OURS == 1 ]]; then # the server's CPU is read from /proc
        tap_check "$k: the server's CPU per million events" \
            awk -v d="$(val ${k}_db_cpu_s_per_m)" 'BEGIN { exit !(d > 0) }'
    fi
done
num=' [0-9.]+ \|'
[[ $SK_STACK_OURS == 1 ]] || num=' ([0-9.]+|n/a) \|'
tap_check "results.md sets those costs beside the main run's" \
    grep -Eq "^\\| half speed, on the main run.s database \\|($num){6}\$" "$out/results.md"
tap_check "latency runs verified (the one on the main database against both ledgers)" \
    bash -c "grep -q 'latency: verified' '$log' && grep -q 'cold start: verified' '$log'"
tap_check "the latency daemon started on the main run's database and read its users" \
    grep -Eq 'knew [1-9][0-9]* users from the database' "$out/runs/latency/daemon.log"
tap_check "ceiling measured" test -n "$(val ratio_events)"
tap_check "the same stream drained from one partition, verified" \
    grep -q 'one partition: verified' "$log"
tap_check "its rate beside the main run's and the ceiling" \
    awk -v a="$(val one_vs_main)" -v b="$(val ratio_one)" -v v="$(val one_verified)" \
    'BEGIN { exit !(a > 0 && b > 0 && v == "yes") }'
tap_check "results.md says it" grep -q 'From one partition' "$out/results.md"
tap_check "results.md written" test -s "$out/results.md"
tap_check "results.md has the ceiling ratio" grep -q 'daemon ÷ ceiling' "$out/results.md"
tap_check "sweep table written" grep -q '^| batch100 |' "$out/results.md"
tap_check "log says verified" grep -q 'main: verified' "$log"

# loadgen --world-seed: the bench's latency streams continue the main run's
# games and players.  Streams are pure functions of the seeds, so these
# shares are fixed (21 % and 80 % when written).
topic=$(sk_unique world)
sk_mktopic "$topic" 1 >/dev/null
stream() { # SEED WORLD_SEED
    "$SK_TOOLS/loadgen" -q -b "$KAFKA_BROKERS" --users-topic "$topic" --scores-topic "$topic" \
        -n 3000 -g 20 -u 500 --user-events-pct 0 --seed "$1" --world-seed "$2" \
        --ledger "$SK_TEST_TMP/world.$1.$2"
}
stream 11 3 && stream 12 3 && stream 12 12 || tap_fail "loadgen streams for --world-seed"
new_pairs() { # LEDGER: % of its distinct (game, user) pairs that the 11/3 stream lacks
    awk -F'\t' 'FNR == NR { p[$4 " " $5] = 1; next } { q[$4 " " $5] = 1 }
        END { for (k in q) { n++; if (!(k in p)) m++ } printf "%d", n ? 100 * m / n : 100 }' \
        "$SK_TEST_TMP/world.11.3" "$1"
}
same=$(new_pairs "$SK_TEST_TMP/world.12.3") other=$(new_pairs "$SK_TEST_TMP/world.12.12")
tap_check "another --seed in the same world meets mostly known (game, user) pairs ($same % new)" \
    test "$same" -lt 40
tap_check "another world meets mostly new ones ($other % new)" test "$other" -gt 60
tap_done
