#!/usr/bin/env bash
# Acceptance stream: 100,000 score events over 200 games and 5,000 users,
# with 300 invalid events mixed in, through 4 partitions.  game_players must
# equal the totals computed independently from the produced events (the
# ledger), and the results topic must hold exactly one result per input with
# the right status.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

sk_daemon_setup s100k 4
ledger=$SK_TEST_TMP/ledger
"$SK_TOOLS/loadgen" -q -b "$KAFKA_BROKERS" --users-topic "$T_USERS" --scores-topic "$T_SCORES" \
    -n 100300 --invalid 300 --user-events-pct 0 -g 200 -u 5000 --seed 100 --prefix s \
    --ledger "$ledger" || sk_bail "loadgen failed"
tap_is "ledger: 100,000 score events and 300 invalid ones" \
    "$(awk -F'\t' '{n[$3]++} END {print n["score"]+0, n["invalid"]+0}' "$ledger")" "100000 300"

t0=$(date +%s%N)
sk_daemon_start || sk_bail "daemon did not start"
if "$SK_ROOT/tests/tools/results-check.sh" -q -b "$KAFKA_BROKERS" -t "$T_RESULTS" -l "$ledger" -n 100300 \
    -i "$T_USERS" -i "$T_SCORES" -T 600 >"$SK_TEST_TMP/check" 2>&1; then
    tap_ok "one result per input, each with the right status and code"
else
    tap_fail "one result per input, each with the right status and code" "$(tail -n 20 "$SK_TEST_TMP/check")"
fi
t1=$(date +%s%N)
tap_diag "100,300 events through the sanitizer build in $(((t1 - t0) / 1000000)) ms (not a benchmark)"
tap_check "game_players equals the ledger's totals" \
    diff <("$SK_ROOT/tests/tools/ledger-totals.sh" "$ledger") \
    <("$SK_ROOT/tests/tools/db-totals.sh" "$SCOREKEEPER_DB_ADMIN" "$D_DB" s)
tap_is "200 games" "$(sk_sql "$D_DB" "SELECT COUNT(*) FROM games")" 200
sk_daemon_stop
tap_is "exit 0 after SIGTERM" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
