#!/usr/bin/env bash
# scorekeeper redrive (issue 21, item 4): events the database refused are
# sent again from the dead-letter topic once the cause is fixed, and then
# apply exactly once, also when redrive runs twice.
#
# A CHECK constraint (game_players.score <= 1000000) makes MariaDB refuse the
# "poison" events (delta 2000000): db_rejected, copied to the dead-letter
# topic.  Three events that are not JSON are rejected by the parser
# (invalid_json) and must not be re-driven by --code db_rejected.  Then the
# constraint goes, and:
#   redrive --dry-run   lists the poison copies, sends nothing;
#   redrive             sends them to the source topic with their key and
#                       the header sk-redriven-from; they apply;
#   redrive again       sends nothing (the group is past them);
#   tables == every event's delta (poison included), each once.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

N=120
POISON=4
sk_daemon_setup redrive 2

# events: game 10..14, users r1..r6; poison events are the 20th, 50th, ...
kv=$SK_TEST_TMP/scores.kv
: >"$kv"
for ((i = 0; i < N; i++)); do
    g=$((10 + i % 5)) u=r$((1 + i % 6)) d=$((1 + i % 7))
    case $i in 20 | 50 | 80 | 110) d=2000000 ;; esac
    printf '%s\t{"event_id":"e-%d","game_id":%d,"username":"%s","delta":%d}\n' "$g" "$i" "$g" "$u" "$d" >>"$kv"
done
printf '11\t{"event_id":"bad-1",\n12\tnot json\n13\t{"event_id":"bad-3","game_id":13\n' >>"$kv"
want=$(awk -F'\t' '/"delta"/ { match($2, /"game_id":[0-9]+/); g = substr($2, RSTART + 10, RLENGTH - 10)
                              match($2, /"username":"[^"]*"/); u = substr($2, RSTART + 12, RLENGTH - 13)
                              match($2, /"delta":[0-9]+/); s[g "\t" u] += substr($2, RSTART + 8, RLENGTH - 8) }
                   END { for (k in s) print k "\t" s[k] }' "$kv" | LC_ALL=C sort)

sk_sql "$D_DB" "ALTER TABLE game_players ADD CONSTRAINT sk_cap CHECK (score <= 1000000)" ||
    sk_bail "cannot add the CHECK constraint"
sk_daemon_start -o batch.linger_ms=20 || sk_bail "daemon did not start"
sk_send "$T_SCORES" "$kv" || sk_bail "cannot produce"

total=$((N + 3))
sk_results "$total" 120 >"$SK_TEST_TMP/r1.json" || true
tap_is "every event has one result before the re-drive" "$(jq -r '.source.offset' "$SK_TEST_TMP/r1.json" | wc -l)" "$total"
tap_is "the poison events are db_rejected" \
    "$(jq -r 'select(.error.code == "db_rejected") | .event_id' "$SK_TEST_TMP/r1.json" | sort | tr '\n' ' ')" \
    "e-110 e-20 e-50 e-80 "
dl=$(sk_consume "$T_DLQ" $((POISON + 3)) 60 -f '%h\n' | grep -o 'sk-error-code=[a-z_]*' | sort | uniq -c | awk '{print $2 ":" $1}' | tr '\n' ' ')
tap_is "the dead-letter topic holds 4 db_rejected and 3 invalid_json copies" "$dl" \
    "sk-error-code=db_rejected:4 sk-error-code=invalid_json:3 "

# The cause is fixed.
sk_sql "$D_DB" "ALTER TABLE game_players DROP CONSTRAINT sk_cap" || sk_bail "cannot drop the constraint"

mapfile -t args < <(sk_daemon_args)
redrive() { "$SK_DAEMON" "${args[@]}" redrive "$@"; }
high() { timeout 60 kcat -b "$KAFKA_BROKERS" -C -t "$T_SCORES" -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l; }

h0=$(high)
out=$(redrive --code db_rejected --dry-run 2>"$SK_TEST_TMP/dry.err"); rc=$?
tap_is "redrive --dry-run exits 0" "$rc" 0
tap_is "it lists the four poison copies" "$(grep -c '^would re-drive' <<<"$out")" "$POISON"
tap_check "it names source topic, offset and code" grep -q "from $T_SCORES \[[01]\] offset [0-9]*, db_rejected, key \"1[0-4]\"" <<<"$out"
tap_is "it sends nothing" "$(high)" "$h0"

tap_is "redrive --offsets 5-2 is a usage error (64)" "$(redrive --offsets 5-2 2>/dev/null; echo $?)" 64
tap_is "redrive --code Bad is a usage error (64)" "$(redrive --code Bad 2>/dev/null; echo $?)" 64

out=$(redrive --code db_rejected 2>"$SK_TEST_TMP/run.err"); rc=$?
tap_is "redrive exits 0" "$rc" 0
tap_check "it says it sent 4" grep -q "done: 4 of 7 dead letters matched; 4 sent" <<<"$out"
tap_is "4 messages went to the source topic" "$(($(high) - h0))" "$POISON"

sk_results $((total + POISON)) 120 >"$SK_TEST_TMP/r2.json" || true
tap_is "each re-driven event is applied" \
    "$(tail -n "$POISON" "$SK_TEST_TMP/r2.json" | jq -r 'select(.status == "applied") | .event_id' | sort | tr '\n' ' ')" \
    "e-110 e-20 e-50 e-80 "
hdr=$(kcat -b "$KAFKA_BROKERS" -C -t "$T_SCORES" -o beginning -e -q -f '%k %h\n' 2>/dev/null | grep -c "sk-redriven-from=$T_DLQ/0/")
tap_is "the re-driven copies carry sk-redriven-from" "$hdr" "$POISON"

out=$(redrive --code db_rejected 2>/dev/null); rc=$?
tap_is "a second redrive exits 0" "$rc" 0
tap_check "and sends nothing" grep -q "done: 0 of 0 dead letters matched; 0 sent" <<<"$out"
tap_is "nothing more reached the source topic" "$(($(high) - h0))" "$POISON"

got=$(sk_sql "$D_DB" "SELECT gp.game_id, u.username, gp.score FROM game_players gp JOIN users u ON u.id = gp.user_id" |
    LC_ALL=C sort)
tap_is "tables == every event once, poison included" "$got" "$want"
tap_is "no event applied twice" \
    "$(jq -r 'select(.status == "applied") | .event_id' "$SK_TEST_TMP/r2.json" | sort | uniq -d | wc -l)" 0
tap_check "the log of redrive has no error" bash -c "! grep -qi 'error' '$SK_TEST_TMP/run.err'"

sk_daemon_stop
tap_is "the daemon stops cleanly" "$D_RC" 0
sk_daemon_logs_clean
tap_done
