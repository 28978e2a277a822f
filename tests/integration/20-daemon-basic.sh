#!/usr/bin/env bash
# End to end through the real broker and server: user and score events in,
# exact rows and exact result events out (one per input, the running total
# right after each event), set vs delta, auto-created users and games,
# Unicode names, a rejection amid valid events, per-game order with
# interleaved games, correlation ids echoed.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

sk_daemon_setup basic 1
sk_daemon_start -o batch.linger_ms=20 || sk_bail "daemon did not start"
tap_ok "daemon starts and reports READY"

users=$SK_TEST_TMP/users.txt
scores=$SK_TEST_TMP/scores.txt
cat >"$users" <<'EOT'
alice	{"event_id":"u-1","username":"alice","nickname":"Alice"}
zoë 🎲	{"event_id":"u-2","username":"zoë 🎲","nickname":"Zoë ✨"}
bob	{"event_id":"u-3","username":"bob"}
EOT
cat >"$scores" <<'EOT'
1	{"event_id":"s-1","game_id":1,"game_name":"Quiz one","username":"alice","delta":100}
2	{"event_id":"s-2","game_id":2,"username":"alice","delta":5}
1	{"event_id":"s-3","game_id":1,"username":"bob","delta":50}
1	{"event_id":"s-4","game_id":1,"username":"alice","set":1000}
2	{"event_id":"s-5","game_id":2,"username":"zoë 🎲","delta":7}
1	{"event_id":"s-6","game_id":1,"username":"alice","delta":-1}
2	{"event_id":"s-7","game_id":2,"username":"carol","delta":3}
1	{"event_id":"s-8","game_id":1,"username":"bob","delta":"x"}
2	{"event_id":"s-9","game_id":2,"username":"alice","delta":10}
EOT
sk_send "$T_USERS" "$users"
timeout 60 kcat -b "$KAFKA_BROKERS" -P -t "$T_SCORES" -K $'\t' -H correlation-id=req-77 -l "$scores"

res=$SK_TEST_TMP/results.jsonl
if sk_results 12 60 >"$res"; then tap_ok "12 results for 12 events"; else tap_fail "12 results for 12 events" "got $(wc -l <"$res")"; fi

summary=$(jq -r '[.event_id, .status, (.score // .error.code // "-"), (.user_id|tostring)] | join(" ")' "$res" | sort)
want_scores="s-1 applied 100
s-2 applied 5
s-3 applied 50
s-4 applied 1000
s-5 applied 7
s-6 applied 999
s-7 applied 3
s-8 rejected wrong_type
s-9 applied 15"
tap_is "score results carry the total right after each event" \
    "$(grep '^s-' <<<"$summary" | cut -d' ' -f1-3)" "$want_scores"
tap_is "user results are applied" "$(grep '^u-' <<<"$summary" | cut -d' ' -f1-2)" "u-1 applied
u-2 applied
u-3 applied"
tap_is "exactly one result per input source" \
    "$(jq -r '"\(.source.topic) \(.source.partition) \(.source.offset)"' "$res" | sort -u | wc -l)" 12
tap_is "result sources name the input topics and offsets" \
    "$(jq -r 'select(.event_id=="s-4") | "\(.source.topic) \(.source.offset)"' "$res")" "$T_SCORES 3"
tap_is "rejection names the field" \
    "$(jq -r 'select(.event_id=="s-8") | .error.message' "$res")" '"delta" must be an integer, got a string'
tap_is "unicode username in results" \
    "$(jq -r 'select(.event_id=="s-5") | .username' "$res")" "zoë 🎲"
tap_is "user ids agree between user and score results" \
    "$(jq -r 'select(.event_id=="u-1" or .event_id=="s-9") | .user_id' "$res" | sort -u | wc -l)" 1

keys=$(kcat -b "$KAFKA_BROKERS" -C -t "$T_RESULTS" -o beginning -c 12 -q -f '%k %h\n' |
    LC_ALL=C sort | uniq -c | awk '{$1=$1};1')
tap_is "result keys are the input keys; correlation ids echoed" "$keys" "5 1 correlation-id=req-77
4 2 correlation-id=req-77
1 alice
1 bob
1 zoë 🎲"

rows=$(sk_sql "$D_DB" "SELECT gp.game_id, u.username, gp.score FROM game_players gp
                        JOIN users u ON u.id = gp.user_id ORDER BY gp.game_id, u.username")
tap_is "game_players holds the exact totals" "$rows" "1	alice	999
1	bob	50
2	alice	15
2	carol	3
2	zoë 🎲	7"
tap_is "users: nicknames set, unknown user created with NULL nickname" \
    "$(sk_sql "$D_DB" "SELECT username, IFNULL(nickname,'NULL') FROM users ORDER BY username")" \
    "alice	Alice
bob	NULL
carol	NULL
zoë 🎲	Zoë ✨"
tap_is "games created on first sight, named or with a default that says so" \
    "$(sk_sql "$D_DB" "SELECT id, name FROM games ORDER BY id")" "1	Quiz one
2	unnamed game 2"

sk_daemon_stop
tap_is "SIGTERM: clean exit 0" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_check "no per-event log lines at the default level" bash -c "! grep -q 's-8\\|wrong_type' '$D_LOG'"
tap_done
