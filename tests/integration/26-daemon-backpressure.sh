#!/usr/bin/env bash
# Backpressure per partition: with game 1 (partition 0) locked from outside
# and a small in-flight limit, partition 0 is paused once it holds its share
# of events and stays paused, partition 1 keeps flowing (pausing and
# resuming as its own share fills and drains), the daemon stays in its
# group, and partition 0 resumes and completes once the lock is gone.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

sk_daemon_setup bp 2
sk_daemon_start -o batch.linger_ms=5 -o batch.max_events=5 -o pipeline.max_inflight_events=20 \
    -o db.pool_size=2 || sk_bail "daemon did not start"
f=$SK_TEST_TMP/warm
printf '1\t{"event_id":"w","game_id":1,"username":"a","delta":1}\n' >"$f"
timeout 30 kcat -b "$KAFKA_BROKERS" -P -t "$T_SCORES" -p 0 -K $'\t' -l "$f"
sk_results 1 30 >/dev/null || sk_bail "warm-up event got no result"

coproc LOCKER { mariadb "${SK_DB_ADMIN[@]}" --unbuffered -N -B "$D_DB" 2>&1; }
echo "SET SESSION innodb_lock_wait_timeout = 100; START TRANSACTION; SELECT id FROM games WHERE id = 1 FOR UPDATE;" >&"${LOCKER[1]}"
read -r -t 10 locked <&"${LOCKER[0]}" || true
tap_is "outside transaction holds game 1's lock" "$locked" 1

p0=$SK_TEST_TMP/p0
p1=$SK_TEST_TMP/p1
for i in $(seq 1 60); do printf '1\t{"event_id":"a%d","game_id":1,"username":"u%d","delta":1}\n' "$i" $((i % 3)); done >"$p0"
for i in $(seq 1 300); do printf '2\t{"event_id":"b%d","game_id":2,"username":"v%d","delta":2}\n' "$i" $((i % 7)); done >"$p1"
timeout 30 kcat -b "$KAFKA_BROKERS" -P -t "$T_SCORES" -p 0 -K $'\t' -l "$p0"
timeout 30 kcat -b "$KAFKA_BROKERS" -P -t "$T_SCORES" -p 1 -K $'\t' -l "$p1"

if sk_results 301 60 >"$SK_TEST_TMP/during"; then
    tap_ok "partition 1 flows (300 results) while partition 0's game is locked"
else
    tap_fail "partition 1 flows (300 results) while partition 0's game is locked" "$(tail -n 20 "$D_LOG")"
fi
# The share is the limit divided by the partitions with traffic: 20 while
# partition 0 is the only one, 10 once partition 1 carries events too.
tap_check "partition 0 was paused at its share of the in-flight limit" \
    grep -qE "paused $T_SCORES \[0\]: (20 events in flight over [0-9]+ offsets \(limit 20|10 events in flight over [0-9]+ offsets \(limit 10) per partition\)" "$D_LOG"
tap_is "partition 0 stays paused while its game is locked" \
    "$(grep -c "resumed $T_SCORES \[0\]" "$D_LOG")" 0
sleep 7 # longer than session.timeout.ms (6 s): a consumer that stopped polling would be dropped
tap_check "the daemon stayed in its group while paused" bash -c "! grep -qi 'revoked\|lost\|max.poll' '$D_LOG'"

echo "COMMIT;" >&"${LOCKER[1]}"
exec {LOCKER[1]}>&-
wait "$LOCKER_PID" || true
sk_results 361 60 >"$SK_TEST_TMP/after" || true
tap_is "all 361 results after the lock is gone" "$(wc -l <"$SK_TEST_TMP/after")" 361
tap_check "partition 0 resumed" grep -q "resumed $T_SCORES \[0\]" "$D_LOG"
tap_is "game 1 total is right" "$(sk_sql "$D_DB" "SELECT SUM(score) FROM game_players WHERE game_id = 1")" 61
tap_is "game 2 total is right" "$(sk_sql "$D_DB" "SELECT SUM(score) FROM game_players WHERE game_id = 2")" 600
sk_daemon_stop
tap_is "exit 0 after SIGTERM" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
