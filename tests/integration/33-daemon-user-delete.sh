#!/usr/bin/env bash
# Deleting a user (issue 20, item 7).  A tombstone (null payload) on the
# users topic, keyed by a username, deletes that user and their
# game_players rows in one transaction, fenced by user_offsets like every
# user event: result "deleted" with the id the user had, or "not_found".
# Part A: users and scores for several games, then tombstones among other
# users' score events: the deleted users and their rows are gone, the rest
# applies; a user deleted and created again in one burst, two tombstones in
# a row, a tombstone without key, one on the scores topic (rejected, with
# its reason); only the rejected inputs reach the dead-letter topic.  A
# score event after the delete creates the user again, from zero.  Part B:
# tombstones while score events for the same users stream in: every result
# names the row it applied to, and the tables hold exactly the applied
# events of the rows that remain.  Part C: a second daemon in a new group
# consumes everything again: every tombstone and every other event is a
# duplicate, and nothing changes (no deleted user comes back).
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

sk_daemon_setup udel 2
sk_daemon_start -o batch.linger_ms=10 || sk_bail "daemon did not start"

sent=0
ev=$SK_TEST_TMP/events.tsv # event_id delta: the score events sent
: >"$ev"
# send TOPIC FILE: key<TAB>value lines, in order; an empty value is a
# tombstone (NULL payload), an empty key no key.
send() {
    timeout 60 kcat -b "$KAFKA_BROKERS" -P -t "$1" -K $'\t' -Z -X acks=all -l "$2" ||
        sk_bail "kcat could not produce $2"
    sent=$((sent + $(wc -l <"$2")))
}
# score FILE ID GAME USER DELTA: a score event line (and its delta noted)
score() {
    printf '%s\t{"event_id":"%s","game_id":%s,"username":"%s","delta":%s}\n' "$3" "$2" "$3" "$4" "$5" >>"$1"
    printf '%s\t%s\n' "$2" "$5" >>"$ev"
}
res=$SK_TEST_TMP/results.jsonl
# results: every result so far (all of them must arrive)
results() { sk_results "$sent" 120 >"$res" || true; [[ $(wc -l <"$res") -ge $sent ]]; }
q() { sk_sql "$D_DB" "$1"; }
# by_key USERNAME: the results of the user events of USERNAME, in order
by_key() { jq -c --arg tu "$T_USERS" --arg k "$1" 'select(.source.topic == $tu and .username == $k)' "$res"; }

# ---- Part A -----------------------------------------------------------
f=$SK_TEST_TMP/a.users
: >"$f"
for i in $(seq 1 12); do printf 'p%d\t{"event_id":"u-%d","username":"p%d","nickname":"P%d"}\n' "$i" "$i" "$i" "$i" >>"$f"; done
send "$T_USERS" "$f"
f=$SK_TEST_TMP/a.scores
: >"$f"
for g in 101 102 103 104; do
    for i in $(seq 1 12); do
        (((i + g) % 3)) && score "$f" "a-$g-$i" "$g" "p$i" $((i * 10 + g % 100))
    done
done
send "$T_SCORES" "$f"
results || sk_bail "part A: $(wc -l <"$res") of $sent results"
declare -A old
while read -r u id; do old[$u]=$id; done < <(q "SELECT username, id FROM users")
tap_is "part A: every event applied" "$(jq -r .status "$res" | sort -u)" applied

# The tombstones, among score events of other users (the two topics at once).
fu=$SK_TEST_TMP/b.users fs=$SK_TEST_TMP/b.scores
{
    printf 'p1\t\np2\t\nghost\t\n'
    printf 'p4\t{"event_id":"u-4b","username":"p4","nickname":"Four"}\n'
    printf 'p4\t\n'
    printf 'p4\t{"event_id":"u-4c","username":"p4","nickname":"Reborn"}\n'
    printf 'p5\t\np5\t\n'
    printf '\t\n' # no key
    printf 'p3\t\n'
} >"$fu"
: >"$fs"
for g in 101 102 103 104; do
    for i in $(seq 6 12); do score "$fs" "b-$g-$i" "$g" "p$i" "$i"; done
done
printf '101\t\n' >>"$fs" # a tombstone on the scores topic
send "$T_SCORES" "$fs" &
spid=$!
send "$T_USERS" "$fu"
wait "$spid" || sk_bail "kcat failed"
sent=$((sent + $(wc -l <"$fs")))
results || sk_bail "part A tombstones: $(wc -l <"$res") of $sent results"

tomb() { by_key "$1" | jq -r 'select(.event_id == null) | "\(.status) \(.user_id // "-")"'; }
tap_is "tombstones of p1, p2, p3: deleted, with the ids they had" \
    "$(tomb p1) $(tomb p2) $(tomb p3)" "deleted ${old[p1]} deleted ${old[p2]} deleted ${old[p3]}"
tap_is "a tombstone for a user that never was: not_found, no user_id" "$(tomb ghost)" "not_found -"
tap_is "two tombstones in a row: deleted, then not_found" "$(tomb p5 | tr '\n' ' ')" "deleted ${old[p5]} not_found - "
tap_is "p4 renamed, deleted, created again: each result names its row" \
    "$(by_key p4 | jq -r 'select(.source.offset != null and .event_id != "u-4") | "\(.status) \(.user_id)"' | tr '\n' ' ')" \
    "applied ${old[p4]} deleted ${old[p4]} applied $(q "SELECT id FROM users WHERE username = 'p4'") "
tap_check "p4 came back with a new id" test "$(q "SELECT id FROM users WHERE username = 'p4'")" -gt "${old[p12]}"
tap_is "p4 came back fresh: its nickname, none of its scores" \
    "$(q "SELECT CONCAT(u.nickname, ' ', COUNT(gp.game_id)) FROM users u LEFT JOIN game_players gp ON gp.user_id = u.id WHERE u.username = 'p4' GROUP BY u.id")" "Reborn 0"
tap_is "a tombstone without a key: rejected missing_key" \
    "$(jq -r --arg tu "$T_USERS" 'select(.source.topic == $tu and .status == "rejected") | .error.code' "$res")" missing_key
tap_is "a tombstone on the scores topic: rejected, with the reason" \
    "$(jq -r --arg ts "$T_SCORES" 'select(.source.topic == $ts and .status == "rejected") | "\(.error.code): \(.error.message)"' "$res")" \
    "tombstone: the message has a null payload (a tombstone): score events are never deleted; a tombstone deletes only a user, on the users topic"
tap_is "the deleted users and their game_players rows are gone" \
    "$(q "SELECT (SELECT COUNT(*) FROM users WHERE username IN ('p1','p2','p3','p5','ghost')),
                 (SELECT COUNT(*) FROM game_players WHERE user_id IN (${old[p1]},${old[p2]},${old[p3]},${old[p4]},${old[p5]}))")" "0	0"
want=$(for g in 101 102 103 104; do for i in $(seq 6 12); do
    (((i + g) % 3)) && s=$((i * 10 + g % 100 + i)) || s=$i
    printf '%s p%s %s\n' "$g" "$i" "$s"
done; done | sort)
tap_is "everyone else's scores: all their events applied" \
    "$(q "SELECT gp.game_id, u.username, gp.score FROM game_players gp JOIN users u ON u.id = gp.user_id" | tr '\t' ' ' | sort)" "$want"
url=$(sk_metrics_url)
tap_is "scorekeeper_users_deleted_total counts them" \
    "$(curl -fsS --max-time 5 "$url/metrics" | awk '$1 == "scorekeeper_users_deleted_total" { print $2 }')" 5

# A score event after the delete creates the user again, from zero.
f=$SK_TEST_TMP/a.after
: >"$f"
score "$f" a-after 102 p3 7
send "$T_SCORES" "$f"
results || sk_bail "part A after: $(wc -l <"$res") of $sent results"
tap_is "a score event after the delete: p3 again, a new id, from zero" \
    "$(tail -n 1 "$res" | jq -r '"\(.status) \(.score) \(.user_id > '"${old[p12]}"')"') $(q "SELECT CONCAT(COALESCE(nickname, 'NULL'), ' ', id) FROM users WHERE username = 'p3'")" \
    "applied 7 true NULL $(tail -n 1 "$res" | jq -r .user_id)"

# ---- Part B: tombstones while score events for the same users stream ---
f=$SK_TEST_TMP/b.setup
: >"$f"
# rows in half the games: the stream also creates rows, whose foreign-key
# check waits for a users row a tombstone holds
for g in 201 202 203; do for i in $(seq 1 30); do score "$f" "c-$g-$i" "$g" "c$i" 1000; done; done
send "$T_SCORES" "$f"
results || sk_bail "part B setup: $(wc -l <"$res") of $sent results"
declare -A cid
while read -r u id; do cid[$u]=$id; done < <(q "SELECT username, id FROM users WHERE username LIKE 'c%'")
stream() { # stream FILE FROM TO: score events n = FROM..TO for c1..c30
    : >"$1"
    local n
    for n in $(seq "$2" "$3"); do score "$1" "d-$n" $((201 + n * 5 % 6)) "c$((n * 7 % 30 + 1))" $((n % 50 + 1)); done
}
stream "$SK_TEST_TMP/d1" 1 400
stream "$SK_TEST_TMP/d2" 401 800
stream "$SK_TEST_TMP/d3" 801 1000
ft=$SK_TEST_TMP/d.tomb
: >"$ft"
for i in $(seq 1 15); do printf 'c%d\t\n' "$i" >>"$ft"; done
# An administrator's session holds one of c1's rows, so that the delete
# waits in the middle of its transaction (holding the users rows and the
# game_players rows before that one) while score transactions for the same
# users pile up behind it: lock waits, deadlocks, foreign keys failing once
# it commits.  Whatever the order, the results must say what happened.
sk_locker "$D_DB" "START TRANSACTION; SELECT 'locked' FROM game_players WHERE game_id = 201 AND user_id = ${cid[c1]} FOR UPDATE;"
[[ $SK_LOCKED == locked ]] || sk_bail "the locker did not lock: $SK_LOCKED"
# InnoDB refreshes INNODB_TRX only when nobody read it for 0.1 s: polled
# faster, it keeps showing one old snapshot.
waits() { q "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT' $1"; }
send "$T_SCORES" "$SK_TEST_TMP/d1"
send "$T_USERS" "$ft"
for _ in $(seq 1 75); do (($(waits "AND trx_query LIKE 'DELETE FROM game_players%'") > 0)) && break; sleep 0.2; done
tap_check "the delete waits for the row held from outside" \
    test "$(waits "AND trx_query LIKE 'DELETE FROM game_players%'")" -gt 0
send "$T_SCORES" "$SK_TEST_TMP/d2" &
spid=$!
# let score transactions queue behind the delete for a while (at most 5 s,
# well within innodb_lock_wait_timeout): only the mix of outcomes depends on it
for _ in $(seq 1 25); do (($(waits "") > 2)) && break; sleep 0.2; done
tap_diag "transactions waiting for a lock when the row is let go: $(waits "")"
sk_locker_end "ROLLBACK;"
wait "$spid" || sk_bail "kcat failed"
sent=$((sent + 400))
results || sk_bail "part B: $(wc -l <"$res") of $sent results"
send "$T_SCORES" "$SK_TEST_TMP/d3" # after the deletes: they create the users again
results || sk_bail "part B after: $(wc -l <"$res") of $sent results"

tap_is "part B: every score event applied" \
    "$(jq -r 'select(.event_id // "" | test("^[cd]-")) | .status' "$res" | sort | uniq -c | awk '{ print $2, $1 }')" "applied 1090"
tap_is "part B: each tombstone deleted the user, naming the id it had" \
    "$(for i in $(seq 1 15); do by_key "c$i" | jq -r 'select(.status == "deleted") | .user_id'; done | tr '\n' ' ')" \
    "$(for i in $(seq 1 15); do printf '%s ' "${cid[c$i]}"; done)"
tap_is "part B: a user's score results name at most two rows, before and after its delete" \
    "$(jq -r 'select(.event_id // "" | test("^d-")) | "\(.username) \(.user_id)"' "$res" | sort -u | awk '{ n[$1]++ } END { for (u in n) if (n[u] > 2) print u }')" ""
# The tables hold, per player, the sum of the deltas of the applied events
# whose result names the row that remains (its current id): the events
# applied to a deleted row went with it.
declare -A now
while read -r u id; do now[$u]=$id; done < <(q "SELECT username, id FROM users")
ids=$SK_TEST_TMP/now.tsv
for u in "${!now[@]}"; do printf '%s\t%s\n' "$u" "${now[$u]}"; done >"$ids"
want=$(jq -r 'select(.status == "applied" and .game_id != null) | "\(.event_id)\t\(.username)\t\(.user_id)\t\(.game_id)"' "$res" |
    awk -F'\t' 'FILENAME == ARGV[1] { d[$1] = $2; next } FILENAME == ARGV[2] { id[$1] = $2; next }
                id[$2] == $3 { s[$4 " " $2] += d[$1] } END { for (k in s) print k, s[k] }' "$ev" "$ids" - | sort)
tap_is "the tables hold exactly the applied events of the rows that remain" \
    "$(q "SELECT gp.game_id, u.username, gp.score FROM game_players gp JOIN users u ON u.id = gp.user_id" | tr '\t' ' ' | sort)" "$want"
back=0
for i in $(seq 1 15); do ((${now[c$i]:-0} > ${cid[c30]})) && back=$((back + 1)); done
tap_is "the deleted users of part B are back (events after the delete), with new ids" "$back" 15
tap_diag "lock conflicts in the log: $(grep -cE 'Deadlock|Lock wait timeout|a known user is gone|not found right after' "$D_LOG" || true) lines"
grep -E 'Deadlock|Lock wait timeout|a known user is gone|not found right after' "$D_LOG" | head -n 5 | while IFS= read -r l; do tap_diag "  $l"; done

# Only the rejected inputs reached the dead-letter topic: no user tombstone.
sk_consume "$T_DLQ" 2 30 -f '%k|%h\n' >"$SK_TEST_TMP/dlq" || true
tap_is "dead letters: only the two rejected tombstones" \
    "$(timeout 30 kcat -b "$KAFKA_BROKERS" -C -t "$T_DLQ" -o beginning -e -q -f '%h\n' | sed 's/.*sk-error-code=\([a-z_]*\).*/\1/' | sort | tr '\n' ' ')" \
    "missing_key tombstone "

# ---- Part C: everything consumed again ---------------------------------
snap() { q "SELECT 'u', username, id, COALESCE(nickname, 'NULL') FROM users UNION ALL
            SELECT 'p', game_id, user_id, score FROM game_players UNION ALL
            SELECT 'm', CONCAT(topic, '/', \`partition\`, '/', username), next_offset, '' FROM user_offsets UNION ALL
            SELECT 'g', CONCAT(topic, '/', \`partition\`, '/', game_id), next_offset, '' FROM game_offsets" | sort; }
before=$(snap)
sk_daemon_stop
tap_is "SIGTERM: exit 0" "$D_RC" 0
first=$sent
D_GROUP=$(sk_unique udel.group2) # a new group reads both topics from their beginning
sk_daemon_start -o batch.linger_ms=10 || sk_bail "second daemon did not start"
sent=$((first * 2))
results || sk_bail "part C: $(wc -l <"$res") of $sent results"
tail -n "$first" "$res" >"$res.again"
tap_is "consumed again: every event a duplicate, the tombstones too (and the same rejections)" \
    "$(jq -r 'if .status == "rejected" then .error.code else .status end' "$res.again" | sort | uniq -c | awk '{ print $2, $1 }')" \
    "duplicate $((first - 2))
missing_key 1
tombstone 1"
tap_is "the duplicates of deleted users' events name no user" \
    "$(jq -r 'select(.username == "p1" or .username == "p2") | "\(.status) \(.user_id // "-") \(.score // "-")"' "$res.again" | sort -u)" \
    "duplicate - -
duplicate - 0"
tap_is "nothing changed: no deleted user came back, every row and mark as it was" "$(snap)" "$before"
sk_daemon_stop
tap_is "SIGTERM: exit 0" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
