#!/bin/sh
# ledger-totals.sh — expected database state computed from a loadgen ledger.
#
# Usage:
#   tests/tools/ledger-totals.sh LEDGER          expected game_players rows:
#                                                game_id<TAB>username<TAB>score
#   tests/tools/ledger-totals.sh --users LEDGER  expected users rows:
#                                                username<TAB>nickname (\N = NULL)
#
# Output is sorted with LC_ALL=C sort, like tests/tools/db-totals.sh, so
#   diff <(tests/tools/ledger-totals.sh L) <(tests/tools/db-totals.sh ARGS DB PREFIX)
# is the correctness check.
#
# Scores: the valid score events ("score" lines) are applied in ledger order per
# (game_id, username), starting at 0: "delta" adds the value, "set" replaces the
# total.  Ledger order is the applied order because every event of one game has
# the same key (the game id), hence one partition, in production order.
# Invalid events never change anything and are ignored.
#
# --users: every username that appears in a valid user or score event (the daemon
# creates unknown users).  Its nickname is the one set by the last user event that
# had a nickname member: a string sets it, \N (JSON null) clears it, an empty ledger
# field (member absent) leaves it untouched.  Users never given one print \N.
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
[ $# -eq 1 ] || usage
[ -r "$1" ] || { echo "ledger-totals.sh: cannot read $1" >&2; exit 2; }

awk -F'\t' -v mode="$mode" '
NF != 9 { printf "ledger-totals.sh: line %d: %d fields, expected 9\n", NR, NF > "/dev/stderr"; bad = 1; exit 2 }
mode == "scores" && $3 == "score" {
    k = $4 "\t" $5
    if ($6 == "delta") s[k] += $7
    else if ($6 == "set") s[k] = $7 + 0
    else { printf "ledger-totals.sh: line %d: bad op %s\n", NR, $6 > "/dev/stderr"; bad = 1; exit 2 }
    next
}
mode == "users" && $3 == "score" { seen[$5] = 1; next }
mode == "users" && $3 == "user" {
    seen[$5] = 1
    if ($8 != "") nick[$5] = $8
    next
}
END {
    if (bad) exit 2
    if (mode == "scores")
        for (k in s) printf "%s\t%.0f\n", k, s[k]
    else
        for (u in seen) printf "%s\t%s\n", u, ((u in nick) ? nick[u] : "\\N")
}' "$1" | LC_ALL=C sort
