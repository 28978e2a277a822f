# shellcheck shell=bash
# Helpers for tests/integration/NN-*.sh.  Source it first thing:
#
#   source "$(dirname "$0")/../lib/testlib.sh"
#
# It sets `set -euo pipefail`, finds the stack (build/stack.env, or
# KAFKA_BROKERS + SCOREKEEPER_DB_URL + SCOREKEEPER_DB_ADMIN +
# SCOREKEEPER_DB_PASSWORD_FILE from the environment), and arranges for every
# database and temp file a test creates to be removed when it exits.
#
# TAP:      tap_ok NAME | tap_fail NAME REASON | tap_skip NAME REASON
#           tap_check NAME CMD... | tap_is NAME GOT WANT | tap_diag MSG
#           tap_done (prints the plan "1..N"; exit status 1 if anything failed)
# Stack:    sk_sql DB SQL | sk_new_db PREFIX | sk_runtime_cnf DB | sk_unique NAME
# Kafka:    sk_mktopic TOPIC PARTITIONS | sk_produce ... | sk_consume ...
set -euo pipefail

SK_ROOT=${SK_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
SK_TOOLS=${SK_TOOLS:-$SK_ROOT/build/san/tools}

# ---------------------------------------------------------------------- TAP
_tap_n=0
_tap_failed=0

tap_diag() {
    local line
    while IFS= read -r line; do printf '# %s\n' "$line"; done <<<"$*"
}
tap_ok() {
    _tap_n=$((_tap_n + 1))
    printf 'ok %d - %s\n' "$_tap_n" "$1"
}
tap_fail() {
    _tap_n=$((_tap_n + 1))
    _tap_failed=$((_tap_failed + 1))
    printf 'not ok %d - %s\n' "$_tap_n" "$1"
    [[ -z ${2:-} ]] || tap_diag "$2"
}
tap_skip() {
    _tap_n=$((_tap_n + 1))
    printf 'ok %d - %s # SKIP %s\n' "$_tap_n" "$1" "${2:-}"
}
# tap_check NAME CMD [ARGS...]: ok when CMD exits 0; otherwise not ok with
# CMD's output (stdout+stderr) as diagnostics.
tap_check() {
    local name=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    if ((rc == 0)); then
        tap_ok "$name"
    else
        tap_fail "$name" "command failed (exit $rc): $*${out:+
$out}"
    fi
}
# tap_is NAME GOT WANT: string equality, showing both on failure.
tap_is() {
    if [[ $2 == "$3" ]]; then
        tap_ok "$1"
    else
        tap_fail "$1" "got:      '$2'
expected: '$3'"
    fi
}
# tap_done: print the plan; the test's exit status says whether all passed.
tap_done() {
    printf '1..%d\n' "$_tap_n"
    ((_tap_failed == 0))
}
# Abort the whole test with a TAP bail-out (counted as a failure by run.sh).
sk_bail() {
    printf 'Bail out! %s\n' "$*"
    exit 1
}

# -------------------------------------------------------------- environment
# Same rule as tests/stack/lib.sh: external services win when both are set
# and did not come from sourcing our own stack.env.
if [[ -n ${KAFKA_BROKERS:-} && -n ${SCOREKEEPER_DB_URL:-} && -z ${SK_STACK_DIR:-} ]]; then
    SK_STACK_OURS=0
    : "${SCOREKEEPER_DB_ADMIN:?external services: set SCOREKEEPER_DB_ADMIN (mariadb client args of an admin account)}"
    : "${SCOREKEEPER_DB_PASSWORD_FILE:?external services: set SCOREKEEPER_DB_PASSWORD_FILE (password of the URL user)}"
elif [[ -f $SK_ROOT/build/stack.env ]]; then
    # shellcheck source=/dev/null
    source "$SK_ROOT/build/stack.env"
    SK_STACK_OURS=1
else
    sk_bail "no stack: run make stack-up, or set KAFKA_BROKERS and SCOREKEEPER_DB_URL"
fi
read -r -a SK_DB_ADMIN <<<"$SCOREKEEPER_DB_ADMIN"
# mariadb://USER@HOST:PORT/DB
if [[ ! $SCOREKEEPER_DB_URL =~ ^mariadb://([^@/]+)@([^:/]+):([0-9]+)/([A-Za-z0-9_]+)$ ]]; then
    sk_bail "cannot parse SCOREKEEPER_DB_URL='$SCOREKEEPER_DB_URL' (want mariadb://USER@HOST:PORT/DB)"
fi
SK_DB_USER=${BASH_REMATCH[1]}
SK_DB_HOST=${BASH_REMATCH[2]}
SK_DB_PORT=${BASH_REMATCH[3]}
SK_DB_NAME=${BASH_REMATCH[4]}
export SK_STACK_OURS SK_DB_USER SK_DB_HOST SK_DB_PORT SK_DB_NAME

# ------------------------------------------------------------------ cleanup
# Helpers are often called in $(...) subshells, where a trap would not
# survive; they record what to clean up in files read by the EXIT trap.
SK_TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sk-test.XXXXXX")
: >"$SK_TEST_TMP/.dbs"
# _sk_cleanup [RC]: exits with RC (default: the status the test ended with).
# A chained EXIT trap passes its saved status and runs with `set +e`: under
# `set -e` a failing step (or an `(exit 1)`) would end the trap before the
# databases and topics are dropped.
_sk_cleanup() {
    local rc=${1:-$?} db
    while IFS= read -r db; do
        [[ -n $db ]] || continue
        mariadb "${SK_DB_ADMIN[@]}" <<<"DROP DATABASE IF EXISTS \`$db\`;" >/dev/null 2>&1 ||
            printf '# warning: could not drop database %s\n' "$db"
    done <"$SK_TEST_TMP/.dbs"
    local topics=()
    [[ -s $SK_TEST_TMP/.topics ]] && mapfile -t topics < <(sort -u "$SK_TEST_TMP/.topics")
    if ((${#topics[@]})) && ! "$SK_TOOLS/mktopic" -b "$KAFKA_BROKERS" -t 10000 -d "${topics[@]}" \
        >/dev/null 2>"$SK_TEST_TMP/.topics.err"; then
        printf '# warning: could not delete topics: %s\n' "$(head -3 "$SK_TEST_TMP/.topics.err")"
    fi
    rm -rf -- "$SK_TEST_TMP"
    exit "$rc"
}
trap _sk_cleanup EXIT
trap 'exit 130' INT TERM

_sk_rand() { od -An -N6 -tx1 /dev/urandom | tr -d ' \n'; }

# sk_unique NAME: NAME plus pid and randomness, valid as a Kafka topic, group
# or database-name fragment ([A-Za-z0-9_]).
sk_unique() { printf '%s_%s_%s' "$1" "$$" "$(_sk_rand)"; }

# ------------------------------------------------------------------ MariaDB
# sk_sql DB "SQL": run SQL as administrator (batch mode, no column names);
# DB may be "" for none.  SQL goes through stdin.
sk_sql() {
    local db=$1 sql=$2
    if [[ -n $db ]]; then
        mariadb "${SK_DB_ADMIN[@]}" --default-character-set=utf8mb4 -N -B "$db" <<<"$sql"
    else
        mariadb "${SK_DB_ADMIN[@]}" --default-character-set=utf8mb4 -N -B <<<"$sql"
    fi
}

# sk_new_db PREFIX: create database t_PREFIX_<random>, apply the migrations,
# grant the runtime user on it; print its name.  Dropped at test exit.
sk_new_db() {
    local prefix=$1 db
    db="t_${prefix}_$(_sk_rand)"
    [[ $db =~ ^[A-Za-z0-9_]{1,64}$ ]] || { echo "sk_new_db: bad prefix '$prefix'" >&2; return 1; }
    printf '%s\n' "$db" >>"$SK_TEST_TMP/.dbs"
    sk_sql "" "CREATE DATABASE \`$db\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;" || return 1
    SCOREKEEPER_DB_ADMIN=$SCOREKEEPER_DB_ADMIN "$SK_ROOT/tests/tools/db-migrate.sh" "$db" 2>/dev/null ||
        { echo "sk_new_db: migrations failed on $db" >&2; return 1; }
    sk_apply_grants "$db" || return 1
    printf '%s\n' "$db"
}

# sk_track_db DB: drop DB at test exit (for databases created by hand).
sk_track_db() { printf '%s\n' "$1" >>"$SK_TEST_TMP/.dbs"; }

# sk_apply_grants DB: sql/grants.sql with the database (and, for external
# services, the runtime user name) substituted.
sk_apply_grants() {
    local db=$1
    sed -e "s/\`scorekeeper\`\\./\`$db\`./g" \
        -e "s/'scorekeeper'@/'$SK_DB_USER'@/g" "$SK_ROOT/sql/grants.sql" |
        mariadb "${SK_DB_ADMIN[@]}"
}

# sk_runtime_cnf DB [PASSWORD_FILE]: write a mariadb client option file
# (mode 0600) that connects as the runtime user over TCP to DB; print its
# path.  Use as: mariadb --defaults-file="$cnf" ...  (keeps the password out
# of argv).
sk_runtime_cnf() {
    local db=$1 pwfile=${2:-$SCOREKEEPER_DB_PASSWORD_FILE} cnf pw
    cnf=$(mktemp "$SK_TEST_TMP/runtime.XXXXXX.cnf")
    chmod 0600 "$cnf"
    pw=$(<"$pwfile")
    {
        printf '[client]\n'
        printf 'user=%s\n' "$SK_DB_USER"
        printf 'password="%s"\n' "$pw"
        printf 'host=%s\nport=%s\nprotocol=TCP\n' "$SK_DB_HOST" "$SK_DB_PORT"
        printf 'database=%s\n' "$db"
    } >"$cnf"
    printf '%s\n' "$cnf"
}

# -------------------------------------------------------------------- Kafka
# sk_mktopic TOPIC PARTITIONS: create the topic with the Admin API tool; it
# is deleted at exit (a run's topics would otherwise stay on the broker: the
# bench alone left 7.3 GB after about 25 runs).
sk_mktopic() {
    printf '%s\n' "$1" >>"$SK_TEST_TMP/.topics"
    "$SK_TOOLS/mktopic" -b "$KAFKA_BROKERS" "$1" "$2"
}

# sk_produce TOPIC KEY PAYLOAD_FILE [NAME=VALUE...]: produce the file's exact
# bytes as one message with KEY and the given headers; waits for the ack.
# Use KEY "" for no key.
sk_produce() {
    local topic=$1 key=$2 file=$3 h
    shift 3
    local args=(-b "$KAFKA_BROKERS" -P -t "$topic" -X acks=all)
    [[ -z $key ]] || args+=(-k "$key")
    for h in "$@"; do args+=(-H "$h"); done
    timeout 30 kcat "${args[@]}" "$file"
}

# sk_consume TOPIC COUNT [TIMEOUT_S [KCAT_ARGS...]]: read COUNT messages from
# the beginning of TOPIC (all partitions) and print them with kcat's -f
# format given in KCAT_ARGS (default: payload and a newline).  Fails when
# fewer than COUNT arrive within TIMEOUT_S (default 30).
sk_consume() {
    local topic=$1 count=$2 tmo=${3:-30}
    shift 2
    [[ $# -eq 0 ]] || shift
    local fmt=(-f '%s\n')
    [[ $# -eq 0 ]] || fmt=()
    timeout "$tmo" kcat -b "$KAFKA_BROKERS" -C -t "$topic" -o beginning -c "$count" -q \
        "${fmt[@]}" "$@"
}
