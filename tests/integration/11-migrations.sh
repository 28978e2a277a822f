#!/usr/bin/env bash
# Migrations: applying them twice to a fresh database changes nothing the
# second time, each file is recorded exactly once, everything is utf8mb4
# InnoDB, and the schema enforces what the daemon relies on.
# shellcheck source=tests/lib/testlib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/testlib.sh"

migrate="$SK_ROOT/tests/tools/db-migrate.sh"
db="t_mig_$(sk_unique x)"
db=${db:0:64}
sk_track_db "$db"
sk_sql "" "CREATE DATABASE \`$db\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"

# Schema as text: SHOW CREATE TABLE of every table (sorted) plus the column
# and index catalogue.  AUTO_INCREMENT counters are data, not schema.
dump_schema() {
    local t
    for t in $(sk_sql "$db" "SELECT TABLE_NAME FROM information_schema.TABLES
                             WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME"); do
        sk_sql "$db" "SHOW CREATE TABLE \`$t\`" | sed -E 's/ AUTO_INCREMENT=[0-9]+//'
    done
    sk_sql "$db" "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE,
                         COLUMN_DEFAULT, EXTRA, CHARACTER_SET_NAME, COLLATION_NAME
                    FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()
                   ORDER BY TABLE_NAME, ORDINAL_POSITION"
    sk_sql "$db" "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE
                    FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()
                   ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
}

tap_check "first db-migrate run succeeds" "$migrate" "$db"
dump1=$(dump_schema)
applied1=$(sk_sql "$db" "SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
out2=$("$migrate" "$db" 2>&1) && rc=0 || rc=$?
tap_is "second db-migrate run succeeds" "$rc" 0
tap_is "second run applies nothing" "$out2" ""
dump2=$(dump_schema)
if [[ -n $dump1 && $dump1 == "$dump2" ]]; then
    tap_ok "schema identical after first and second run"
else
    tap_fail "schema identical after first and second run" "$(diff <(printf '%s\n' "$dump1") <(printf '%s\n' "$dump2") | head -40)"
fi
applied2=$(sk_sql "$db" "SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
tap_is "schema_migrations untouched by the second run" "$applied2" "$applied1"

# Applying a migration file directly again (bypassing the version check)
# must also be harmless: the files themselves are idempotent.
shopt -s nullglob
files=("$SK_ROOT"/sql/[0-9][0-9][0-9]_*.sql)
shopt -u nullglob
direct_ok=1
for f in "${files[@]}"; do
    if ! err=$(mariadb "${SK_DB_ADMIN[@]}" "$db" <"$f" 2>&1); then
        direct_ok=0
        tap_fail "re-applying ${f##*/} directly is harmless" "$err"
    fi
done
((direct_ok)) && tap_ok "re-applying every migration file directly is harmless"
tap_is "schema identical after re-applying files directly" "$(dump_schema)" "$dump1"

want=''
for f in "${files[@]}"; do
    b=${f##*/}
    want+="$((10#${b:0:3}))	${b%.sql}"$'\n'
done
want=${want%$'\n'}
tap_is "schema_migrations has exactly one row per file" \
    "$(sk_sql "$db" "SELECT version, name FROM schema_migrations ORDER BY version")" "$want"

tap_is "expected tables exist" \
    "$(sk_sql "$db" "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()" |
        LC_ALL=C sort | paste -sd,)" \
    "game_offsets,game_players,games,kafka_offsets,schema_migrations,user_offsets,users"
tap_is "no table is other than InnoDB/utf8mb4" \
    "$(sk_sql "$db" "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()
                     AND (ENGINE <> 'InnoDB' OR TABLE_COLLATION NOT LIKE 'utf8mb4\\_%')")" 0
tap_is "no text column is other than utf8mb4" \
    "$(sk_sql "$db" "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()
                     AND CHARACTER_SET_NAME IS NOT NULL AND CHARACTER_SET_NAME <> 'utf8mb4'")" 0
tap_is "users.username is utf8mb4_nopad_bin" \
    "$(sk_sql "$db" "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()
                     AND TABLE_NAME = 'users' AND COLUMN_NAME = 'username'")" utf8mb4_nopad_bin

# Behaviour the daemon depends on.
if sk_sql "$db" "INSERT INTO users (username) VALUES ('alice'), ('Alice'), ('alice ');" 2>/dev/null; then
    tap_ok "'alice', 'Alice' and 'alice ' are distinct users"
else
    tap_fail "'alice', 'Alice' and 'alice ' are distinct users" "insert failed"
fi
tap_is "lookup by exact bytes finds one row" \
    "$(sk_sql "$db" "SELECT COUNT(*) FROM users WHERE username = 'alice '")" 1
if err=$(sk_sql "$db" "INSERT INTO users (username) VALUES ('alice')" 2>&1); then
    tap_fail "duplicate username is rejected" "insert succeeded"
else
    tap_is "duplicate username is rejected" "$(grep -c 'Duplicate entry' <<<"$err")" 1
fi
if err=$(sk_sql "$db" "INSERT INTO game_players (game_id, user_id) VALUES (999999, 1)" 2>&1); then
    tap_fail "game_players requires an existing game (FK)" "insert succeeded"
else
    tap_is "game_players requires an existing game (FK)" "$(grep -c 'foreign key constraint fails' <<<"$err")" 1
fi
sk_sql "$db" "INSERT INTO games (id, name) VALUES (7, 'g7');
              INSERT INTO game_players (game_id, user_id) SELECT 7, id FROM users WHERE username = 'alice';"
if err=$(sk_sql "$db" "INSERT INTO game_players (game_id, user_id) SELECT 7, id FROM users WHERE username = 'alice'" 2>&1); then
    tap_fail "one game_players row per (game, user)" "second insert succeeded"
else
    tap_is "one game_players row per (game, user)" "$(grep -c 'Duplicate entry' <<<"$err")" 1
fi
tap_is "score defaults to 0" "$(sk_sql "$db" "SELECT score FROM game_players WHERE game_id = 7")" 0
before=$(sk_sql "$db" "SELECT updated_at FROM game_players WHERE game_id = 7")
sk_sql "$db" "UPDATE game_players SET score = score + 5 WHERE game_id = 7"
after=$(sk_sql "$db" "SELECT updated_at > '$before' FROM game_players WHERE game_id = 7")
tap_is "updated_at moves on UPDATE" "$after" 1

tap_done
