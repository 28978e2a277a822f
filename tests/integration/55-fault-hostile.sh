#!/usr/bin/env bash
# Fault f: a mixed stream with 5% hostile events.  loadgen --invalid covers
# eight rejection kinds; this test adds the ones it lacks (tombstone,
# missing_key, too_large, duplicate_key also through an escaped member name,
# control_char, not_integer, empty_string, score_overflow) and valid events
# whose names are SQL quote tricks, which must be stored byte-exact.  Every
# hostile event must be rejected with its code, everything else applied.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"
source "$(dirname "$0")/../lib/faults.sh"

events=$(fault_pick 20000 200000)
rate=$(fault_pick 1500 4000)
seed=$((RANDOM + 1))
tap_diag "seed $seed, $events events at $rate/s, 5% hostile"

sk_daemon_setup fhostile 4
fd_start 1 -o batch.linger_ms=10
fd_wait_ready 1 || sk_bail "daemon did not start"
fault_bg fault_loadgen -n "$events" -g 40 -u 400 --invalid $((events / 20)) --rate "$rate" --seed "$seed" --prefix f
gen=${FAULT_BG[-1]}
sleep 2

# Our own events: one kcat per message so each gets its correlation-id.
# xsend TOPIC KEY|- LEDGER_FIELDS(kind game user op value nick) PAYLOAD [-Z]
xl=$SK_TEST_TMP/extra.ledger
: >"$xl"
xn=0
xsend() {
    local topic=$1 key=$2 kind=$3 game=$4 user=$5 op=$6 value=$7 nick=$8 payload=$9 z=${10:-}
    xn=$((xn + 1))
    local f=$SK_TEST_TMP/x.$xn args=(-b "$KAFKA_BROKERS" -P -t "$topic" -X acks=all -H "correlation-id=x-$xn")
    printf '%s' "$payload" >"$f"
    [[ $key == - ]] || args+=(-k "$key")
    if [[ -n $z ]]; then # an empty value through -K/-Z is a NULL payload
        printf '%s\t\n' "$key" | timeout 30 kcat "${args[@]}" -K $'\t' -Z || sk_bail "kcat failed for extra event $xn"
    else
        timeout 30 kcat "${args[@]}" "$f" || sk_bail "kcat failed for extra event $xn"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$xn" "$topic" "$kind" "$game" "$user" "$op" "$value" "$nick" "x-$xn" >>"$xl"
}
U=$T_USERS S=$T_SCORES
big=$(head -c 70000 /dev/zero | tr '\0' 'A')
xsend "$S" 7 invalid 7 - tombstone - - '' -Z # on the users topic it would delete a user
xsend "$U" - invalid - - missing_key - - '{"event_id":"x-2","username":"nokey"}'
xsend "$S" 7 invalid 7 - too_large - - "{\"event_id\":\"x-3\",\"game_id\":7,\"username\":\"f1\",\"delta\":1,\"pad\":\"$big\"}"
xsend "$U" dupk invalid - - duplicate_key - - '{"event_id":"x-4","username":"dupk","username":"dupk"}'
xsend "$U" esck invalid - - duplicate_key - - '{"event_id":"x-5","username":"esck","user\u006eame":"esck"}'
xsend "$U" ctl invalid - - control_char - - '{"event_id":"x-6","username":"ctl","nickname":"bell\u0007"}'
xsend "$S" 7 invalid 7 - not_integer - - '{"event_id":"x-7","game_id":7,"username":"f1","delta":1.5}'
xsend "$S" 7 invalid 7 - not_integer - - '{"event_id":"x-8","game_id":7,"username":"f1","delta":1e3}'
xsend "$U" emp invalid - - empty_string - - '{"event_id":"x-9","username":"emp","nickname":""}'
# Valid: names that are SQL quote tricks, stored byte-exact.
t1="O'Brien\"; DROP TABLE users;--" t2="' OR '1'='1" t3='back\slash' t4='50%_off'
n1="Robert'); DROP TABLE games;--"
xsend "$U" "$t1" user - "$t1" - - "$n1" "{\"event_id\":\"x-10\",\"username\":\"O'Brien\\\"; DROP TABLE users;--\",\"nickname\":\"$n1\"}"
xsend "$U" "$t3" user - "$t3" - - '' '{"event_id":"x-11","username":"back\\slash"}'
xsend "$S" 990002 score 990002 "$t2" delta 7 - "{\"event_id\":\"x-12\",\"game_id\":990002,\"game_name\":\"x' UNION SELECT 1;--\",\"username\":\"$t2\",\"delta\":7}"
xsend "$S" 990002 score 990002 "$t4" delta 5 - '{"event_id":"x-13","game_id":990002,"username":"50%_off","delta":5}'
# score_overflow: deltas are limited to 2^53-1, so reaching the edge of BIGINT
# takes a set and 1023 deltas of 2^53-1 (total 2^63-1024); one more overflows
# and is rejected alone, the total stays.
m=9007199254740991
xsend "$S" 990003 score 990003 ovf set $m - "{\"event_id\":\"x-ovf-0\",\"game_id\":990003,\"username\":\"ovf\",\"set\":$m}"
for i in $(seq 1 1023); do
    printf '990003\t{"event_id":"x-ovf-%d","game_id":990003,"username":"ovf","delta":%s}\n' "$i" "$m"
    printf 'o%d\t%s\tscore\t990003\tovf\tdelta\t%s\t-\t-\n' "$i" "$S" "$m" >>"$xl"
done >"$SK_TEST_TMP/ovf.in"
sk_send "$S" "$SK_TEST_TMP/ovf.in" || sk_bail "kcat failed"
xsend "$S" 990003 invalid 990003 ovf score_overflow - - "{\"event_id\":\"x-ovf-x\",\"game_id\":990003,\"username\":\"ovf\",\"delta\":$m}"

wait "$gen" || sk_bail "loadgen failed"
FAULT_BG=()
cat "$FAULT_LEDGER" "$xl" >"$SK_TEST_TMP/all.ledger"
FAULT_RESULTS_LEDGER=$SK_TEST_TMP/all.ledger
inv=$(awk -F'\t' '$3 == "invalid"' "$FAULT_RESULTS_LEDGER" | wc -l)
tap_diag "hostile: $inv of $(wc -l <"$FAULT_RESULTS_LEDGER") events; kinds: $(awk -F'\t' '$3 == "invalid" { print $6 }' "$FAULT_RESULTS_LEDGER" | sort | uniq -c | awk '{ printf "%s %s, ", $2, $1 }')"

fault_report f 180

q() { sk_sql "$D_DB" "$1"; }
tap_is "quote-trick username stored intact" "$(q "SELECT username FROM users WHERE username = 'O\\'Brien\"; DROP TABLE users;--'")" "$t1"
tap_is "quote-trick nickname stored intact" "$(q "SELECT nickname FROM users WHERE username = 'O\\'Brien\"; DROP TABLE users;--'")" "$n1"
tap_is "backslash username stored intact" "$(q "SELECT HEX(username) FROM users WHERE username = 'back\\\\slash'")" "$(printf '%s' "$t3" | od -An -tx1 | tr -d ' \n' | tr a-f A-F)"
tap_is "quote-trick player's score" "$(q "SELECT gp.score FROM game_players gp JOIN users u ON u.id = gp.user_id WHERE gp.game_id = 990002 AND u.username = '\\' OR \\'1\\'=\\'1'")" 7
tap_is "LIKE wildcards are not wildcards" "$(q "SELECT gp.score FROM game_players gp JOIN users u ON u.id = gp.user_id WHERE gp.game_id = 990002 AND u.username = '50%_off'")" 5
tap_is "quote-trick game name stored intact" "$(q "SELECT name FROM games WHERE id = 990002")" "x' UNION SELECT 1;--"
tap_is "score_overflow left the total at 2^63-1024" "$(q "SELECT gp.score FROM game_players gp JOIN users u ON u.id = gp.user_id WHERE gp.game_id = 990003 AND u.username = 'ovf'")" 9223372036854774784
tap_is "the tables still exist" "$(q "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ('users','games','game_players')")" 3
tap_check "the daemon survived" fd_alive 1
fd_kill 1 TERM
tap_is "exit 0 after SIGTERM" "${FD_RC[1]}" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
