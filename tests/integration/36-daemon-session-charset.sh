#!/usr/bin/env bash
# The daemon's session speaks utf8mb4 whatever the server says at login: a
# private server runs init_connect='SET NAMES gbk' for every new session of
# an account without SUPER (the runtime account), which comes after the
# handshake's character set.  Non-ASCII usernames and nicknames must land
# in the tables byte for byte (HEX() against their UTF-8), and a name whose
# UTF-8 ends in a byte that gbk pairs with the escaping backslash ("€'x")
# must not break the statement.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"
source "$(dirname "$0")/../lib/privdb.sh"

sk_privdb_start '--init-connect=SET NAMES gbk'
sk_daemon_setup charset 1
cnf=$(sk_runtime_cnf "$D_DB")
tap_is "the server's init_connect applies to the runtime account" \
    "$(mariadb --defaults-file="$cnf" -N -B <<<'SELECT @@character_set_client')" gbk

sk_daemon_start -o batch.linger_ms=20 || sk_bail "daemon did not start"
tap_check "the daemon says its session is utf8mb4" grep -q 'connected (.*session utf8mb4' "$D_LOG"

hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n' | tr a-f A-F; }
names=("Zoë" "Łukasz" "🎮 player ü" "中文名字" "Ærøskøbing")
nicks=("Zoë the 1st" "Łukasz Ś" "🙂🙃" "名字" "ÆØÅ")

# score events: one game, every name once
f=$SK_TEST_TMP/scores.txt
for i in "${!names[@]}"; do
    printf '1\t{"event_id":"s%d","game_id":1,"username":"%s","delta":%d}\n' "$i" "${names[$i]}" $((i + 1))
done >"$f"
sk_send "$T_SCORES" "$f"
n=${#names[@]}
if sk_results "$n" 60 >"$SK_TEST_TMP/r1"; then
    tap_ok "the score events got results"
else
    tap_fail "the score events got results" "$(tail -n 20 "$D_LOG")"
fi
tap_is "all applied" "$(jq -r .status "$SK_TEST_TMP/r1" | sort -u)" applied
for i in "${!names[@]}"; do
    tap_is "username ${names[$i]} stored as its UTF-8 bytes" \
        "$(sk_sql "$D_DB" "SELECT HEX(u.username) FROM users u JOIN game_players gp ON gp.user_id = u.id
                           WHERE gp.game_id = 1 AND gp.score = $((i + 1))")" "$(hex "${names[$i]}")"
done

# user events: the same users get nicknames
f=$SK_TEST_TMP/users.txt
for i in "${!names[@]}"; do
    printf '%s\t{"event_id":"u%d","username":"%s","nickname":"%s"}\n' "${names[$i]}" "$i" "${names[$i]}" "${nicks[$i]}"
done >"$f"
sk_send "$T_USERS" "$f"
if sk_results $((2 * n)) 60 >"$SK_TEST_TMP/r2"; then
    tap_ok "the user events got results"
else
    tap_fail "the user events got results" "$(tail -n 20 "$D_LOG")"
fi
for i in "${!names[@]}"; do
    tap_is "nickname ${nicks[$i]} stored as its UTF-8 bytes" \
        "$(sk_sql "$D_DB" "SELECT HEX(nickname) FROM users WHERE HEX(username) = '$(hex "${names[$i]}")'")" \
        "$(hex "${nicks[$i]}")"
done
tap_is "no duplicate users were created" "$(sk_sql "$D_DB" "SELECT COUNT(*) FROM users")" "$n"

# "€" is E2 82 AC: read as gbk, AC pairs with the backslash escaping "'",
# and the quote would end the string literal.
f=$SK_TEST_TMP/quote.txt
printf '2\t{"event_id":"q1","game_id":2,"username":"€'"'"'x","delta":7}\n' >"$f"
sk_send "$T_SCORES" "$f"
if sk_results $((2 * n + 1)) 30 | tail -n 1 >"$SK_TEST_TMP/r3" && [[ -s $SK_TEST_TMP/r3 ]]; then
    tap_is "the event with €' applied" "$(jq -r .status "$SK_TEST_TMP/r3")" applied
else
    tap_fail "the event with €' applied" "$(grep -i 'fail\|error' "$D_LOG" | tail -n 5)"
fi
tap_is "its username stored as its UTF-8 bytes" \
    "$(sk_sql "$D_DB" "SELECT HEX(u.username) FROM users u JOIN game_players gp ON gp.user_id = u.id WHERE gp.game_id = 2")" \
    "$(hex "€'x")"
sk_daemon_stop
tap_is "exit 0 after SIGTERM" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
