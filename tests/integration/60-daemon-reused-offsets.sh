#!/usr/bin/env bash
# (issue 19, item 3) Offsets used again are refused, not reported duplicate.
# game_offsets is keyed by topic name: after the scores topic is deleted and
# recreated, its new events start again at offset 0, below the marks the old
# topic's events left.  A daemon assigned the partition sees the highest
# mark (8) beyond the end of the partition's log (high watermark 3) and
# refuses it: an error line with topic, partition, mark, high watermark and
# the command to run; scorekeeper_partitions_refused 1; /healthz 503; no
# result and no change for its events.  `scorekeeper reset-marks` refuses
# to run as the runtime account (77) and deletes the marks as an
# administrator; on SIGHUP the daemon checks the partition again and the
# events apply.  Before the fix, all three were reported `duplicate`.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

if [[ $SK_STACK_OURS != 1 ]]; then
    tap_skip "reused offsets" "reset-marks needs the private stack's admin socket"
    tap_done
    exit 0
fi

sk_daemon_setup reuse 1
sk_daemon_start || sk_bail "daemon did not start"
sk_send_batch 7 "o1 delta 1 alice" "o2 delta 2 alice" "o3 delta 3 bob" "o4 delta 4 alice" \
    "o5 delta 5 bob" "o6 delta 6 alice" "o7 delta 7 bob" "o8 delta 8 alice"
tap_is "8 events of the first topic apply" "$(cut -d' ' -f2 <<<"$got" | sort | uniq -c | awk '{$1=$1};1')" "8 applied"
sk_daemon_stop
tap_is "exit 0" "$D_RC" 0
tap_is "their marks: partition 0 applied up to offset 8" \
    "$(sk_sql "$D_DB" "SELECT \`partition\`, next_offset FROM game_offsets WHERE topic = '$T_SCORES'")" "0	8"
before=$(sk_sql "$D_DB" "SELECT user_id, score FROM game_players ORDER BY user_id")

# The topic is deleted and created again: its offsets start at 0 again.
"$SK_TOOLS/mktopic" -b "$KAFKA_BROKERS" -t 30000 -d "$T_SCORES" >/dev/null || sk_bail "cannot delete $T_SCORES"
sk_mktopic "$T_SCORES" 1 >/dev/null || sk_bail "cannot create $T_SCORES again"
new=$SK_TEST_TMP/new.txt
printf '7\t{"event_id":"n%d","game_id":7,"username":"alice","delta":100}\n' 1 2 3 >"$new"
sk_send "$T_SCORES" "$new"
tap_is "the new topic's events are at offsets 0, 1, 2" \
    "$(sk_consume "$T_SCORES" 3 30 -f '%o %s\n' | jq -Rr 'split(" ") | "\(.[0]) \(.[1:] | join(" ") | fromjson | .event_id)"' | tr '\n' ' ')" \
    "0 n1 1 n2 2 n3 "

sk_daemon_start || sk_bail "daemon did not restart"
url=$(sk_metrics_url)
metric() { curl -fsS "$url/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
refused=
for _ in $(seq 1 300); do
    if grep -q "refusing $T_SCORES \[0\]" "$D_LOG"; then refused=1; break; fi
    sleep 0.1
done
tap_is "the partition is refused" "${refused:-no refusal in the log}" 1
line=$(grep "refusing $T_SCORES \[0\]" "$D_LOG" || true)
tap_check "an error line names the highest mark and the high watermark" \
    grep -q "game_offsets holds marks up to offset 8, beyond the end of the partition's log (high watermark 3)" <<<"$line"
tap_check "and the command to run" \
    grep -qF "reset-marks --topic $T_SCORES --partition 0; then reload (SIGHUP) or restart" <<<"$line"
tap_check "at error level" grep -q ": error: refusing" <<<"$line"
tap_is "gauge: scorekeeper_partitions_refused 1" "$(metric scorekeeper_partitions_refused)" 1
tap_is "/healthz answers 503 while a partition is refused" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" 503
tap_is "not ready in /metrics either" "$(metric scorekeeper_ready)" 0
sleep 2
tap_is "no result for its events: the 8 old results only" \
    "$(sk_consume "$T_RESULTS" 100 5 -f '%s\n' -e 2>/dev/null | jq -r .event_id | sort | tr '\n' ' ')" \
    "o1 o2 o3 o4 o5 o6 o7 o8 "
tap_is "and no change to the scores" "$(sk_sql "$D_DB" "SELECT user_id, score FROM game_players ORDER BY user_id")" "$before"
tap_is "nothing reported duplicate" "$(metric 'scorekeeper_events_duplicate_total{topic="'"$T_SCORES"'"}')" 0
tap_is "logged once" "$(grep -c "refusing $T_SCORES" "$D_LOG")" 1

# reset-marks: usage, then as the runtime account, then as an administrator.
rc=0
out=$(mapfile -t a < <(sk_daemon_args); "$SK_DAEMON" "${a[@]}" reset-marks --partition 0 2>&1) || rc=$?
tap_is "reset-marks without --topic: usage error 64" "$rc" 64
tap_check "it says what is missing" grep -q -- "--topic is required" <<<"$out"
rc=0
out=$(mapfile -t a < <(sk_daemon_args); "$SK_DAEMON" "${a[@]}" reset-marks --topic "$T_SCORES" --partition 0 2>&1) || rc=$?
tap_is "as the runtime account: 77, not allowed" "$rc" 77
tap_check "it says to use an administrative account" grep -q "run reset-marks with an administrative account" <<<"$out"
tap_is "the marks are still there" "$(sk_sql "$D_DB" "SELECT COUNT(*) FROM game_offsets")" 1
admin="mariadb://root@localhost/$D_DB?socket=$SCOREKEEPER_DB_SOCKET"
rc=0
out=$("$SK_DAEMON" -o "db.url=$admin" -o "kafka.bootstrap.servers=$KAFKA_BROKERS" reset-marks --topic "$T_SCORES" --partition 0 2>&1) || rc=$?
tap_is "as an administrator: exit 0" "$rc" 0
tap_check "it says what the partition held" grep -qF "$T_SCORES [0]: marks of games: 1, the highest: 8" <<<"$out"
tap_check "and what it deleted" grep -qF "deleted $T_SCORES [0]'s marks: 1, of partitions: 1" <<<"$out"
tap_is "the marks are gone" "$(sk_sql "$D_DB" "SELECT COUNT(*) FROM game_offsets")" 0

# SIGHUP: the partition is checked again, and its events apply.
kill -HUP "$D_PID"
tap_check "SIGHUP checks it again" sk_wait_log "checking $T_SCORES [0] again"
res=$SK_TEST_TMP/results.jsonl
sk_results 11 60 >"$res" || true
tap_is "then its 3 events apply, in order" \
    "$(jq -r 'select(.event_id | startswith("n")) | "\(.event_id) \(.status) \(.score) \(.source.offset)"' "$res")" \
    "n1 applied 121 0
n2 applied 221 1
n3 applied 321 2"
tap_is "alice's total" "$(sk_score "$D_DB" 7 alice)" 321
tap_is "gauge: scorekeeper_partitions_refused 0" "$(metric scorekeeper_partitions_refused)" 0
tap_is "/healthz answers 200 again" "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" 200
tap_is "its new marks" \
    "$(sk_sql "$D_DB" "SELECT \`partition\`, next_offset FROM game_offsets WHERE topic = '$T_SCORES'")" "0	3"
sk_daemon_stop
tap_is "exit 0" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
