#!/usr/bin/env bash
# A slow game never stalls the others: an outside transaction holds the
# lock on game 1's row (the lock every batch of the game takes first) while
# events for games 1, 2 and 3 arrive.  Games 2 and 3 must flow meanwhile;
# game 1's events wait (lock wait timeouts are retried, not rejected) and
# apply once the lock is released.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

sk_daemon_setup blocked 1
sk_daemon_start -o batch.linger_ms=10 -o db.pool_size=3 -o db.retry_min_ms=200 \
    -o db.slow_transaction_ms=700 || sk_bail "daemon did not start"
f=$SK_TEST_TMP/warm.txt
printf '1\t{"event_id":"w1","game_id":1,"username":"a","delta":1}\n' >"$f"
sk_send "$T_SCORES" "$f"
sk_results 1 30 >/dev/null || sk_bail "warm-up event got no result"

sk_locker "$D_DB" "SET SESSION innodb_lock_wait_timeout = 100; START TRANSACTION; SELECT id FROM games WHERE id = 1 FOR UPDATE;"
tap_is "outside transaction holds game 1's lock" "$SK_LOCKED" 1

f=$SK_TEST_TMP/mix.txt
for i in $(seq 1 30); do
    g=$((i % 3 + 1))
    printf '%d\t{"event_id":"m%d","game_id":%d,"username":"u%d","delta":%d}\n' "$g" "$i" "$g" $((i % 4)) "$i"
done >"$f"
sk_send "$T_SCORES" "$f"
# 20 events of games 2 and 3, plus the warm-up: 21 results while 1 is held.
if sk_results 21 30 >"$SK_TEST_TMP/during"; then
    tap_ok "games 2 and 3 flow while game 1 is locked"
else
    tap_fail "games 2 and 3 flow while game 1 is locked" "$(tail -n 20 "$D_LOG")"
fi
tap_is "no result for game 1 while its lock is held" \
    "$(jq -r 'select(.game_id == 1 and .event_id != "w1") | .event_id' "$SK_TEST_TMP/during" | wc -l)" 0
sleep 2 # let game 1's batch sit in a lock wait for a while
tap_check "the daemon is still alive and polling" kill -0 "$D_PID"

sk_locker_end "COMMIT;"

sk_results 31 60 >"$SK_TEST_TMP/after" || true
tap_is "game 1's events apply after the lock is released" \
    "$(jq -r 'select(.game_id == 1 and .status == "applied") | .event_id' "$SK_TEST_TMP/after" | wc -l)" 11
tap_is "no event was rejected for the lock wait" \
    "$(jq -r 'select(.status != "applied") | .event_id' "$SK_TEST_TMP/after")" ""
tap_is "game 1 totals are right" "$(sk_sql "$D_DB" "SELECT SUM(score) FROM game_players WHERE game_id = 1")" \
    $((1 + 3 + 6 + 9 + 12 + 15 + 18 + 21 + 24 + 27 + 30))
# Game 1's batch committed after waiting for the lock: a slow transaction,
# logged once with its game, events, connection and time, and counted.
slow=$(grep 'slow transaction: game 1,' "$D_LOG" || true)
tap_check "the transaction that waited for the lock is logged as slow" test -n "$slow"
tap_check "the line says how long it took and names its connection and the setting" \
    awk '{ if (!match($0, /took [0-9]+ ms from taking db#[0-9]+ to its COMMIT \(db.slow_transaction_ms 700\)/)) exit 1
           split(substr($0, RSTART + 5), t, " "); if (t[1] + 0 < 700) exit 1 }' <<<"$slow"
tap_check "as a warning with the game and the connection as fields" grep -q 'warning: slow transaction: game 1,.* | .*game=1 conn=db#' <<<"$slow"
n_slow=$(grep -c 'slow transaction:' "$D_LOG" || true)
tap_is "scorekeeper_db_slow_transactions_total equals the slow transactions logged" \
    "$(curl -s "$(sk_metrics_url)/metrics" | awk '$1 == "scorekeeper_db_slow_transactions_total" { print $2 }')" "$n_slow"
sk_daemon_stop
tap_is "exit 0 after SIGTERM" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
