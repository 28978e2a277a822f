# shellcheck shell=bash disable=SC2034 # variables are used by the sourcing scripts
# Shared by stack-up.sh, stack-down.sh and stack-check.sh.  Sourced, not run.
#
# Layout (all under the repository the scripts live in):
#   build/stack.env        shell-sourceable description of a running stack
#   build/.stack.lock      flock serialising stack-up / stack-down
#   build/stack/           state: pid files, db.password, kafka.sasl.password,
#                          kafka-sasl.properties (kcat -F), path of the run dir
#   build/stack/run.XXXXXX broker data and TLS certificates (kafka/tls/), MariaDB
#                          datadir, logs, configs
# Nothing is written anywhere else except the cache in SK_CACHE (outside the
# repository, shared between clones: Kafka's jars and the tree of
# tests/stack/systemd-host.sh) and, only when the repository path is too
# long for a unix socket, a socket directory from mktemp under /tmp.

SK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
SK_BUILD=$SK_ROOT/build
SK_STATE=$SK_BUILD/stack
SK_ENV_FILE=$SK_BUILD/stack.env
SK_LOCK_FILE=$SK_BUILD/.stack.lock
SK_KAFKA_VERSION=3.9.1
# Downloads and builds kept between clones: the Kafka jars, the systemd host tree.
SK_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/scorekeeper
SK_KAFKA_CACHE=$SK_CACHE/kafka-$SK_KAFKA_VERSION

sk_log() { printf 'stack: %s\n' "$*" >&2; }
sk_die() { printf 'stack: ERROR: %s\n' "$*" >&2; exit 1; }

# Services given through the environment (CI, a developer's own broker) win:
# both variables set and not merely inherited from sourcing our own
# stack.env (which also exports SK_STACK_DIR).
sk_external_services() {
    [[ -n ${KAFKA_BROKERS:-} && -n ${SCOREKEEPER_DB_URL:-} && -z ${SK_STACK_DIR:-} ]]
}

# Serialise every script that creates or destroys the stack, so a make -j or
# two terminals cannot interleave a start with a teardown.
sk_lock() {
    mkdir -p "$SK_BUILD"
    exec 9>"$SK_LOCK_FILE"
    if ! flock -w 300 9; then
        sk_die "another stack-up/stack-down holds $SK_LOCK_FILE for over 300 s"
    fi
}

# True if PID is alive and its command line mentions NEEDLE.  Guards against
# signalling an unrelated process that reused a recorded pid.
sk_pid_is() {
    local pid=$1 needle=$2 cmd
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmd == *"$needle"* ]]
}

# Stop PID politely, then firmly: TERM, up to 20 s, then KILL.
sk_stop_pid() {
    local pid=$1 name=$2 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    sk_log "$name (pid $pid) ignored TERM for 20 s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    sk_log "WARNING: $name (pid $pid) survived KILL"
}

sk_tail_log() {
    local name=$1 file=$2
    if [[ -s $file ]]; then
        printf -- '----- last 30 lines of %s (%s) -----\n' "$name" "$file" >&2
        tail -n 30 "$file" >&2
        printf -- '----- end of %s -----\n' "$name" >&2
    else
        printf -- '(%s log %s is empty or missing)\n' "$name" "$file" >&2
    fi
}

# Stop whatever a (possibly half-started) stack left behind and delete all of
# its data.  Works from the state directory alone so it also cleans up after a
# stack-up that died before writing stack.env.  Caller holds the lock.
sk_teardown() {
    local run='' sockdir='' pid
    [[ -f $SK_STATE/run ]] && run=$(<"$SK_STATE/run")
    [[ -f $SK_STATE/sockdir ]] && sockdir=$(<"$SK_STATE/sockdir")
    if [[ -n $run ]]; then
        # Stop the broker first: it does not depend on MariaDB, but doing
        # both in a fixed order keeps logs readable.
        if [[ -f $SK_STATE/kafka.pid ]]; then
            pid=$(<"$SK_STATE/kafka.pid")
            if sk_pid_is "$pid" "$run"; then
                sk_log "stopping Kafka broker (pid $pid)"
                sk_stop_pid "$pid" "Kafka broker"
            fi
        fi
        if [[ -f $SK_STATE/mariadb.pid ]]; then
            pid=$(<"$SK_STATE/mariadb.pid")
            if sk_pid_is "$pid" "$run"; then
                sk_log "stopping MariaDB (pid $pid)"
                sk_stop_pid "$pid" "MariaDB"
            fi
        fi
        # Only ever delete what we created: a run.* directory inside our
        # state directory.
        if [[ $run == "$SK_STATE"/run.* && -d $run ]]; then
            rm -rf -- "$run"
        fi
    fi
    if [[ -n $sockdir && $sockdir == /tmp/sk-sock.* && -d $sockdir ]]; then
        rm -rf -- "$sockdir"
    fi
    rm -f -- "$SK_ENV_FILE"
    rm -rf -- "$SK_STATE"
}

# sk_kafka_answers BROKER [CLIENT_PROPERTIES]: the broker lists itself; the
# properties file (kcat -F) says how to reach a SASL_SSL listener.
sk_kafka_answers() {
    local conf=()
    [[ -z ${2:-} ]] || conf=(-F "$2")
    # -m bounds the metadata wait.
    kcat "${conf[@]}" -b "$1" -L -m 5 2>/dev/null | grep -q "broker [0-9]* at $1"
}

sk_mariadb_answers() {
    local out
    out=$(mariadb --no-defaults -uroot -S "$1" --connect-timeout=5 -N -B \
        <<<'SELECT 1' 2>/dev/null) && [[ $out == 1 ]]
}

# Check the stack described by stack.env.  Prints what is wrong (and the
# failing service's log tail) and returns 1 when anything is down.
sk_check() {
    local quiet=${1:-} bad=0
    if [[ ! -f $SK_ENV_FILE ]]; then
        [[ -n $quiet ]] || sk_log "no stack running ($SK_ENV_FILE is missing; run make stack-up)"
        return 1
    fi
    # Subshell-free: the variables are namespaced by the file itself.
    # shellcheck source=/dev/null
    source "$SK_ENV_FILE"
    local run=${SK_STACK_DIR:-}
    if ! sk_pid_is "${KAFKA_PID:-}" "$run"; then
        [[ -n $quiet ]] || {
            printf 'Kafka broker at %s is not answering (pid %s not running)\n' \
                "$KAFKA_BROKERS" "${KAFKA_PID:-?}" >&2
            sk_tail_log "Kafka broker" "$KAFKA_LOG"
        }
        bad=1
    elif ! sk_kafka_answers "$KAFKA_BROKERS"; then
        [[ -n $quiet ]] || {
            printf 'Kafka broker at %s is not answering (pid %s is running)\n' \
                "$KAFKA_BROKERS" "$KAFKA_PID" >&2
            sk_tail_log "Kafka broker" "$KAFKA_LOG"
        }
        bad=1
    fi
    if [[ $bad == 0 && -n ${KAFKA_SASL_BROKERS:-} ]] &&
        ! sk_kafka_answers "$KAFKA_SASL_BROKERS" "$KAFKA_SASL_CLIENT_CONF"; then
        [[ -n $quiet ]] || {
            printf 'Kafka broker: its SASL_SSL listener %s is not answering (pid %s is running)\n' \
                "$KAFKA_SASL_BROKERS" "$KAFKA_PID" >&2
            sk_tail_log "Kafka broker" "$KAFKA_LOG"
        }
        bad=1
    fi
    if ! sk_pid_is "${MARIADB_PID:-}" "$run"; then
        [[ -n $quiet ]] || {
            printf 'MariaDB at 127.0.0.1:%s is not answering (pid %s not running)\n' \
                "$SCOREKEEPER_DB_PORT" "${MARIADB_PID:-?}" >&2
            sk_tail_log "MariaDB" "$MARIADB_LOG"
        }
        bad=1
    elif ! sk_mariadb_answers "$SCOREKEEPER_DB_SOCKET"; then
        [[ -n $quiet ]] || {
            printf 'MariaDB at 127.0.0.1:%s is not answering (pid %s is running)\n' \
                "$SCOREKEEPER_DB_PORT" "$MARIADB_PID" >&2
            sk_tail_log "MariaDB" "$MARIADB_LOG"
        }
        bad=1
    fi
    return "$bad"
}
