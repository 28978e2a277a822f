#!/usr/bin/env bash
# `scorekeeper migrate` applies sql/ in order over the non-blocking pool,
# records each version once, and a second run changes nothing.
source "$(dirname "$0")/../lib/testlib.sh"
B=$SK_ROOT/build/san/scorekeeper
export ASAN_OPTIONS=detect_leaks=1

db=t_migrate_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
sk_track_db "$db"
sk_sql "" "CREATE DATABASE \`$db\` CHARACTER SET utf8mb4"
url="mariadb://root@localhost/$db?socket=$SCOREKEEPER_DB_SOCKET"
if [[ $SK_STACK_OURS != 1 ]]; then
    tap_skip "migrate" "needs the private stack's admin socket"
    tap_done
    exit 0
fi

dump() {
    local t
    for t in $(sk_sql "$db" "SHOW TABLES"); do
        sk_sql "$db" "SHOW CREATE TABLE \`$t\`" | sed 's/AUTO_INCREMENT=[0-9]* //'
    done
}
files=$(ls "$SK_ROOT"/sql/[0-9][0-9][0-9]_*.sql | wc -l)

rc=0
out=$("$B" -o db.url="$url" -o kafka.bootstrap.servers=127.0.0.1:1 -o sql.dir="$SK_ROOT/sql" migrate 2>&1) || rc=$?
tap_is "first migrate: exit 0" "$rc" 0
tap_is "every migration applied once" "$(grep -c 'applied migration' <<<"$out")" "$files"
first=$(dump)
tap_is "schema_migrations has one row per file" "$(sk_sql "$db" "SELECT COUNT(*) FROM schema_migrations")" "$files"

rc=0
out=$("$B" -o db.url="$url" -o kafka.bootstrap.servers=127.0.0.1:1 -o sql.dir="$SK_ROOT/sql" migrate 2>&1) || rc=$?
tap_is "second migrate: exit 0" "$rc" 0
tap_is "second migrate applies nothing" "$(grep -c 'applied migration' <<<"$out")" 0
tap_is "schema identical after the second run" "$(dump)" "$first"
tap_is "schema_migrations unchanged" "$(sk_sql "$db" "SELECT COUNT(*) FROM schema_migrations")" "$files"
tap_is "every table is utf8mb4" \
    "$(sk_sql "$db" "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_collation NOT LIKE 'utf8mb4%'")" 0
tap_is "the daemon's tables exist" "$(sk_sql "$db" "SHOW TABLES" | LC_ALL=C sort | tr '\n' ' ')" \
    "game_offsets game_players games kafka_offsets schema_migrations user_offsets users "

bad=$SK_TEST_TMP/sql
mkdir -p "$bad"
cp "$SK_ROOT"/sql/[0-9]*.sql "$bad/"
printf 'CREATE TABLE broken (;\n' >"$bad/099_broken.sql"
rc=0
out=$("$B" -o db.url="$url" -o kafka.bootstrap.servers=127.0.0.1:1 -o sql.dir="$bad" migrate 2>&1) || rc=$?
tap_is "a failing migration: exit 65" "$rc" 65
tap_check "and it is named" grep -q 'migration 099_broken failed' <<<"$out"
tap_is "a failed migration is not recorded" "$(sk_sql "$db" "SELECT COUNT(*) FROM schema_migrations WHERE version = 99")" 0
tap_done
