# shellcheck shell=bash
# A private MariaDB server for one test, configured in a way the stack's
# server must not be (a server-wide init_connect, a tiny max_allowed_packet):
# started on a free port with its datadir under $SK_TEST_TMP, stopped at
# exit.  Source after testlib.sh and daemon.sh, then call, before
# sk_daemon_setup:
#
#   sk_privdb_start [mariadbd option...]
#
# It creates the runtime account with the stack's password and points the
# helpers at the new server (SK_DB_PORT, SK_DB_ADMIN, SCOREKEEPER_DB_ADMIN),
# so sk_daemon_setup, sk_sql and the daemon all use it from then on.  With
# external services (no mariadbd here) the test is skipped.
#
#   sk_privdb_restart [mariadbd option...]
#
# stops it and starts it again on the same data and port, with these options
# instead of the first ones (say, another --bind-address).

SK_PRIVDB_PID=
SK_PRIVDB_DIR=
SK_PRIVDB_PORT=
SK_PRIVDB_OPTS=()

_sk_privdb_free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 12000))
        [[ -z $(ss -Hltn "sport = :$p") ]] && { echo "$p"; return 0; }
    done
    return 1
}

_sk_privdb_stop() {
    [[ -n $SK_PRIVDB_PID ]] || return 0
    kill -TERM "$SK_PRIVDB_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 200; i++)); do
        kill -0 "$SK_PRIVDB_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SK_PRIVDB_PID" 2>/dev/null || true
    wait "$SK_PRIVDB_PID" 2>/dev/null || true
    SK_PRIVDB_PID=
}

# Start mariadbd on $SK_PRIVDB_DIR's data, port and options; wait until it
# answers on its socket.
_sk_privdb_run() {
    local sock=$SK_PRIVDB_DIR/m.sock log=$SK_PRIVDB_DIR/mariadb.log user_opt=()
    [[ $(id -u) -ne 0 ]] || user_opt=(--user=root)
    mariadbd --no-defaults --datadir="$SK_PRIVDB_DIR/data" "${user_opt[@]}" \
        --socket="$sock" --port="$SK_PRIVDB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --pid-file="$SK_PRIVDB_DIR/m.pid" --log-error="$log" --innodb-buffer-pool-size=64M \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci "${SK_PRIVDB_OPTS[@]}" \
        </dev/null >>"$log" 2>&1 &
    SK_PRIVDB_PID=$!
    local i
    for ((i = 0; i < 300; i++)); do
        [[ $(mariadb --no-defaults -uroot -S "$sock" -N -B <<<'SELECT 1' 2>/dev/null) == 1 ]] && break
        kill -0 "$SK_PRIVDB_PID" 2>/dev/null || sk_bail "private mariadbd exited: $(tail -n 5 "$log")"
        sleep 0.1
    done
    ((i < 300)) || sk_bail "private mariadbd did not answer within 30 s"
}

sk_privdb_restart() {
    _sk_privdb_stop
    SK_PRIVDB_OPTS=("$@")
    _sk_privdb_run
}

sk_privdb_start() {
    if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null; then
        tap_skip "private MariaDB server" "mariadbd is not installed here"
        tap_done
        exit 0
    fi
    SK_PRIVDB_DIR=$SK_TEST_TMP/privdb
    mkdir -p "$SK_PRIVDB_DIR"
    local sock=$SK_PRIVDB_DIR/m.sock log=$SK_PRIVDB_DIR/mariadb.log port user_opt=()
    [[ $(id -u) -ne 0 ]] || user_opt=(--user=root)
    mariadb-install-db --no-defaults --datadir="$SK_PRIVDB_DIR/data" "${user_opt[@]}" \
        --auth-root-authentication-method=normal --skip-test-db >>"$log" 2>&1 ||
        sk_bail "mariadb-install-db failed: $(tail -n 5 "$log")"
    port=$(_sk_privdb_free_port) || sk_bail "no free port for the private MariaDB"
    SK_PRIVDB_PORT=$port
    SK_PRIVDB_OPTS=("$@")
    _sk_privdb_run
    SK_DB_PORT=$port
    SCOREKEEPER_DB_ADMIN="--no-defaults -uroot -S $sock"
    read -r -a SK_DB_ADMIN <<<"$SCOREKEEPER_DB_ADMIN"
    export SK_DB_PORT SCOREKEEPER_DB_ADMIN
    # the account only: its grants come with each database (sk_new_db)
    grep '^CREATE USER' "$SK_ROOT/sql/grants.sql" | sed "s/'scorekeeper'@/'$SK_DB_USER'@/g" |
        mariadb "${SK_DB_ADMIN[@]}" || sk_bail "cannot create the runtime account"
    local pw
    pw=$(<"$SCOREKEEPER_DB_PASSWORD_FILE")
    mariadb "${SK_DB_ADMIN[@]}" <<SQL || sk_bail "cannot set the runtime account's password"
ALTER USER '$SK_DB_USER'@'127.0.0.1' IDENTIFIED BY '$pw' ACCOUNT UNLOCK;
ALTER USER '$SK_DB_USER'@'localhost' IDENTIFIED BY '$pw' ACCOUNT UNLOCK;
SQL
    tap_diag "private MariaDB on 127.0.0.1:$port ($*)"
}

# Kill a daemon left running, stop the private server, then testlib's
# cleanup (its databases went with the server's datadir).
trap '_d_rc=$?; set +e; _sk_daemon_cleanup; _sk_privdb_stop; : >"$SK_TEST_TMP/.dbs"; _sk_cleanup "$_d_rc"' EXIT
