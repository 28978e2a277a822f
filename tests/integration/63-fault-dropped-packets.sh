#!/usr/bin/env bash
# Fault: dropped packets (issue 19, item 9).  The daemon runs in a network
# namespace of its own (tests/lib/netns.sh) and reaches MariaDB and the
# broker over a veth pair; an nftables rule in that namespace drops their
# packets, so the connections stay open but nothing answers (no reset).
#
#  A. The database connections are idle when a firewall forgets them (their
#     packets dropped, new connections pass).  TCP keepalive
#     (db.keepalive_ms, default 10 s) closes both within the bound, naming
#     the reason; new ones open, and the events sent next never meet a dead
#     connection (no "no answer within db.query_timeout_ms").
#  B. The database goes silent while a transaction is in flight (its first
#     round trip waits on a row lock held from outside until the rule is in
#     place).  It is given up after db.query_timeout_ms, naming the reason;
#     connects fail by their timeout; the daemon is not ready while no
#     connection works.  The rule goes, the lock is taken again, the
#     transaction runs again (reading first: its commit was in doubt) and
#     waits on the lock; the path goes silent once more and the lock is let
#     go, so the server finishes that round trip and waits, inside the
#     transaction and holding the game's row, for a client that gave up.
#     When the path comes back, the firewall has forgotten the connections
#     opened before (their packets stay dropped, as a stateful firewall drops
#     packets of connections it does not know; new ones pass): no reset or
#     retransmission ever tells that server session its client is gone.  The
#     game's events must still apply, once.
#  C. The broker goes silent for 25 s under a stream: librdkafka's request
#     timeouts (kafka.socket.timeout.ms, 5 s here) are logged through the
#     daemon, the group session times out and the partitions are lost (logged,
#     scorekeeper_partitions_assigned 0); after the rule goes everything
#     resumes: every event gets its result, applies once, the tables equal
#     the ledger.
#  D. The daemon's Kafka defaults bound a silent broker (socket.timeout.ms
#     30000, socket.connection.setup.timeout.ms 10000, keepalive on), as
#     librdkafka reports its configuration.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"
source "$(dirname "$0")/../lib/faults.sh"
source "$(dirname "$0")/../lib/netns.sh"
[[ $SK_STACK_OURS == 1 ]] || { tap_skip "dropped packets" "needs the private stack (its broker advertises 127.0.0.1)"; tap_done; exit 0; }

qt=8000 # db.query_timeout_ms
ka=10000 # db.keepalive_ms, the default
kport=${KAFKA_BROKERS##*:}
sk_netns_up
sk_netns_forward "$SK_DB_PORT"
sk_netns_forward "$kport"
sk_netns_loopback "$kport"
# Every daemon of this test runs inside the namespace.
in_ns=$SK_TEST_TMP/in-netns
printf '#!/bin/sh\nexec ip netns exec %s %q "$@"\n' "$SK_NS" "$SK_DAEMON" >"$in_ns"
chmod +x "$in_ns"
SK_DAEMON=$in_ns
"${SK_NS_EXEC[@]}" timeout 20 kcat -b "$KAFKA_BROKERS" -L >/dev/null 2>&1 ||
    sk_bail "the broker cannot be reached from $SK_NS"

# url: the running daemon's metrics, reached inside the namespace.
url() { grep -o 'metrics on http://[0-9.:]*' "${FD_LOG[$1]}" | head -n 1 | sed 's/^metrics on //'; }
healthz() { "${SK_NS_EXEC[@]}" curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$(url "$1")/healthz" || true; }
metric() {
    "${SK_NS_EXEC[@]}" curl -fsS --max-time 5 "$(url "$1")/metrics" 2>/dev/null |
        awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2; f = 1 } END { if (f) print s }'
}
# wait_for SECONDS WHAT CMD...: until CMD succeeds; sets waited to how long it took.
waited=0
wait_for() {
    local tmo=$1 what=$2 t0=$SECONDS
    shift 2
    while ((SECONDS - t0 < tmo)); do
        if "$@"; then
            waited=$((SECONDS - t0))
            return 0
        fi
        sleep 0.2
    done
    waited=$((SECONDS - t0))
    tap_diag "timed out after $tmo s waiting for $what"
    return 1
}
# since I N: instance I's log after its first N lines.
since() { tail -n "+$(($2 + 1))" "${FD_LOG[$1]}"; }
lines() { wc -l <"${FD_LOG[$1]}"; }
logged_since() { since "$1" "$2" | grep -qE "$3"; }
count_since() { since "$1" "$2" | grep -cE "$3" || true; }
results_at_least() { (($(fault_results_so_far) >= $1)); }
# send GAME "event_id delta user"...: score events in one send; sent += n.
sent=0
send() {
    local game=$1 f=$SK_TEST_TMP/send.$sent e id d u
    shift
    : >"$f"
    for e in "$@"; do
        read -r id d u <<<"$e"
        printf '%s\t{"event_id":"%s","game_id":%s,"username":"%s","delta":%s}\n' \
            "$game" "$id" "$game" "$u" "$d" >>"$f"
    done
    sk_send "$T_SCORES" "$f" || sk_bail "producing to $T_SCORES"
    sent=$((sent + $#))
}
# outcome EVENT_ID: its results' statuses, in order, space-separated.
outcome() {
    sk_consume "$T_RESULTS" "$(fault_results_so_far)" 20 -f '%s\n' 2>/dev/null |
        jq -r --arg id "$1" 'select(.event_id == $id) | .status' | paste -sd' ' -
}
db_score() { sk_score "$D_DB" "$1" "$2"; }

# ---------------------------------------------------------------- A and B
sk_daemon_setup fnetdrop 1
db_url="mariadb://${SK_DB_USER}@${SK_NS_HOST}:${SK_DB_PORT}/${D_DB}"
# No idle ping within the test (600 s): only keepalive may find the idle
# connections.  kafka.debug=conf makes librdkafka print its configuration (D).
fd_start 1 -o "db.url=$db_url" -o db.pool_size=2 -o "db.query_timeout_ms=$qt" \
    -o db.connect_timeout_ms=2000 -o db.idle_ping_ms=600000 -o log.level=debug -o kafka.debug=conf
fd_wait_ready 1 90 || sk_bail "the daemon did not start in $SK_NS"

send 1 "w1 5 alice" "w2 7 bob"
send 2 "w3 11 carol"
wait_for 60 "the first results" results_at_least "$sent" || sk_bail "the first events were not applied"
two_conns() { [[ $(sk_netns_conns "$SK_DB_PORT" | wc -l) -eq 2 ]]; }
wait_for 30 "two database connections" two_conns || sk_bail "the pool did not open two connections"
mapfile -t ports < <(sk_netns_conns "$SK_DB_PORT")

tap_diag "A: the firewall forgets the idle connections (ports ${ports[*]}); new ones pass"
n0=$(lines 1)
sk_netns_silence_conns "${ports[@]}" || sk_bail "cannot drop the connections' packets"
closed_both() { (($(count_since 1 "$n0" 'db#[01]: closing: no answer to TCP keepalive') >= 2)); }
if wait_for $((ka / 1000 + 10)) "both idle connections closed" closed_both; then
    tap_ok "A: both idle connections closed within db.keepalive_ms + 10 s (${waited} s), naming the reason"
else
    tap_fail "A: both idle connections closed within db.keepalive_ms + 10 s" \
        "$(since 1 "$n0" | grep -E 'db#|closing' | head -n 5)"
fi
reconnected() { (($(count_since 1 "$n0" 'db#[01]: connected') >= 2)); }
wait_for 30 "two new connections" reconnected || true
send 1 "a1 1 alice" "a2 2 bob"
send 2 "a3 3 carol"
if wait_for 60 "the results of A" results_at_least "$sent"; then
    tap_ok "A: events sent afterwards apply (${waited} s)"
else
    tap_fail "A: events sent afterwards apply" "$(fault_results_so_far) of $sent results"
fi
tap_is "A: no transaction was handed a dead connection" \
    "$(count_since 1 "$n0" 'no answer within db.query_timeout_ms')" 0
tap_is "A: the scores" "$(db_score 1 alice) $(db_score 1 bob) $(db_score 2 carol)" "6 9 14"
sk_netns_speak_conns

tap_diag "B: the database goes silent while a transaction waits on a lock"
sk_locker "$D_DB" "SET SESSION innodb_lock_wait_timeout = 100; START TRANSACTION; SELECT id FROM games WHERE id = 1 FOR UPDATE;"
[[ $SK_LOCKED == 1 ]] || sk_bail "could not lock game 1: $SK_LOCKED"
lock_waits() {
    (($(sk_sql "" "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'") > 0))
}
send 1 "b1 100 alice"
wait_for 30 "the transaction to wait on the lock" lock_waits || sk_bail "no transaction waits on game 1"
n0=$(lines 1)
sk_netns_silence "$SK_DB_PORT"
sk_locker_end "ROLLBACK;"
# The server commits b1 now; its answer is dropped.
if wait_for $((qt / 1000 + 10)) "the transaction given up" logged_since 1 "$n0" \
    'db#[01]: closing: .*no answer within db.query_timeout_ms'; then
    tap_ok "B: the silent statement given up within db.query_timeout_ms + 10 s (${waited} s), naming the reason"
else
    tap_fail "B: the silent statement given up within db.query_timeout_ms + 10 s" "$(since 1 "$n0" | grep -E 'db#' | head -n 5)"
fi
not_ready() { [[ $(healthz 1) == 503 && $(metric 1 scorekeeper_db_connections_up) == 0 ]]; }
if wait_for $(((qt + ka) / 1000 + 10)) "not ready" not_ready; then
    tap_ok "B: not ready while no connection works (/healthz 503, no connection up)"
else
    tap_fail "B: not ready while no connection works" "healthz $(healthz 1), up $(metric 1 scorekeeper_db_connections_up)"
fi
if wait_for 30 "a failed connect" logged_since 1 "$n0" "connect failed: .*\\(110\\)"; then
    tap_ok "B: connects to the silent server end by their timeout (ETIMEDOUT)"
else
    tap_fail "B: connects to the silent server end by their timeout" "$(since 1 "$n0" | grep -E 'connect' | head -n 3)"
fi

# Lock the game again, then let the daemon back in: b1 runs again, reading
# first, and waits on the lock.
sk_locker "$D_DB" "SET SESSION innodb_lock_wait_timeout = 100; START TRANSACTION; SELECT id FROM games WHERE id = 1 FOR UPDATE;"
[[ $SK_LOCKED == 1 ]] || sk_bail "could not lock game 1 again: $SK_LOCKED"
sk_netns_speak "$SK_DB_PORT"
wait_for 60 "b1 to run again and wait on the lock" lock_waits || sk_bail "b1 did not run again"
mapfile -t ports < <(sk_netns_conns "$SK_DB_PORT")
n1=$(lines 1)
sk_netns_silence "$SK_DB_PORT"
sk_locker_end "ROLLBACK;"
# The server answers that round trip into the void and waits inside the
# transaction, holding game 1.
wait_for $((qt / 1000 + 10)) "the second silent statement given up" logged_since 1 "$n1" \
    'db#[01]: closing: .*no answer within db.query_timeout_ms' || true
wait_for 30 "no connection up" not_ready || true
sk_netns_silence_conns "${ports[@]}" || sk_bail "cannot drop the old connections' packets"
sk_netns_speak "$SK_DB_PORT"
t_back=$SECONDS
send 1 "b2 1000 alice"
if wait_for 90 "b2's result" results_at_least "$sent"; then
    tap_ok "B: game 1 applies again after the outage ($((SECONDS - t_back)) s after the path came back)"
else
    tap_fail "B: game 1 applies again after the outage" \
        "$(fault_results_so_far) of $sent results; sessions: $(sk_sql "" "SELECT CONCAT(id, ' ', command, ' ', time, ' ', IFNULL(state, '')) FROM information_schema.PROCESSLIST WHERE user = '$SK_DB_USER'" | paste -sd';' -)"
fi
tap_is "B: b1 has one result, duplicate (applied by the commit whose answer was lost)" "$(outcome b1)" "duplicate"
tap_is "B: b2 applied" "$(outcome b2)" "applied"
tap_is "B: alice's score counts b1 and b2 once" "$(db_score 1 alice)" "1106"
back_ready() { [[ $(healthz 1) == 200 ]]; }
tap_check "B: ready again" wait_for 30 "ready again" back_ready

# D: librdkafka's configuration as the daemon set it (kafka.debug=conf).
for kv in socket.timeout.ms=30000 socket.connection.setup.timeout.ms=10000 socket.keepalive.enable=true; do
    tap_check "D: Kafka default $kv" grep -qE "CONF.* ${kv%%=*} = ${kv#*=}\$" "${FD_LOG[1]}"
done
fd_kill 1 TERM
tap_is "A/B: exit 0 after SIGTERM" "${FD_RC[1]}" 0

# ------------------------------------------------------------------------ C
sk_daemon_setup fnetdropk 2
fd_start 2 -o "db.url=mariadb://${SK_DB_USER}@${SK_NS_HOST}:${SK_DB_PORT}/${D_DB}" \
    -o kafka.socket.timeout.ms=5000 -o batch.linger_ms=10
fd_wait_ready 2 90 || sk_bail "the second daemon did not start in $SK_NS"
assigned() { [[ $(metric 2 scorekeeper_partitions_assigned) == "$1" ]]; }
wait_for 60 "four partitions assigned" assigned 4 || sk_bail "the group did not settle"
seed=$((RANDOM + 1))
tap_diag "C: seed $seed, 3000 events at 100/s; the broker silent for 25 s"
fault_bg fault_loadgen -n 3000 -g 20 -u 100 --invalid 20 --rate 100 --seed "$seed" --prefix k
gen=${FAULT_BG[-1]}
wait_for 30 "the stream flowing" results_at_least 200 || sk_bail "no results before the outage"
n0=$(lines 2)
sk_netns_silence "$kport"
t0=$SECONDS
if wait_for 20 "a request timeout" logged_since 2 "$n0" 'librdkafka REQTMOUT|request\(s\) timed out'; then
    tap_ok "C: the silent broker's requests time out (kafka.socket.timeout.ms 5000, seen after ${waited} s)"
else
    tap_fail "C: the silent broker's requests time out" "$(since 2 "$n0" | grep -i kafka | head -n 5)"
fi
tap_check "C: the group session times out, the partitions are lost" wait_for 20 "lost partitions" assigned 0
tap_check "C: the lost partitions are logged" logged_since 2 "$n0" "info: lost $T_SCORES \\[[0-9]+\\]"
sleep $((25 - (SECONDS - t0) > 0 ? 25 - (SECONDS - t0) : 0)) # the outage's length, not a wait for a condition
sk_netns_speak "$kport"
tap_diag "C: the broker answers again after $((SECONDS - t0)) s"
t1=$SECONDS
if wait_for 90 "the partitions back" assigned 4; then
    tap_ok "C: the partitions are assigned again ($((SECONDS - t1)) s after the path came back)"
else
    tap_fail "C: the partitions are assigned again" "assigned: $(metric 2 scorekeeper_partitions_assigned)"
fi
wait "$gen" || sk_bail "loadgen failed"
FAULT_BG=()
fault_report k 180
tap_check "C: the daemon is still running" fd_alive 2
fd_kill 2 TERM
tap_is "C: exit 0 after SIGTERM" "${FD_RC[2]}" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
