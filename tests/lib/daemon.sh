# shellcheck shell=bash
# Helpers to run the real daemon (the sanitizer build) in integration tests,
# on private topics, a private consumer group and a private database.
# Source after testlib.sh.
#
#   sk_daemon_setup NAME [PARTITIONS]   create db + topics; sets D_DB, T_USERS,
#                                       T_SCORES, T_RESULTS, T_DLQ, D_GROUP
#   sk_daemon_start [-o k=v ...]        start it, wait for READY; sets D_PID, D_LOG
#   sk_daemon_stop                      SIGTERM and wait; sets D_RC
#   sk_send TOPIC FILE                  produce "key<TAB>json" lines in order
#   sk_results COUNT [TIMEOUT]          the first COUNT results, one JSON per line
#   sk_score DB GAME USERNAME           a player's score ('' when no row)
#   sk_metrics_url                      http://127.0.0.1:PORT of the running daemon
#   sk_wait_log TEXT                    until the daemon's log has TEXT (10 s at most)
#   sk_send_batch GAME "id op v user"...  one batch of score events, then its results
#   sk_locker DB SQL                    an admin session kept open (coproc LOCKER) runs
#                                       SQL; SK_LOCKED = its first output line
#   sk_locker_end SQL                   run SQL in it, then close it
#   sk_notify_listen                    an sd_notify listener; sets sock, notes, listener

SK_DAEMON=${SK_DAEMON:-$SK_ROOT/build/san/scorekeeper}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

D_PID=
_d_n=0

sk_daemon_setup() {
    local name=$1 parts=${2:-1}
    D_DB=$(sk_new_db "$name")
    T_USERS=$(sk_unique "$name.users")
    T_SCORES=$(sk_unique "$name.scores")
    T_RESULTS=$(sk_unique "$name.results")
    T_DLQ=$(sk_unique "$name.dlq")
    D_GROUP=$(sk_unique "$name.group")
    sk_mktopic "$T_USERS" "$parts" >/dev/null
    sk_mktopic "$T_SCORES" "$parts" >/dev/null
    sk_mktopic "$T_RESULTS" 1 >/dev/null
    sk_mktopic "$T_DLQ" 1 >/dev/null
}

# The arguments every daemon of this test gets; extra -o settings follow.
sk_daemon_args() {
    printf '%s\n' -o "db.url=mariadb://${SK_DB_USER}@${SK_DB_HOST}:${SK_DB_PORT}/${D_DB}" \
        -o "db.password_file=$SCOREKEEPER_DB_PASSWORD_FILE" \
        -o "kafka.bootstrap.servers=$KAFKA_BROKERS" -o "kafka.group.id=$D_GROUP" \
        -o "topic.users=$T_USERS" -o "topic.scores=$T_SCORES" -o "topic.results=$T_RESULTS" -o "topic.dead_letter=$T_DLQ" \
        -o "kafka.session.timeout.ms=6000" -o "kafka.heartbeat.interval.ms=500" \
        -o "metrics.listen=127.0.0.1:0"
}

sk_daemon_start() {
    _d_n=$((_d_n + 1))
    D_LOG=$SK_TEST_TMP/daemon.$_d_n.log
    local args
    mapfile -t args < <(sk_daemon_args)
    "$SK_DAEMON" "${args[@]}" "$@" >"$D_LOG" 2>&1 &
    D_PID=$!
    local i
    for i in $(seq 1 600); do
        if [[ -f $D_LOG ]] && grep -q 'ready:' "$D_LOG"; then return 0; fi
        if ! kill -0 "$D_PID" 2>/dev/null; then
            tap_diag "daemon exited before READY:"
            tap_diag "$(tail -n 30 "$D_LOG")"
            D_PID=
            return 1
        fi
        sleep 0.1
    done
    tap_diag "daemon not READY within 60 s:"
    tap_diag "$(tail -n 30 "$D_LOG")"
    return 1
}

sk_daemon_stop() {
    D_RC=
    [[ -n $D_PID ]] || return 0
    kill -TERM "$D_PID" 2>/dev/null || true
    D_RC=0
    wait "$D_PID" || D_RC=$?
    D_PID=
}

# Sanitizer reports in any daemon log of this test are failures of their own.
sk_daemon_logs_clean() {
    ! grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$SK_TEST_TMP"/daemon.*.log 2>/dev/null
}

_sk_daemon_cleanup() {
    if [[ -n ${D_PID:-} ]] && kill -0 "$D_PID" 2>/dev/null; then
        kill -KILL "$D_PID" 2>/dev/null || true
        wait "$D_PID" 2>/dev/null || true
    fi
}
# Chain onto testlib's EXIT trap: kill a daemon left running, then clean up.
trap '_d_rc=$?; set +e; _sk_daemon_cleanup; _sk_cleanup "$_d_rc"' EXIT

sk_send() {
    timeout 60 kcat -b "$KAFKA_BROKERS" -P -t "$1" -K $'\t' -X acks=all -l "$2"
}

sk_results() {
    sk_consume "$T_RESULTS" "$1" "${2:-60}" -f '%s\n'
}

# sk_padded_score FILE BYTES: a valid score event for game 3 (event_id big-1,
# user "big", delta 1) padded with JSON whitespace to exactly BYTES bytes.
sk_padded_score() {
    local start='{"event_id":"big-1","game_id":3,"username":"big","delta":1'
    {
        printf '%s' "$start"
        head -c $(($2 - ${#start} - 1)) /dev/zero | tr '\0' ' '
        printf '}'
    } >"$1"
}

# sk_game_scores DB GAME: "user=score,..." of a game, by username.
sk_game_scores() {
    sk_sql "$1" "SELECT GROUP_CONCAT(CONCAT(u.username, '=', gp.score) ORDER BY u.username)
                 FROM game_players gp JOIN users u ON u.id = gp.user_id WHERE gp.game_id = $2"
}

# sk_metrics_url: the daemon's metrics base URL, from its log (port 0 picks one).
sk_metrics_url() {
    { grep -o 'metrics on http://[0-9.:]*' "$D_LOG" 2>/dev/null || true; } | head -n 1 | sed 's/^metrics on //'
}

sk_score() {
    sk_sql "$1" "SELECT gp.score FROM game_players gp JOIN users u ON u.id = gp.user_id
                 WHERE gp.game_id = $2 AND u.username = '$3'"
}

sk_wait_log() {
    local i
    for i in $(seq 1 100); do
        grep -qF "$1" "$D_LOG" && return 0
        sleep 0.1
    done
    return 1
}

# sk_send_batch GAME "event_id delta|set value username" ...: the events, in
# one send to $T_SCORES, then wait for their results.  Sets got ("event_id
# status score|code" lines) and SK_SENT (events sent so far by this test),
# so call it directly, not in a subshell.
SK_SENT=0
sk_send_batch() {
    local game=$1 f e id op v u
    shift
    f=$SK_TEST_TMP/send.$SK_SENT.txt
    : >"$f"
    for e in "$@"; do
        read -r id op v u <<<"$e"
        printf '%s\t{"event_id":"%s","game_id":%s,"username":"%s","%s":%s}\n' "$game" "$id" "$game" \
            "$u" "$op" "$v" >>"$f"
    done
    sk_send "$T_SCORES" "$f"
    SK_SENT=$((SK_SENT + $#))
    got=$(sk_results "$SK_SENT" 60 | tail -n "$#" | jq -r '"\(.event_id) \(.status) \(.score // .error.code)"')
}

# sk_locker DB SQL: an administrator's session that stays open in the
# background (coproc LOCKER) runs SQL (say, one that takes a lock); its
# first output line (10 s at most) goes to SK_LOCKED.  Not in a subshell:
# the session would end with it.
sk_locker() {
    coproc LOCKER { mariadb "${SK_DB_ADMIN[@]}" --unbuffered -N -B "$1" 2>&1; }
    echo "$2" >&"${LOCKER[1]}"
    SK_LOCKED=
    read -r -t 10 SK_LOCKED <&"${LOCKER[0]}" || true
}

# sk_locker_end SQL: run SQL in the session of sk_locker, then end it.
sk_locker_end() {
    echo "$1" >&"${LOCKER[1]}"
    exec {LOCKER[1]}>&-
    wait "$LOCKER_PID" || true
}

# sk_notify_listen: a listener on $SK_TEST_TMP/notify.sock (give it to the
# daemon as NOTIFY_SOCKET) writing each message to $SK_TEST_TMP/notify.txt;
# sets sock, notes and listener (its pid: kill it in the test's EXIT trap).
# Fails when the socket does not appear within 5 s.
sk_notify_listen() {
    sock=$SK_TEST_TMP/notify.sock
    notes=$SK_TEST_TMP/notify.txt
    "$SK_TOOLS/notify-listen" "$sock" >"$notes" &
    listener=$!
    local i
    for i in $(seq 50); do
        [[ -S $sock ]] && return 0
        sleep 0.1
    done
    return 1
}
