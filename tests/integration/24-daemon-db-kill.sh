#!/usr/bin/env bash
# Killed database connections are rebuilt and their batches retried: a
# stream runs while every connection of the daemon is killed from outside,
# three times; every event still gets its result and the tables equal the
# totals computed independently from what was produced.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

sk_daemon_setup dbkill 2
sk_daemon_start -o batch.linger_ms=5 -o batch.max_events=50 -o db.retry_min_ms=50 ||
    sk_bail "daemon did not start"

ledger=$SK_TEST_TMP/ledger
"$SK_TOOLS/loadgen" -q -b "$KAFKA_BROKERS" --users-topic "$T_USERS" --scores-topic "$T_SCORES" \
    -n 6000 -g 20 -u 300 --rate 1500 --seed 11 --prefix k --ledger "$ledger" &
gen=$!
killed=0
for round in 1 2 3; do
    sleep 1
    ids=$(sk_sql "" "SELECT id FROM information_schema.processlist WHERE db = '$D_DB' AND user = '$SK_DB_USER'")
    for id in $ids; do
        sk_sql "" "KILL CONNECTION $id" 2>/dev/null && killed=$((killed + 1))
    done
done
wait "$gen" || sk_bail "loadgen failed"
tap_check "at least 3 daemon connections killed during the stream (killed $killed)" test "$killed" -ge 3

if "$SK_ROOT/tests/tools/results-check.sh" -q -b "$KAFKA_BROKERS" -t "$T_RESULTS" -l "$ledger" -n 6000 \
    -i "$T_USERS" -i "$T_SCORES" -T 120 >"$SK_TEST_TMP/check" 2>&1; then
    tap_ok "every event has exactly one result with the expected outcome"
else
    tap_fail "every event has exactly one result with the expected outcome" "$(tail -n 20 "$SK_TEST_TMP/check")"
fi
tap_check "tables equal the ledger's totals" \
    diff <("$SK_ROOT/tests/tools/ledger-totals.sh" "$ledger") \
    <("$SK_ROOT/tests/tools/db-totals.sh" "$SCOREKEEPER_DB_ADMIN" "$D_DB" k)
tap_check "the daemon logged the lost connections" grep -q 'closing\|connection lost' "$D_LOG"
tap_check "and reconnected" grep -q 'connected' "$D_LOG"
sk_daemon_stop

# Idle connections are pinged (non-blocking) after db.idle_ping_ms.
sk_daemon_start -o log.level=debug -o db.idle_ping_ms=1000 -o db.pool_size=2 || sk_bail "daemon did not start"
sleep 2.5
tap_check "idle connections are pinged" grep -q 'db#[01]: idle ping ok' "$D_LOG"
sk_daemon_stop
tap_is "exit 0 after SIGTERM" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
