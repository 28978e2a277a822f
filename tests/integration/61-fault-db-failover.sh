#!/usr/bin/env bash
# (issue 19, item 5) Database failover.  A private server, reached through a
# host name (sk-db-failover.test) that only the daemon's /etc/hosts knows:
# the daemon runs in a private mount namespace where the test's hosts file
# is bind-mounted over /etc/hosts (nsswitch.conf: files first).
#  C. The name does not resolve at start: the daemon stays up, not ready
#     (/healthz 503, STATUS= says why), looks the name up again with
#     backoff and says so once; once the hosts entry appears it connects,
#     becomes ready and applies what waited.
#  A. The server turns read-only (read_only=1; the runtime account has
#     neither SUPER nor READ ONLY ADMIN, so it is refused): one log line says
#     it is not the primary, naming read-only; /healthz 503 and STATUS= say
#     so while the reconnects are refused; nothing is applied meanwhile.
#     read_only=0: ready again, every event applied exactly once.
#  B. The name moves to 127.0.0.3 and the server with it (restarted, bound
#     there only): the daemon looks the name up again, reconnects to the
#     new address and applies.
# Before the fix: C exits 69 at once; A retries 1290 forever with /healthz
# 200; B reconnects to 127.0.0.2 for ever and applies nothing.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"
source "$(dirname "$0")/../lib/privdb.sh"

NAME=sk-db-failover.test
hosts=$SK_TEST_TMP/hosts
printf '127.0.0.1 localhost\n# sk-probe\n' >"$hosts"
ns=()
for c in "unshare --mount --propagation private" \
    "unshare --user --map-root-user --mount --propagation private"; do
    read -r -a try <<<"$c"
    if "${try[@]}" sh -c 'mount --bind "$0" /etc/hosts && grep -q sk-probe /etc/hosts' "$hosts" 2>/dev/null; then
        ns=("${try[@]}")
        break
    fi
done
if ((${#ns[@]} == 0)); then
    tap_skip "database failover" "cannot bind-mount a private /etc/hosts (unshare --mount refused)"
    tap_done
    exit 0
fi
grep -Eq '^hosts:[[:space:]]+files' /etc/nsswitch.conf || sk_bail "nsswitch.conf does not read /etc/hosts first"

sk_privdb_start --bind-address=127.0.0.2
sk_daemon_setup failover 2

# The commands give up on a name that does not resolve: exit 69, saying why.
cmd() {
    rc=0
    out=$("$SK_DAEMON" -o "db.url=mariadb://${SK_DB_USER}@${NAME}:${SK_DB_PORT}/${D_DB}" \
        -o "db.password_file=$SCOREKEEPER_DB_PASSWORD_FILE" -o "kafka.bootstrap.servers=$KAFKA_BROKERS" \
        -o db.connect_timeout_ms=1000 "$@" 2>&1) || rc=$?
}
cmd migrate
tap_is "migrate, a host name that does not resolve: exit 69" "$rc" 69
tap_check "migrate says the name does not resolve" grep -Eq "cannot resolve (the )?database host \"?$NAME" <<<"$out"
cmd --check-config
tap_is "--check-config, a host name that does not resolve: exit 69" "$rc" 69
tap_check "--check-config says the database failed, and why" \
    bash -c 'grep -q "^database: FAILED" <<<"$1" && grep -Eq "cannot resolve (the )?database host" <<<"$1"' _ "$out"
tap_diag "daemon in a private mount namespace: ${ns[*]}"

# The daemon, with the test's hosts file as its /etc/hosts (the same pid:
# unshare and sh exec).
real=$SK_DAEMON
wrapper=$SK_TEST_TMP/ns-daemon
printf '#!/bin/sh\nexec %s sh -c '\''mount --bind "$0" /etc/hosts && exec "$@"'\'' %q %q "$@"\n' \
    "${ns[*]}" "$hosts" "$real" >"$wrapper"
chmod +x "$wrapper"
SK_DAEMON=$wrapper

listener=
trap '_d_rc=$?; set +e; kill $listener 2>/dev/null; _sk_daemon_cleanup; _sk_privdb_stop; : >"$SK_TEST_TMP/.dbs"; _sk_cleanup "$_d_rc"' EXIT
sk_notify_listen || sk_bail "no sd_notify listener"

n_start=0
start_daemon() { # like sk_daemon_start, without waiting for READY
    n_start=$((n_start + 1))
    D_LOG=$SK_TEST_TMP/daemon.$n_start.log
    local args
    mapfile -t args < <(sk_daemon_args)
    NOTIFY_SOCKET=$sock "$SK_DAEMON" "${args[@]}" \
        -o "db.url=mariadb://${SK_DB_USER}@${NAME}:${SK_DB_PORT}/${D_DB}" -o db.pool_size=2 \
        -o db.retry_min_ms=100 -o db.retry_max_ms=1000 -o batch.linger_ms=20 -o log.level=debug \
        >"$D_LOG" 2>&1 &
    D_PID=$!
}
# wait_for SECONDS CMD...: until CMD succeeds, at most SECONDS of wall time
# (a command here may take a while: counting tries would overshoot).
wait_for() {
    local end=$((SECONDS + $1))
    shift
    while ((SECONDS < end)); do
        "$@" 2>/dev/null && return 0
        sleep 0.1
    done
    "$@" 2>/dev/null
}
alive() { kill -0 "$D_PID" 2>/dev/null; }
healthz() { curl -s -m 5 -o /dev/null -w '%{http_code}' "$(sk_metrics_url)/healthz"; }
healthz_is() { [[ $(healthz) == "$1" ]]; }
log_has() { grep -qE "$1" "$D_LOG"; }
log_count() { grep -cE "$1" "$D_LOG" || true; }
lines_at_least() { (($(log_count "$1") >= $2)); }
status_has() { grep -E ' STATUS=' "$notes" | tail -n 1 | grep -qE "$1"; }
reconnects() { curl -s -m 5 "$(sk_metrics_url)/metrics" | awk '$1 == "scorekeeper_db_reconnects_total" {print $2}'; }
reconnects_at_least() { local n; n=$(reconnects); [[ -n $n ]] && ((n >= $1)); }
# results of the events so far (whatever arrived, no waiting for a count)
results_now() { timeout 30 kcat -b "$KAFKA_BROKERS" -C -t "$T_RESULTS" -o beginning -e -q -f '%s\n'; }

# EVENTS FILE PREFIX COUNT: score events in 4 games by 3 users; appends the
# expected "game user delta" lines to $expected.
expected=$SK_TEST_TMP/expected.txt
: >"$expected"
sent=0
events() {
    local f=$1 i g u d
    : >"$f"
    for ((i = 0; i < $3; i++)); do
        g=$((i % 4 + 1)) u=u$((i % 3)) d=$((i % 7 + 1))
        printf '%d\t{"event_id":"%s%d","game_id":%d,"username":"%s","delta":%d}\n' \
            "$g" "$2" "$i" "$g" "$u" "$d" >>"$f"
        printf '%d %s %d\n' "$g" "$u" "$d" >>"$expected"
    done
    sk_send "$T_SCORES" "$f"
    sent=$((sent + $3))
}
want_totals() { awk '{t[$1" "$2] += $3} END {for (k in t) print k, t[k]}' "$expected" | sort; }
got_totals() {
    sk_sql "$D_DB" "SELECT gp.game_id, u.username, gp.score FROM game_players gp
                    JOIN users u ON u.id = gp.user_id" | tr '\t' ' ' | sort
}
# PART: every event sent so far has one result, applied, and the tables
# hold exactly the events' totals.
all_applied_once() {
    local r=$SK_TEST_TMP/results.$1
    if sk_results "$sent" 60 >"$r"; then
        tap_ok "$1: all $sent events have a result"
    else
        tap_fail "$1: all $sent events have a result" \
            "$(wc -l <"$r") results; $(grep -v ' debug: ' "$D_LOG" | tail -n 12)"
    fi
    tap_is "$1: each applied, exactly once" \
        "$(jq -r '"\(.event_id) \(.status)"' "$r" | sort | uniq -c | awk '$1 != 1 || $3 != "applied"' | head -n 5)" ""
    tap_is "$1: game_players holds exactly the events' totals" "$(got_totals)" "$(want_totals)"
}

# ---- C: the name does not resolve at start
start_daemon
if wait_for 15 log_has "cannot resolve the database host $NAME"; then
    tap_ok "C: the daemon says the database host does not resolve"
else
    tap_fail "C: the daemon says the database host does not resolve" "$(tail -n 5 "$D_LOG")"
fi
if wait_for 20 lines_at_least "looking $NAME up again in" 3 && alive; then
    tap_ok "C: it stays up and looks the name up again with backoff"
else
    tap_fail "C: it stays up and looks the name up again with backoff" \
        "$(alive && echo running || echo "exited: $(wait "$D_PID"; echo $?)"); $(tail -n 5 "$D_LOG")"
fi
tap_is "C: said once, not per lookup" "$(log_count "cannot resolve.*$NAME")" 1
tap_check "C: not ready: /healthz 503" healthz_is 503
tap_check "C: not ready: no READY=1" bash -c "! grep -q ' READY=1$' '$notes' && ! grep -q 'ready:' '$D_LOG'"
tap_check "C: STATUS= says the host name does not resolve" \
    wait_for 12 status_has 'waiting for the database: its host name does not resolve'
events "$SK_TEST_TMP/c.txt" c 24
printf '127.0.0.1 localhost\n127.0.0.2 %s\n' "$NAME" >"$hosts" # in place: the bind mount keeps the inode
if ! alive; then
    tap_diag "the daemon had exited; starting it again for parts A and B"
    start_daemon
fi
if wait_for 60 log_has 'ready:'; then
    tap_ok "C: ready once the name resolves"
else
    tap_fail "C: ready once the name resolves" "$(grep -v ' debug: ' "$D_LOG" | tail -n 8)"
fi
tap_check "C: the log says where the name points now" log_has "$NAME resolves to 127.0.0.2"
tap_check "C: connected to the name's address" log_has "connected .*to $NAME \(127\.0\.0\.2\)"
tap_check "C: /healthz 200" wait_for 10 healthz_is 200
all_applied_once C

# ---- A: the server turns read-only, then writable again
grants=$(sk_sql "" "SHOW GRANTS FOR '$SK_DB_USER'@'127.0.0.1'")
tap_check "A: the runtime account has neither SUPER nor READ ONLY ADMIN" \
    bash -c "! grep -Eqi 'SUPER|READ ONLY ADMIN|ALL PRIVILEGES' <<<\"\$1\"" _ "$grants"
sk_sql "" "SET GLOBAL read_only = 1"
base=$(reconnects)
events "$SK_TEST_TMP/a.txt" a 30
if wait_for 25 healthz_is 503; then
    tap_ok "A: not ready while the server is read-only: /healthz 503"
else
    tap_fail "A: not ready while the server is read-only: /healthz 503" \
        "$(grep -v ' debug: ' "$D_LOG" | tail -n 6)"
fi
tap_check "A: the log says it is not the primary, naming read-only" \
    wait_for 10 log_has "is not the primary: .*read-only"
tap_check "A: the reconnects meanwhile are refused (3 or more)" \
    wait_for 20 reconnects_at_least $((${base:-0} + 3))
tap_is "A: said once, not per connection or retry" "$(log_count 'is not the primary')" 1
tap_check "A: STATUS= says the server is read-only" \
    wait_for 12 status_has 'waiting for the database: the server is read-only, not the primary'
tap_is "A: nothing applied while read-only" \
    "$(results_now | jq -r 'select(.event_id | startswith("a")) | .status' | sort | uniq -c | awk '{$1=$1};1')" ""
tap_check "A: still not ready" healthz_is 503
sk_sql "" "SET GLOBAL read_only = 0"
tap_check "A: ready again once the server is writable: /healthz 200" wait_for 30 healthz_is 200
tap_check "A: the log says it accepts writes again" wait_for 10 log_has 'accepts writes again'
all_applied_once A
tap_check "A: STATUS= says consuming again" wait_for 12 status_has 'consuming$'

# ---- B: the name moves to 127.0.0.3, and the server with it
printf '127.0.0.1 localhost\n127.0.0.3 %s\n' "$NAME" >"$hosts"
sk_privdb_restart --bind-address=127.0.0.3
tap_check "B: the server left 127.0.0.2" bash -c "! (exec 3<>/dev/tcp/127.0.0.2/$SK_DB_PORT) 2>/dev/null"
tap_check "B: the server answers at 127.0.0.3" bash -c "(exec 3<>/dev/tcp/127.0.0.3/$SK_DB_PORT)"
events "$SK_TEST_TMP/b.txt" b 30
all_applied_once B
tap_check "B: the log says the name moved" log_has "$NAME now resolves to 127.0.0.3 \(was 127.0.0.2\)"
tap_check "B: connected to the new address" log_has "connected .*to $NAME \(127\.0\.0\.3\)"
tap_check "B: /healthz 200" wait_for 10 healthz_is 200

sk_daemon_stop
tap_is "exit 0 after SIGTERM" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
