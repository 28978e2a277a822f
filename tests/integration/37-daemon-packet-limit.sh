#!/usr/bin/env bash
# Statements the server would refuse or never finish.  A private server
# with a small max_allowed_packet (16 KiB):
#  A. batches are cut for it (read at connect): 240 events with long
#     multi-byte usernames in 4 games, each applied exactly once;
#  B. batches cut for 16 KiB and then sent on connections of a server
#     lowered to 4 KiB are measured, split and applied exactly once;
#  C. a statement waiting on a lock held from outside is ended by the
#     server (max_statement_time, below db.query_timeout_ms) and backs off;
#     no session of the daemon is left behind waiting for the lock;
#  D. a server that does not answer (SIGSTOP) makes the client's read
#     timeout fire: the transaction backs off instead of running again at
#     once, and applies once the server is back.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"
source "$(dirname "$0")/../lib/privdb.sh"

sk_privdb_start --max-allowed-packet=16384 --innodb-lock-wait-timeout=50
sk_daemon_setup packet 1
sk_daemon_start -o batch.linger_ms=50 -o db.pool_size=2 -o db.query_timeout_ms=2000 \
    -o db.retry_min_ms=1500 -o db.retry_max_ms=3000 || sk_bail "daemon did not start"
tap_check "the daemon read max_allowed_packet at connect" grep -q 'connected (.*max_allowed_packet 16384[;)]' "$D_LOG"

long() { local s='' i; for ((i = 0; i < 44; i++)); do s+='🎲'; done; printf '%s%s' "$s" "$1"; }
send_scores() { # FILE FIRST COUNT GAMES
    local f=$1 i
    for ((i = $2; i < $2 + $3; i++)); do
        local g=$((i % $4 + 1))
        printf '%d\t{"event_id":"e%d","game_id":%d,"username":"%s","delta":1}\n' "$g" "$i" "$g" "$(long "$i")"
    done >"$f"
    sk_send "$T_SCORES" "$f"
}
# all_applied PART N: the first N results came, each event applied once,
# and N players have 1 point each.
all_applied() {
    if sk_results "$2" 90 >"$SK_TEST_TMP/r$1"; then
        tap_ok "$1: every event got a result"
    else
        tap_fail "$1: every event got a result" "$(grep -v ' debug: ' "$D_LOG" | tail -n 15)"
    fi
    tap_is "$1: all applied, each once" \
        "$(jq -r '"\(.event_id) \(.status)"' "$SK_TEST_TMP/r$1" | sort -u | awk '$2 == "applied"' | wc -l)" "$2"
    tap_is "$1: $2 players with 1 point each" \
        "$(sk_sql "$D_DB" "SELECT COUNT(*), SUM(score) FROM game_players")" "$2	$2"
}
# ---- A: 240 events in 4 games, ~190 bytes of username each
send_scores "$SK_TEST_TMP/a.txt" 0 240 4
all_applied A 240
tap_check "A: the log says batches are cut for the server's packet" \
    grep -q 'batches are cut at 3584 payload bytes (not batch.max_bytes 1048576): the server.s max_allowed_packet is 16384' "$D_LOG"
tap_check "A: no statement went over it" bash -c "! grep -q 'max_allowed_packet.*bytes\|packet bigger' '$D_LOG'"

# ---- B: the server goes down to 4 KiB; the daemon's sessions are killed
# and the account locked, so none comes back before the next events are
# consumed and cut into batches for 16 KiB (with no session up, the limits
# stay what they were); then the account is unlocked and the sessions that
# come back have 4 KiB.
consumed() {
    curl -fsS --max-time 5 "$(sk_metrics_url)/metrics" 2>/dev/null |
        awk '/^scorekeeper_events_consumed_total/ { n += $2 } END { print n + 0 }'
}
sk_sql "" "SET GLOBAL max_allowed_packet = 4096;
           ALTER USER '$SK_DB_USER'@'127.0.0.1' ACCOUNT LOCK; ALTER USER '$SK_DB_USER'@'localhost' ACCOUNT LOCK"
for id in $(sk_sql "" "SELECT id FROM information_schema.processlist WHERE user = '$SK_DB_USER'"); do
    sk_sql "" "KILL CONNECTION $id" || true
done
send_scores "$SK_TEST_TMP/b.txt" 240 160 4
for _ in $(seq 1 300); do
    (($(consumed) >= 400)) && break
    sleep 0.2
done
tap_is "B: the next events were consumed while no session could come back" "$(consumed)" 400
sk_sql "" "ALTER USER '$SK_DB_USER'@'127.0.0.1' ACCOUNT UNLOCK; ALTER USER '$SK_DB_USER'@'localhost' ACCOUNT UNLOCK"
all_applied B 400
tap_check "B: the reconnected sessions have the smaller packet" grep -Eq 'connected .*max_allowed_packet 4096[;)]' "$D_LOG"
if grep -Eq 'too large \(its (first|second) statement would be [0-9]+ bytes, over the server.s max_allowed_packet 4096\); (splitting it|running its games one by one)' "$D_LOG"; then
    tap_ok "B: a statement over it was split before it was sent, and the log says so"
else
    tap_fail "B: a statement over it was split before it was sent, and the log says so" \
        "$(grep -v ' debug: ' "$D_LOG" | grep -E 'connected|closing|packet|split|one by one|cut' | tail -n 20)"
fi

# ---- C: a lock held from outside
printf '9\t{"event_id":"w9","game_id":9,"username":"lockme","delta":1}\n' >"$SK_TEST_TMP/w.txt"
sk_send "$T_SCORES" "$SK_TEST_TMP/w.txt"
sk_results 401 30 >/dev/null || sk_bail "game 9's first event got no result"
sk_locker "$D_DB" "START TRANSACTION; SELECT id FROM games WHERE id = 9 FOR UPDATE;"
tap_is "C: outside transaction holds game 9's lock" "$SK_LOCKED" 9
lines=$(wc -l <"$D_LOG")
printf '9\t{"event_id":"c1","game_id":9,"username":"lockme","delta":5}\n' >"$SK_TEST_TMP/c.txt"
sk_send "$T_SCORES" "$SK_TEST_TMP/c.txt"
for _ in $(seq 1 300); do # the server ends the statement after max_statement_time
    tail -n +"$lines" "$D_LOG" >"$SK_TEST_TMP/c.log"
    grep -Eq 'game 9: transaction of 1 events failed: .*max_statement_time' "$SK_TEST_TMP/c.log" && break
    sleep 0.1
done
tap_check "C: the server ended the statement (max_statement_time) and the batch backs off" \
    grep -Eq 'game 9: transaction of 1 events failed: .*max_statement_time.*; retrying in [0-9]+ ms' "$SK_TEST_TMP/c.log"
tap_check "C: the client never timed out on it" bash -c "! grep -q 'no answer within' '$SK_TEST_TMP/c.log'"
tap_check "C: no more sessions of the daemon than its pool (none left waiting for the lock)" \
    test "$(sk_sql "" "SELECT COUNT(*) FROM information_schema.processlist WHERE user = '$SK_DB_USER'")" -le 2
sk_locker_end "COMMIT;"
got=$(sk_results 402 60 | tail -n 1 | jq -r '"\(.event_id) \(.status) \(.score)"')
tap_is "C: applied once the lock is gone" "$got" "c1 applied 6"

# ---- D: the server stops answering for 6 s
lines=$(wc -l <"$D_LOG")
kill -STOP "$SK_PRIVDB_PID"
printf '10\t{"event_id":"d1","game_id":10,"username":"stopped","delta":3}\n' >"$SK_TEST_TMP/d.txt"
sk_send "$T_SCORES" "$SK_TEST_TMP/d.txt"
sleep 6
kill -CONT "$SK_PRIVDB_PID"
# The server may have committed the attempt the client gave up on, once it
# ran again: then the retry finds it applied and says "duplicate".
got=$(sk_results 403 60 | tail -n 1 | jq -r '"\(.event_id) \(.status) \(.score)"')
tap_check "D: applied once the server answers again (got $got)" grep -Eq '^d1 (applied|duplicate) 3$' <<<"$got"
tap_is "D: its score is right" "$(sk_score "$D_DB" 10 stopped)" 3
tail -n +"$lines" "$D_LOG" >"$SK_TEST_TMP/d.log"
tap_check "D: the read timeout is said as such, and the transaction backs off" \
    grep -Eq 'game 10: transaction of 1 events failed: .*no answer within db.query_timeout_ms 2000.*; retrying in [0-9]+ ms' "$SK_TEST_TMP/d.log"
tap_check "D: not run again at once as a lost connection" \
    bash -c "! grep -q 'game 10: connection lost during a transaction' '$SK_TEST_TMP/d.log'"
tap_diag "$(grep -m1 'no answer within' "$SK_TEST_TMP/d.log" || true)"
tap_is "every event has exactly one result" \
    "$(sk_results 403 10 | jq -r .event_id | sort | uniq -d)" ""
sk_daemon_stop
tap_is "exit 0 after SIGTERM" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
