#!/usr/bin/env bash
# Migrations an operator can trust (issue 20, item 8), on the real server:
# - `migrate` needs no Kafka setting;
# - `migrate status` lists every migration of sql.dir, applied (with when)
#   or pending, and a version the database records but sql.dir lacks;
# - `migrate --dry-run` prints, in order, the SQL migrate would send and
#   changes nothing; that script, run by the mariadb client, migrates;
# - the daemon refuses (exit 78, naming what is missing and the command to
#   run) a database that lacks a migration of sql.dir, and touches nothing;
#   a new NNN_*.sql in sql.dir raises what it needs, with no code change;
#   a version from a newer release is no obstacle.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"
B=$SK_DAEMON

if [[ $SK_STACK_OURS != 1 ]]; then
    tap_skip "migrate status" "needs the private stack's admin socket"
    tap_done
    exit 0
fi
db=t_mst_$(_sk_rand)
sk_track_db "$db"
sk_sql "" "CREATE DATABASE \`$db\` CHARACTER SET utf8mb4"
admin="mariadb://root@localhost/$db?socket=$SCOREKEEPER_DB_SOCKET"
mapfile -t files < <(cd "$SK_ROOT/sql" && ls [0-9][0-9][0-9]_*.sql)
names=("${files[@]%.sql}")
n=${#files[@]}
last=${names[n - 1]}

# run ARGS...: sets rc, out (stdout) and err (stderr)
run() {
    rc=0
    out=$("$B" "$@" 2>"$SK_TEST_TMP/stderr") || rc=$?
    err=$(<"$SK_TEST_TMP/stderr")
}
tables() { sk_sql "$db" "SHOW TABLES" | LC_ALL=C sort | paste -sd' '; }

# ---- a database never migrated
run -o db.url="$admin" -o sql.dir="$SK_ROOT/sql" migrate status
tap_is "status of a new database: exit 0" "$rc" 0
tap_is "status: every migration pending, in order" \
    "$(awk 'NR > 1 && /^[0-9]/ {print $2, $3}' <<<"$out")" "$(printf '%s pending\n' "${names[@]}")"
tap_check "status: says the database was never migrated" grep -q 'never migrated' <<<"$out"
tap_is "status changes nothing" "$(tables)" ""

# ---- migrate without any Kafka setting, from a sql.dir holding the first two
part=$SK_TEST_TMP/sql-part
mkdir -p "$part"
cp "$SK_ROOT/sql/${files[0]}" "$SK_ROOT/sql/${files[1]}" "$part/"
run -o db.url="$admin" -o sql.dir="$part" migrate
tap_is "migrate with no kafka.bootstrap.servers: exit 0" "$rc" 0
tap_is "it applied the two migrations" "$(grep -c 'applied migration' <<<"$err")" 2

run -o db.url="$admin" -o sql.dir="$SK_ROOT/sql" migrate status
tap_is "status of a partly migrated database: exit 0" "$rc" 0
tap_check "status: the applied ones with when" \
    grep -Eq "^001 +${names[0]} +20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9:.]+\$" <<<"$out"
tap_is "status: the rest pending" "$(grep -c ' pending$' <<<"$out")" $((n - 2))
tap_check "status: names the version and how many are pending" \
    grep -q "database at version 002; $((n - 2)) of the $n migrations in $SK_ROOT/sql pending" <<<"$out"

# ---- the daemon refuses it, and touches nothing
sk_apply_grants "$db"
runtime="mariadb://${SK_DB_USER}@${SK_DB_HOST}:${SK_DB_PORT}/${db}"
daemon_args=(-o "db.url=$runtime" -o "db.password_file=$SCOREKEEPER_DB_PASSWORD_FILE"
    -o "kafka.bootstrap.servers=$KAFKA_BROKERS" -o "kafka.group.id=$(sk_unique g31)"
    -o "topic.users=$(sk_unique t31u)" -o "topic.scores=$(sk_unique t31s)"
    -o "topic.results=$(sk_unique t31r)" -o "topic.dead_letter=$(sk_unique t31d)"
    -o metrics.listen=off -o sql.dir="$SK_ROOT/sql")
before=$(tables)
rc=0
timeout 60 "$B" "${daemon_args[@]}" >"$SK_TEST_TMP/d1.log" 2>&1 || rc=$?
tap_is "the daemon on a database older than it needs: exit 78" "$rc" 78
tap_check "and says what is missing and what to run" bash -c \
    'grep -q "the database schema is at version 002, this scorekeeper needs $2 (sql.dir .*): not applied: $3.*$4; apply them with \`scorekeeper migrate\`" "$1"' _ \
    "$SK_TEST_TMP/d1.log" "$(printf '%03d' $((10#${files[n - 1]:0:3})))" "${names[2]}" "$last"
tap_check "it did not report ready" bash -c '! grep -q "ready:" "$1"' _ "$SK_TEST_TMP/d1.log"
tap_is "it changed nothing" "$(tables)" "$before"

# ---- --dry-run: the SQL, in order, nothing done; and it is what migrate sends
run -o db.url="$admin" -o sql.dir="$SK_ROOT/sql" migrate --dry-run
tap_is "--dry-run: exit 0" "$rc" 0
tap_is "--dry-run: the pending migrations, in order" \
    "$(sed -n 's/^-- migration \([0-9]*_[a-z_0-9]*\), from .*/\1/p' <<<"$out")" "$(printf '%s\n' "${names[@]:2}")"
tap_is "--dry-run changed nothing" "$(tables) $(sk_sql "$db" 'SELECT COUNT(*) FROM schema_migrations')" "$before 2"
if mariadb "${SK_DB_ADMIN[@]}" "$db" <<<"$out" 2>"$SK_TEST_TMP/dry.err"; then
    tap_ok "the printed script runs in the mariadb client"
else
    tap_fail "the printed script runs in the mariadb client" "$(head -n 5 "$SK_TEST_TMP/dry.err")"
fi
run -o db.url="$admin" -o sql.dir="$SK_ROOT/sql" migrate
tap_is "after it, migrate has nothing left to apply" "$rc $(grep -c 'applied migration' <<<"$err")" "0 0"
run -o db.url="$admin" -o sql.dir="$SK_ROOT/sql" migrate status
tap_is "status: nothing pending" "$(grep -c ' pending$' <<<"$out")" 0
tap_check "status: up to date" grep -q "the $n migrations in $SK_ROOT/sql are applied" <<<"$out"

# ---- a new migration file raises what the daemon needs; no code change
next=$SK_TEST_TMP/sql-next
mkdir -p "$next"
cp "$SK_ROOT"/sql/[0-9][0-9][0-9]_*.sql "$next/"
printf 'CREATE TABLE IF NOT EXISTS t31_probe (id INT PRIMARY KEY) ENGINE=InnoDB;\n' >"$next/900_t31_probe.sql"
rc=0
timeout 60 "$B" "${daemon_args[@]}" -o sql.dir="$next" >"$SK_TEST_TMP/d2.log" 2>&1 || rc=$?
tap_is "with a new migration in sql.dir the daemon refuses the database: exit 78" "$rc" 78
tap_check "naming it" grep -q "this scorekeeper needs 900 (sql.dir $next): not applied: 900_t31_probe;" "$SK_TEST_TMP/d2.log"
run -o db.url="$admin" -o sql.dir="$next" migrate
tap_is "migrate applies it" "$rc $(grep -c 'applied migration 900_t31_probe' <<<"$err")" "0 1"

# ---- the daemon starts once all are applied; a version from a newer release
# ---- (recorded, no file here) is no obstacle, and status shows it
sk_sql "$db" "INSERT INTO schema_migrations (version, name) VALUES (999, '999_from_a_newer_release')"
run -o db.url="$admin" -o sql.dir="$next" migrate status
tap_check "status lists a recorded version sql.dir lacks" \
    grep -Eq '^999 +999_from_a_newer_release +20[0-9-]+ [0-9:.]+ \(no such file in sql.dir\)$' <<<"$out"
D_LOG=$SK_TEST_TMP/d3.log
"$B" "${daemon_args[@]}" -o sql.dir="$next" >"$D_LOG" 2>&1 &
D_PID=$!
ready=0
for _ in $(seq 1 600); do
    grep -q 'ready:' "$D_LOG" && { ready=1; break; }
    kill -0 "$D_PID" 2>/dev/null || break
    sleep 0.1
done
tap_is "the daemon starts on the migrated database" "$ready" 1
tap_check "it logged the schema it found" grep -q "database schema at version 999: the $((n + 1)) migrations in $next are applied" "$D_LOG"
sk_daemon_stop
tap_is "SIGTERM: exit 0" "$D_RC" 0

# ---- errors
run -o db.url="$admin" migrate sideways
tap_is "migrate with an unknown argument: exit 64" "$rc" 64
rc=0
timeout 60 "$B" "${daemon_args[@]}" -o sql.dir="$SK_TEST_TMP/no-such-dir" >"$SK_TEST_TMP/d4.log" 2>&1 || rc=$?
tap_is "the daemon with an unreadable sql.dir: exit 78" "$rc" 78
tap_check "naming sql.dir" grep -q "cannot open migrations directory $SK_TEST_TMP/no-such-dir (sql.dir)" "$SK_TEST_TMP/d4.log"
tap_check "no sanitizer reports" bash -c '! grep -lE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$1"/d*.log' _ "$SK_TEST_TMP"
tap_done
