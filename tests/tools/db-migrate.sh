#!/usr/bin/env bash
# db-migrate.sh DBNAME — apply sql/NNN_*.sql to DBNAME in version order,
# skipping versions already recorded in DBNAME.schema_migrations.
#
# The harness's stand-in for the daemon's future `migrate` command.  Runs the
# mariadb client as administrator with the arguments in SCOREKEEPER_DB_ADMIN
# (from build/stack.env or the environment).  SQL goes through stdin.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
die() { printf 'db-migrate: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 && -n $1 ]] || die "usage: db-migrate.sh DBNAME"
db=$1
# The name is interpolated into SQL below; refuse anything needing quoting.
[[ $db =~ ^[A-Za-z0-9_]{1,64}$ ]] || die "invalid database name '$db'"

if [[ -z ${SCOREKEEPER_DB_ADMIN:-} && -f $root/build/stack.env ]]; then
    # shellcheck source=/dev/null
    source "$root/build/stack.env"
fi
[[ -n ${SCOREKEEPER_DB_ADMIN:-} ]] || die "SCOREKEEPER_DB_ADMIN is not set and there is no build/stack.env"
# Word-splitting is the documented format of SCOREKEEPER_DB_ADMIN.
read -r -a admin <<<"$SCOREKEEPER_DB_ADMIN"

sql() { mariadb "${admin[@]}" -N -B "$@"; }

exists=$(sql <<<"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '$db'") \
    || die "cannot connect as administrator"
[[ $exists == 1 ]] || die "database '$db' does not exist"

applied=''
has_table=$(sql <<<"SELECT COUNT(*) FROM information_schema.TABLES
                    WHERE TABLE_SCHEMA = '$db' AND TABLE_NAME = 'schema_migrations'")
if [[ $has_table == 1 ]]; then
    applied=$(sql "$db" <<<'SELECT version FROM schema_migrations ORDER BY version')
fi

shopt -s nullglob
files=("$root"/sql/[0-9][0-9][0-9]_*.sql)
[[ ${#files[@]} -gt 0 ]] || die "no migrations in $root/sql"
# Globs expand sorted, and the fixed three-digit prefix makes that numeric.
for f in "${files[@]}"; do
    base=${f##*/}
    version=$((10#${base:0:3}))
    if grep -qx "$version" <<<"$applied"; then
        continue
    fi
    if ! sql "$db" <"$f"; then
        die "migration $base failed on database '$db'"
    fi
    # A migration must record itself; a file that forgets would be re-run
    # forever, so treat that as an error.
    rec=$(sql "$db" <<<"SELECT COUNT(*) FROM schema_migrations WHERE version = $version")
    [[ $rec == 1 ]] || die "migration $base did not record version $version in schema_migrations"
    printf 'db-migrate: %s: applied %s\n' "$db" "$base" >&2
done
