#!/usr/bin/env bash
# Stop and start one service of the private stack *in place*: same data
# directory, same ports, same socket, same command line.  Used by the fault
# tests (tests/integration/5*-fault-*.sh) to take MariaDB or the Kafka broker
# away under a running daemon and bring it back.
#
#   tests/stack/control.sh stop    mariadb|kafka   SIGTERM the server, wait until it exited
#   tests/stack/control.sh start   mariadb|kafka   start it again, wait until it answers
#   tests/stack/control.sh restart mariadb|kafka   both
#   tests/stack/control.sh status  mariadb|kafka   exit 0 when it runs and answers
#
# It can also be sourced; it then defines sk_ctl_stop, sk_ctl_start,
# sk_ctl_running and sk_ctl_answers (each taking mariadb|kafka).
#
# How: before stopping, the server's argv (from /proc/PID/cmdline) and working
# directory are saved next to its pid file in build/stack/ (NAME.cmdline,
# NAME.cwd).  start re-launches exactly that argv, detached like stack-up.sh
# does (setsid, stdin /dev/null, output appended to the service's log), then
# writes the new pid into build/stack/NAME.pid and build/stack.env, so
# stack-check.sh and stack-down.sh keep working.  Only the stack described by
# build/stack.env is touched, never external services.
#
# Exit status: 0 done, 1 failed (with a message), 2 usage.
set -euo pipefail
# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# _sk_ctl_env: load build/stack.env into this shell (fresh values each time).
_sk_ctl_env() {
    [[ -f $SK_ENV_FILE ]] || { sk_log "no private stack ($SK_ENV_FILE missing)"; return 1; }
    # shellcheck source=/dev/null
    source "$SK_ENV_FILE"
}

_sk_ctl_check_name() {
    case "${1:-}" in
    mariadb | kafka) return 0 ;;
    *) sk_log "unknown service '${1:-}' (want mariadb or kafka)"; return 2 ;;
    esac
}

# _sk_ctl_pid NAME: the recorded pid of the service.
_sk_ctl_pid() {
    if [[ $1 == mariadb ]]; then printf '%s\n' "${MARIADB_PID:-}"; else printf '%s\n' "${KAFKA_PID:-}"; fi
}

# sk_ctl_running NAME: its recorded process is alive (and is ours).
sk_ctl_running() {
    _sk_ctl_check_name "$1" || return 2
    _sk_ctl_env || return 1
    sk_pid_is "$(_sk_ctl_pid "$1")" "$SK_STACK_DIR"
}

# sk_ctl_answers NAME: it runs and answers a query.
sk_ctl_answers() {
    sk_ctl_running "$1" || return 1
    if [[ $1 == mariadb ]]; then
        sk_mariadb_answers "$SCOREKEEPER_DB_SOCKET"
    else
        sk_kafka_answers "$KAFKA_BROKERS"
    fi
}

# _sk_ctl_set_pid NAME PID: record the new pid in the pid file and stack.env.
_sk_ctl_set_pid() {
    local name=$1 pid=$2 var tmp
    var=KAFKA_PID
    [[ $name == mariadb ]] && var=MARIADB_PID
    printf '%s\n' "$pid" >"$SK_STATE/$name.pid"
    tmp=$(mktemp "$SK_BUILD/.stack.env.XXXXXX")
    sed "s/^export $var=.*/export $var=$pid/" "$SK_ENV_FILE" >"$tmp"
    mv -- "$tmp" "$SK_ENV_FILE"
}

# sk_ctl_stop NAME [TIMEOUT_S]: SIGTERM the server and wait for it to exit
# (default 60 s; then SIGKILL, like a crashed server).  Idempotent.
sk_ctl_stop() {
    local name=$1 tmo=${2:-60} pid i
    _sk_ctl_check_name "$name" || return 2
    _sk_ctl_env || return 1
    pid=$(_sk_ctl_pid "$name")
    if ! sk_pid_is "$pid" "$SK_STACK_DIR"; then
        [[ -s $SK_STATE/$name.cmdline ]] && return 0 # already stopped by us
        sk_log "$name: recorded pid '$pid' is not running and no saved command line"
        return 1
    fi
    # Save how to start it again before it goes away.
    cp -- "/proc/$pid/cmdline" "$SK_STATE/$name.cmdline.tmp"
    readlink "/proc/$pid/cwd" >"$SK_STATE/$name.cwd"
    mv -- "$SK_STATE/$name.cmdline.tmp" "$SK_STATE/$name.cmdline"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < tmo * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    sk_log "$name (pid $pid) still running ${tmo} s after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    sk_log "$name (pid $pid) survived SIGKILL"
    return 1
}

# sk_ctl_start NAME [TIMEOUT_S]: start it again with the saved command line
# and wait until it answers (default 90 s).  Idempotent: a running server is
# left alone (only waited for).
sk_ctl_start() {
    local name=$1 tmo=${2:-90} log pid i deadline cwd
    _sk_ctl_check_name "$name" || return 2
    _sk_ctl_env || return 1
    if ! sk_pid_is "$(_sk_ctl_pid "$name")" "$SK_STACK_DIR"; then
        [[ -s $SK_STATE/$name.cmdline ]] || { sk_log "$name: no saved command line (was it stopped with control.sh?)"; return 1; }
        local argv=()
        mapfile -d '' -t argv <"$SK_STATE/$name.cmdline"
        cwd=$(cat "$SK_STATE/$name.cwd" 2>/dev/null || echo "$SK_ROOT")
        [[ -d $cwd ]] || cwd=$SK_ROOT
        log=$KAFKA_LOG
        [[ $name == mariadb ]] && log=$MARIADB_LOG
        rm -f -- "$SK_STATE/$name.pid.new"
        # Detached like stack-up.sh's launch(): own session, no inherited lock
        # fds, the wrapper writes its pid and then execs the server.
        # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
        # (The subshell itself must not hold the lock fd either: it lives as
        # long as the server when setsid does not need to fork.)
        (cd "$cwd" && exec setsid bash -c 'echo "$$" >"$1"; shift; exec "$@"' launch \
            "$SK_STATE/$name.pid.new" "${argv[@]}") </dev/null >>"$log" 2>&1 9>&- 8>&- &
        for ((i = 0; i < 100; i++)); do
            [[ -s $SK_STATE/$name.pid.new ]] && break
            sleep 0.1
        done
        [[ -s $SK_STATE/$name.pid.new ]] || { sk_log "$name: could not launch"; return 1; }
        pid=$(<"$SK_STATE/$name.pid.new")
        rm -f -- "$SK_STATE/$name.pid.new"
        _sk_ctl_set_pid "$name" "$pid"
        _sk_ctl_env
    fi
    pid=$(_sk_ctl_pid "$name")
    deadline=$((SECONDS + tmo))
    until sk_ctl_answers "$name"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            sk_log "$name (pid $pid) exited while starting"
            [[ $name == mariadb ]] && sk_tail_log MariaDB "$MARIADB_LOG" || sk_tail_log "Kafka broker" "$KAFKA_LOG"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            sk_log "$name (pid $pid) not answering ${tmo} s after start"
            return 1
        fi
        sleep 0.3
    done
    rm -f -- "$SK_STATE/$name.cmdline" "$SK_STATE/$name.cwd"
    return 0
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    [[ $# -eq 2 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
    _sk_ctl_check_name "$2" || exit 2
    if sk_external_services; then
        sk_log "external services in use (KAFKA_BROKERS, SCOREKEEPER_DB_URL): not touching them"
        exit 1
    fi
    case "$1" in
    stop) sk_lock; sk_ctl_stop "$2" ;;
    start) sk_lock; sk_ctl_start "$2" ;;
    restart) sk_lock; sk_ctl_stop "$2" && sk_ctl_start "$2" ;;
    status) sk_ctl_answers "$2" ;;
    *) exit 2 ;;
    esac
fi
