#!/usr/bin/env bash
# SIGTERM in the middle of a stream: the daemon stops consuming, finishes
# its batches, delivers their results, commits offsets and exits 0.  A new
# daemon picks up exactly where it stopped: in the end every event has
# exactly one result and the tables equal the independent totals.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

sk_daemon_setup drain 3
ledger=$SK_TEST_TMP/ledger
sk_daemon_start -o batch.linger_ms=20 || sk_bail "daemon did not start"
# A stream that lasts about 5 s; the daemon is stopped while it flows.
"$SK_TOOLS/loadgen" -q -b "$KAFKA_BROKERS" --users-topic "$T_USERS" --scores-topic "$T_SCORES" \
    -n 20000 -g 50 -u 500 --invalid 20 --rate 4000 --seed 5 --prefix d --ledger "$ledger" &
gen=$!
# The results topic has one partition: the offset of its last message
# tells how many results exist without reading them all (a reader to the
# end would chase the growing topic until the stream stops).
results_so_far() {
    local o
    o=$(timeout 10 kcat -b "$KAFKA_BROKERS" -C -t "$T_RESULTS" -o -1 -c 1 -e -q -f '%o\n' 2>/dev/null || true)
    echo $((${o:--1} + 1))
}
for _ in $(seq 1 400); do
    (($(results_so_far) > 2000)) && break
    sleep 0.05
done
t0=$(date +%s%N)
sk_daemon_stop
t1=$(date +%s%N)
tap_is "SIGTERM mid-stream: exit 0" "$D_RC" 0
tap_check "drained within the deadline ($(((t1 - t0) / 1000000)) ms)" test $(((t1 - t0) / 1000000)) -lt 30000
tap_check "the log says it drained" grep -q 'drained: every consumed event has its result' "$D_LOG"
first=$(results_so_far)
tap_check "it stopped before the end of the stream ($first of 20000 results)" test "$first" -lt 20000
wait "$gen" || sk_bail "loadgen failed"

sk_daemon_start -o batch.linger_ms=20 || sk_bail "second daemon did not start"
if "$SK_ROOT/tests/tools/results-check.sh" -q -b "$KAFKA_BROKERS" -t "$T_RESULTS" -l "$ledger" -n 20000 \
    -i "$T_USERS" -i "$T_SCORES" -T 120 >"$SK_TEST_TMP/check" 2>&1; then
    tap_ok "after the restart: exactly one result per event, none missing, none twice"
else
    tap_fail "after the restart: exactly one result per event, none missing, none twice" "$(tail -n 20 "$SK_TEST_TMP/check")"
fi
tap_check "tables equal the ledger's totals" \
    diff <("$SK_ROOT/tests/tools/ledger-totals.sh" "$ledger") \
    <("$SK_ROOT/tests/tools/db-totals.sh" "$SCOREKEEPER_DB_ADMIN" "$D_DB" d)
sk_daemon_stop
tap_is "second daemon: exit 0" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
