#!/usr/bin/env bash
# Grants: the runtime user, connecting over TCP with its password from a
# 0600 option file (never argv), can SELECT/INSERT/UPDATE the scorekeeper
# tables, DELETE users and game_players rows (a tombstone deletes a user),
# and can do nothing else.
# shellcheck source=tests/lib/testlib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/testlib.sh"

db=$(sk_new_db grants)
other=$(sk_new_db other)
# `other` is migrated but the runtime user must not see it: take its grant
# away again (it stands for "any database that is not ours").
sk_sql "" "REVOKE ALL PRIVILEGES ON \`$other\`.* FROM '$SK_DB_USER'@'127.0.0.1';
           REVOKE ALL PRIVILEGES ON \`$other\`.* FROM '$SK_DB_USER'@'localhost';"
sk_sql "$other" "INSERT INTO games (id, name) VALUES (1, 'secret');"

cnf=$(sk_runtime_cnf "$db")
tap_is "option file is mode 0600" "$(stat -c %a "$cnf")" 600
if [[ $SK_STACK_OURS == 1 ]]; then
    tap_is "stack password file is mode 0600" "$(stat -c %a "$SCOREKEEPER_DB_PASSWORD_FILE")" 600
fi

# as_app SQL: run SQL as the runtime user; stdout+stderr.
as_app() { mariadb --defaults-file="$cnf" -N -B <<<"$1" 2>&1; }
# denied NAME SQL: SQL must fail with an access-denied error specifically,
# so a broken connection cannot pass for a refused privilege.
denied() {
    local out
    if out=$(as_app "$2"); then
        tap_fail "$1" "succeeded: $out"
    elif grep -qiE 'denied|command denied' <<<"$out"; then
        tap_ok "$1"
    else
        tap_fail "$1" "failed, but not with access denied: $out"
    fi
}
# allowed NAME SQL [WANT]: SQL must succeed (and print WANT if given).
allowed() {
    local out
    if ! out=$(as_app "$2"); then
        tap_fail "$1" "$out"
    elif [[ $# -ge 3 && $out != "$3" ]]; then
        tap_fail "$1" "got '$out', expected '$3'"
    else
        tap_ok "$1"
    fi
}

allowed "connects over TCP as $SK_DB_USER@127.0.0.1" \
    "SELECT CONCAT(CURRENT_USER(), ' ', @@hostname <> '', ' ', DATABASE())" \
    "$SK_DB_USER@127.0.0.1 1 $db"
allowed "session uses TCP, not the socket" \
    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID() AND HOST LIKE '127.0.0.1:%'" 1
tap_is "SHOW GRANTS is exactly SELECT, INSERT, UPDATE on the database, DELETE on users and game_players" \
    "$(as_app "SHOW GRANTS FOR CURRENT_USER()" | grep -v '^GRANT USAGE ON \*\.\*' | grep -F "\`$db\`" | LC_ALL=C sort)" \
    "GRANT DELETE ON \`$db\`.\`game_players\` TO \`$SK_DB_USER\`@\`127.0.0.1\`
GRANT DELETE ON \`$db\`.\`users\` TO \`$SK_DB_USER\`@\`127.0.0.1\`
GRANT SELECT, INSERT, UPDATE ON \`$db\`.* TO \`$SK_DB_USER\`@\`127.0.0.1\`"
tap_is "no global privileges beyond USAGE" \
    "$(as_app "SHOW GRANTS FOR CURRENT_USER()" | grep -c '^GRANT USAGE ON \*\.\*')" 1

# Allowed: the daemon's whole repertoire.
allowed "INSERT users" "INSERT INTO users (username, nickname) VALUES ('bob', 'Bob'); SELECT ROW_COUNT()" 1
allowed "INSERT games" "INSERT INTO games (id, name) VALUES (10, 'quiz'); SELECT ROW_COUNT()" 1
allowed "INSERT game_players" \
    "INSERT INTO game_players (game_id, user_id, score) SELECT 10, id, 3 FROM users WHERE username = 'bob'; SELECT ROW_COUNT()" 1
allowed "INSERT kafka_offsets" \
    "INSERT INTO kafka_offsets (consumer_group, topic, \`partition\`, next_offset) VALUES ('g', 't', 0, 5); SELECT ROW_COUNT()" 1
allowed "upsert game_players (INSERT ... ON DUPLICATE KEY UPDATE)" \
    "INSERT INTO game_players (game_id, user_id, score) SELECT 10, id, 4 FROM users WHERE username = 'bob'
       ON DUPLICATE KEY UPDATE score = score + VALUES(score); SELECT score FROM game_players WHERE game_id = 10" 7
allowed "upsert game_offsets" \
    "INSERT INTO game_offsets (topic, \`partition\`, game_id, next_offset) VALUES ('t', 0, 10, 5)
       ON DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset, VALUES(next_offset)); SELECT ROW_COUNT()" 1
allowed "upsert user_offsets, the nickname fenced by it" \
    "INSERT INTO user_offsets (topic, \`partition\`, username, next_offset) VALUES ('t', 0, 'bob', 5)
       ON DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset, VALUES(next_offset));
     INSERT INTO users (username, nickname) SELECT 'bob', 'Old' FROM DUAL WHERE NOT EXISTS
       (SELECT 1 FROM user_offsets WHERE topic = 't' AND \`partition\` = 0 AND username = 'bob' AND next_offset > 3)
       ON DUPLICATE KEY UPDATE nickname = VALUES(nickname);
     SELECT nickname FROM users WHERE username = 'bob'" Bob
allowed "UPDATE users" "UPDATE users SET nickname = 'Bobby' WHERE username = 'bob'; SELECT ROW_COUNT()" 1
allowed "UPDATE games" "UPDATE games SET name = 'quiz 2' WHERE id = 10; SELECT ROW_COUNT()" 1
allowed "UPDATE kafka_offsets" "UPDATE kafka_offsets SET next_offset = 9 WHERE topic = 't'; SELECT ROW_COUNT()" 1
allowed "SELECT back what was written" \
    "SELECT CONCAT_WS('|', u.nickname, g.name, gp.score, o.next_offset)
       FROM users u JOIN game_players gp ON gp.user_id = u.id JOIN games g ON g.id = gp.game_id
       JOIN kafka_offsets o ON o.topic = 't'" "Bobby|quiz 2|7|9"
allowed "SELECT schema_migrations" "SELECT COUNT(*) > 0 FROM schema_migrations" 1
# A tombstone deletes a user: its game_players rows, then its row.
allowed "DELETE a user and its game_players rows" \
    "INSERT INTO users (username) VALUES ('gone');
     INSERT INTO game_players (game_id, user_id, score) SELECT 10, id, 1 FROM users WHERE username = 'gone';
     DELETE FROM game_players WHERE user_id = (SELECT id FROM users WHERE username = 'gone');
     DELETE FROM users WHERE username = 'gone'; SELECT ROW_COUNT()" 1

# Refused.
denied "cannot DROP TABLE" "DROP TABLE game_players"
denied "cannot CREATE TABLE" "CREATE TABLE evil (id INT)"
denied "cannot ALTER TABLE" "ALTER TABLE users ADD COLUMN evil INT"
denied "cannot DELETE kafka_offsets" "DELETE FROM kafka_offsets"
denied "cannot DELETE game_offsets (the marks)" "DELETE FROM game_offsets"
denied "cannot DELETE user_offsets (the marks)" "DELETE FROM user_offsets"
denied "cannot DELETE games" "DELETE FROM games"
denied "cannot DELETE schema_migrations" "DELETE FROM schema_migrations"
denied "cannot TRUNCATE" "TRUNCATE TABLE kafka_offsets"
denied "cannot SELECT mysql.user" "SELECT User FROM mysql.user"
denied "cannot SELECT another database" "SELECT name FROM \`$other\`.games"
denied "cannot CREATE DATABASE" "CREATE DATABASE \`${db}_x\`"
denied "cannot GRANT" "GRANT SELECT ON \`$db\`.* TO '$SK_DB_USER'@'localhost'"
tap_is "rows survived the refused statements" \
    "$(sk_sql "$db" "SELECT (SELECT COUNT(*) FROM kafka_offsets), (SELECT COUNT(*) FROM game_players),
                            (SELECT COUNT(*) FROM game_offsets), (SELECT COUNT(*) FROM user_offsets),
                            (SELECT COUNT(*) FROM games)")" "1	1	1	1	1"

# The password really is checked.
badpw=$SK_TEST_TMP/bad.password
printf 'not-the-password\n' >"$badpw"
badcnf=$(sk_runtime_cnf "$db" "$badpw")
if out=$(mariadb --defaults-file="$badcnf" -N -B <<<"SELECT 1" 2>&1); then
    tap_fail "wrong password is rejected" "connected: $out"
else
    tap_is "wrong password is rejected" "$(grep -c 'Access denied' <<<"$out")" 1
fi

tap_done
