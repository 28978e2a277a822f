#!/bin/sh
# db-totals.sh — the actual scorekeeper tables, in the format of ledger-totals.sh.
#
# Usage:
#   tests/tools/db-totals.sh [--users] "MARIADB-CLIENT-ARGS" DATABASE [PREFIX]
#
#   MARIADB-CLIENT-ARGS  split on blanks and passed to the client, e.g.
#                        "--no-defaults -uroot -S /tmp/sk/mariadb.sock"
#   DATABASE             database holding the scorekeeper schema
#   PREFIX               only users named PREFIX<digits> (loadgen --prefix),
#                        [A-Za-z0-9._-]+; default: every user
#   --users              print username<TAB>nickname (\N = NULL) instead of
#                        game_id<TAB>username<TAB>score
#
# The client is $MARIADB (default: mariadb).  Output is LC_ALL=C sorted, so
#   diff <(tests/tools/ledger-totals.sh L) <(tests/tools/db-totals.sh ARGS DB PREFIX)
# is empty when the database matches the ledger.
# The connection uses utf8mb4 (the client default would turn emoji into "?").
# Values are printed raw (mariadb -r): loadgen's usernames and nicknames contain no
# TAB, newline or backslash.
set -eu

usage() {
    sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

mode=scores
case "${1:-}" in
--users) mode=users; shift ;;
-h | --help) usage ;;
esac
[ $# -eq 2 ] || [ $# -eq 3 ] || usage
args=$1 db=$2 prefix=${3:-}

where=""
if [ -n "$prefix" ]; then
    case "$prefix" in
    *[!A-Za-z0-9._-]*) echo "db-totals.sh: PREFIX must match [A-Za-z0-9._-]+" >&2; exit 2 ;;
    esac
    n=${#prefix}
    where="WHERE LEFT(u.username, $n) = '$prefix' AND SUBSTRING(u.username, $((n + 1))) REGEXP '^[0-9]+\$'"
fi

if [ "$mode" = scores ]; then
    sql="SELECT g.game_id, u.username, g.score FROM game_players g JOIN users u ON u.id = g.user_id $where"
else
    sql="SELECT u.username, IFNULL(u.nickname, '\\\\N') FROM users u $where"
fi

# shellcheck disable=SC2086  # the client arguments are meant to be split
"${MARIADB:-mariadb}" $args --default-character-set=utf8mb4 -N -B -r -e "$sql" "$db" | LC_ALL=C sort
