#!/usr/bin/env bash
# Batches are cut by size (batch.max_events) and by time (batch.linger_ms),
# and the events of one game apply in partition order even when games are
# interleaved and batches are cut in the middle of a game's stream.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

sk_daemon_setup batch 1

# Size: a 60 s linger could not flush these 10 events; only the size can.
sk_daemon_start -o log.level=debug -o batch.max_events=5 -o batch.linger_ms=60000 ||
    sk_bail "daemon did not start"
f=$SK_TEST_TMP/a.txt
for i in $(seq 1 10); do
    printf '7\t{"event_id":"a%d","game_id":7,"username":"p%d","delta":%d}\n' "$i" $((i % 3)) "$i"
done >"$f"
sk_send "$T_SCORES" "$f"
if sk_results 10 30 >"$SK_TEST_TMP/r1"; then
    tap_ok "a batch flushed by size arrives long before the linger"
else
    tap_fail "a batch flushed by size arrives long before the linger" "$(tail -n 20 "$D_LOG")"
fi
tap_is "the log names two full batches of 5 for game 7" \
    "$(grep -c 'game 7: batch of 5 events (full)' "$D_LOG")" 2
sk_daemon_stop
tap_is "exit 0 after SIGTERM" "$D_RC" 0

# Time: 3 events with a size limit of 1000 go out when the linger expires.
sk_daemon_start -o log.level=debug -o batch.max_events=1000 -o batch.linger_ms=300 ||
    sk_bail "daemon did not start"
printf '8\t{"event_id":"b1","game_id":8,"username":"q","delta":1}\n8\t{"event_id":"b2","game_id":8,"username":"q","delta":2}\n8\t{"event_id":"b3","game_id":8,"username":"r","set":9}\n' >"$f"
sk_send "$T_SCORES" "$f"
sk_results 13 30 >"$SK_TEST_TMP/r2" || true
tap_is "13 results in all" "$(wc -l <"$SK_TEST_TMP/r2")" 13
tap_is "the log names one batch of 3 flushed by the linger" \
    "$(grep -c 'game 8: batch of 3 events (linger)' "$D_LOG")" 1
sk_daemon_stop

# Order: interleaved games, mixed sets and deltas, batches of 4 cut across
# them; every result must equal the running total computed here in order.
sk_daemon_start -o batch.max_events=4 -o batch.linger_ms=5 || sk_bail "daemon did not start"
f=$SK_TEST_TMP/c.txt
exp=$SK_TEST_TMP/c.exp
declare -A tot=()
RANDOM=7
for i in $(seq 1 400); do
    g=$((100 + RANDOM % 5))
    u="o$((RANDOM % 4))"
    if ((RANDOM % 10 == 0)); then
        v=$((RANDOM % 1000))
        printf '%d\t{"event_id":"c%d","game_id":%d,"username":"%s","set":%d}\n' "$g" "$i" "$g" "$u" "$v"
        tot[$g.$u]=$v
    else
        v=$((RANDOM % 100 - 30))
        printf '%d\t{"event_id":"c%d","game_id":%d,"username":"%s","delta":%d}\n' "$g" "$i" "$g" "$u" "$v"
        tot[$g.$u]=$((${tot[$g.$u]:-0} + v))
    fi
    echo "c$i ${tot[$g.$u]}" >>"$exp"
done >"$f"
sk_send "$T_SCORES" "$f"
sk_results 413 60 >"$SK_TEST_TMP/r3" || true
tap_is "every result carries the running total in partition order" \
    "$(jq -r 'select(.event_id|startswith("c")) | "\(.event_id) \(.score)"' "$SK_TEST_TMP/r3" | sort)" \
    "$(sort "$exp")"
want_rows=$(for k in "${!tot[@]}"; do echo "${k%%.*}	${k#*.}	${tot[$k]}"; done | LC_ALL=C sort)
tap_is "final rows equal the totals" \
    "$(sk_sql "$D_DB" "SELECT gp.game_id, u.username, gp.score FROM game_players gp JOIN users u ON u.id=gp.user_id WHERE gp.game_id >= 100" | LC_ALL=C sort)" \
    "$want_rows"
sk_daemon_stop
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
