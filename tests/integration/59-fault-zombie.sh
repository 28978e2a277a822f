#!/usr/bin/env bash
# Fault: a zombie instance.  Two instances A and B share a group over four
# users and four scores partitions.  A's database traffic goes through a
# proxy; the proxy is stopped, so the transactions A starts for the second
# round of events stay in flight, unseen by the server; then A itself is
# stopped (SIGSTOP) past kafka.session.timeout.ms.  B is assigned every
# partition, applies the second round again (A never committed its offsets)
# and a third, newer one for the same users and games.  Then the proxy goes
# on (the server runs A's stale statements: a users transaction is one round
# trip, so it commits without A) and A is woken (SIGCONT).  Every nickname
# must be the newest, every score the events' sum applied once, and A's
# stale events must be reported duplicate, never applied a second time.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"
source "$(dirname "$0")/../lib/faults.sh"

command -v socat >/dev/null || { tap_skip "socat is not installed"; tap_done; exit 0; }

sk_daemon_setup fzombie 4
users=16 games=6

# The proxy between A and MariaDB, in a process group of its own (its
# children carry the connections), stopped and continued as a whole.
proxy_pid='' pport=''
for _ in 1 2 3 4 5 6 7 8; do
    pport=$((20000 + RANDOM % 30000))
    setsid socat "TCP-LISTEN:$pport,bind=127.0.0.1,reuseaddr,fork" "TCP:$SK_DB_HOST:$SK_DB_PORT" \
        2>"$SK_TEST_TMP/proxy.log" &
    proxy_pid=$!
    for _ in $(seq 1 30); do
        ss -ltnH "sport = :$pport" 2>/dev/null | grep -q . && break
        kill -0 "$proxy_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$proxy_pid" 2>/dev/null && break
    proxy_pid=''
done
[[ -n $proxy_pid ]] || sk_bail "could not start the proxy: $(cat "$SK_TEST_TMP/proxy.log")"
[[ $(ps -o pgid= -p "$proxy_pid" | tr -d ' ') == "$proxy_pid" ]] || sk_bail "the proxy leads no process group"
proxy() { kill "-$1" -- "-$proxy_pid"; }
_proxy_cleanup() {
    kill -CONT -- "-$proxy_pid" 2>/dev/null
    kill -TERM -- "-$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
}
trap '_d_rc=$?; set +e; _fault_cleanup; _proxy_cleanup; _sk_daemon_cleanup; _sk_cleanup "$_d_rc"' EXIT

opts=(-o batch.linger_ms=5 -o db.pool_size=2 -o log.level=debug)
fd_start 1 "${opts[@]}" -o "db.url=mariadb://${SK_DB_USER}@127.0.0.1:${pport}/${D_DB}" \
    -o db.query_timeout_ms=600000 -o db.idle_ping_ms=3600000
fd_start 2 "${opts[@]}"
for i in 1 2; do fd_wait_ready "$i" 90 || sk_bail "instance $i did not start"; done

# metric I NAME: the sum of instance I's samples of NAME ('' when unreachable).
metric() {
    local url
    url=$(grep -o 'metrics on http://[0-9.:]*' "${FD_LOG[$1]}" | head -n 1 | sed 's/^metrics on //')
    [[ -n $url ]] || return 0
    curl -fsS --max-time 5 "$url/metrics" 2>/dev/null |
        awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2; f = 1 } END { if (f) print s }'
}
# wait_for SECONDS WHAT CMD...: until CMD succeeds.
wait_for() {
    local tmo=$1 what=$2 n
    shift 2
    for ((n = 0; n < tmo * 5; n++)); do
        "$@" && return 0
        sleep 0.2
    done
    tap_diag "timed out after $tmo s waiting for $what"
    return 1
}
assigned_is() { [[ $(metric "$1" scorekeeper_partitions_assigned) == "$2" ]]; }
results_at_least() { (($(fault_results_so_far) >= $1)); }

wait_for 60 "both instances assigned four partitions" eval 'assigned_is 1 4 && assigned_is 2 4' ||
    sk_bail "the group did not settle: A has $(metric 1 scorekeeper_partitions_assigned), B $(metric 2 scorekeeper_partitions_assigned)"

# round R: for every user a new nickname, for every game and user a delta of R.
sent=0
round() {
    local r=$1 u g f=$SK_TEST_TMP/round$1
    : >"$f.users"
    : >"$f.scores"
    for ((u = 0; u < users; u++)); do
        printf 'zu%02d\t{"event_id":"u-%d-%d","username":"zu%02d","nickname":"zu%02d v%d"}\n' \
            "$u" "$r" "$u" "$u" "$u" "$r" >>"$f.users"
        for ((g = 1; g <= games; g++)); do
            printf '%d\t{"event_id":"s-%d-%d-%d","game_id":%d,"username":"zu%02d","delta":%d}\n' \
                "$g" "$r" "$g" "$u" "$g" "$u" "$r" >>"$f.scores"
        done
    done
    sk_send "$T_USERS" "$f.users" || sk_bail "producing round $r"
    sk_send "$T_SCORES" "$f.scores" || sk_bail "producing round $r"
    sent=$((sent + users * (games + 1)))
}
per_round=$((users * (games + 1)))

round 1
wait_for 60 "round 1's results" results_at_least "$sent" || sk_bail "round 1 was not applied"

# A's transactions of round 2 go out but stay in the stopped proxy.
proxy STOP
batches() { grep -c 'users: batch of' "${FD_LOG[1]}" || true; }
before=$(batches)
round 2
consumed() { (($(metric 1 scorekeeper_events_consumed_total) + $(metric 2 scorekeeper_events_consumed_total) >= sent)); }
wait_for 60 "round 2 consumed" consumed || sk_bail "round 2 was not consumed"
wait_for 30 "A's users transaction of round 2" eval '(($(batches) > before))' ||
    sk_bail "A started no users transaction for round 2"
sleep 1 # A's score transactions go out with it
held=$(metric 1 scorekeeper_events_in_flight)
tap_diag "A holds $held events in flight; stopping it past the session timeout"
tap_check "A holds events of round 2 in flight" test "${held:-0}" -gt 0
kill -STOP "${FD_PID[1]}"

# B takes every partition over, applies round 2 again, then round 3.
wait_for 60 "B assigned all eight partitions" assigned_is 2 8 ||
    sk_bail "B was not assigned every partition: $(metric 2 scorekeeper_partitions_assigned)"
tap_ok "B was assigned every partition while A was stopped"
round 3
wait_for 90 "B's results of rounds 2 and 3" results_at_least "$sent" || sk_bail "B did not apply rounds 2 and 3"
nick_v3() {
    sk_sql "$D_DB" "SELECT COUNT(*) FROM users WHERE username LIKE 'zu%' AND nickname = CONCAT(username, ' v3')"
}
tap_is "before A wakes: every nickname is the newest" "$(nick_v3)" "$users"

# The server now runs A's stale statements; then A wakes up.
# Its users transaction, one round trip, commits there and then; a score
# transaction's first round trip waits for A.
proxy CONT
sleep 2
kill -CONT "${FD_PID[1]}"
# A finishes what it held: transactions already in flight get their results
# (a score batch whose game's mark moved, retried after A learnt that its
# partitions were lost, goes back to Kafka instead).
wait_for 60 "A to finish what it held" eval '[[ $(metric 1 scorekeeper_events_in_flight) == 0 ]]' ||
    tap_fail "A finished what it held" "$(metric 1 scorekeeper_events_in_flight) events still in flight"

tap_is "after A wakes: every nickname is the newest" "$(nick_v3)" "$users"
tap_diag "nicknames: $(sk_sql "$D_DB" "SELECT GROUP_CONCAT(nickname ORDER BY username SEPARATOR ', ') FROM users WHERE username LIKE 'zu%'")"
want=$((1 + 2 + 3))
tap_is "every score is the events' sum, applied once ($users users x $games games = $want)" \
    "$(sk_sql "$D_DB" "SELECT COUNT(*), MIN(score), MAX(score) FROM game_players")" \
    "$((users * games))	$want	$want"

# A's stale events of round 2: reported duplicate, never applied a second time.
sk_consume "$T_RESULTS" "$(fault_results_so_far)" 60 -f '%s\n' >"$SK_TEST_TMP/results.json" || true
jq -r 'select(.event_id != null) | "\(.event_id) \(.status)"' "$SK_TEST_TMP/results.json" |
    sort | uniq -c >"$SK_TEST_TMP/outcomes"
tap_is "every event applied exactly once" \
    "$(awk '$3 == "applied" && $1 != 1' "$SK_TEST_TMP/outcomes" | head -n 5)" ""
tap_is "every event has an applied result" \
    "$(awk '$3 == "applied" { n++ } END { print n + 0 }' "$SK_TEST_TMP/outcomes")" "$((3 * per_round))"
dup_users=$(awk '$2 ~ /^u-2-/ && $3 == "duplicate" { n += $1 } END { print n + 0 }' "$SK_TEST_TMP/outcomes")
dup_scores=$(awk '$2 ~ /^s-2-/ && $3 == "duplicate" { n += $1 } END { print n + 0 }' "$SK_TEST_TMP/outcomes")
tap_diag "A's stale round-2 events reported duplicate: $dup_users user events, $dup_scores score events"
tap_check "A's stale user events were refused (duplicate)" test "$dup_users" -gt 0
tap_check "A counted them as duplicates" \
    test "$(metric 1 scorekeeper_events_duplicate_total)" -ge "$dup_users"

for i in 1 2; do
    fd_kill "$i" TERM
    tap_is "instance $i: exit 0 after SIGTERM" "${FD_RC[$i]}" 0
done
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
