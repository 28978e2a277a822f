#!/usr/bin/env bash
# Fault e: outside transactions hold locks on the rows of a few hot games
# while the stream runs.  Two loops, each one long client session, lock the
# games row (SELECT ... FOR UPDATE) and that game's game_players rows (an
# UPDATE that changes nothing) in varying order and hold them for random
# short times; now and then one holds a game longer than
# innodb_lock_wait_timeout (10 s on the private stack).  This provokes real
# deadlocks (1213) and lock-wait timeouts (1205) in the daemon's batches,
# which must be retried: nothing lost, nothing applied twice.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"
source "$(dirname "$0")/../lib/faults.sh"

events=$(fault_pick 15000 200000)
rate=$(fault_pick 800 4000)
seed=$((RANDOM + 1))
tap_diag "seed $seed, $events events at $rate/s"

sk_daemon_setup flocks 4
fd_start 1 -o batch.linger_ms=10 -o batch.max_events=100
fd_wait_ready 1 || sk_bail "daemon did not start"
fault_bg fault_loadgen -n "$events" -g 12 -u 200 --invalid 30 --rate "$rate" --seed "$seed" --prefix e --skew 1
gen=${FAULT_BG[-1]}

# Wait for the hot games to exist, then pick the four with the most players.
for _ in $(seq 1 100); do
    n=$(sk_sql "$D_DB" "SELECT COUNT(DISTINCT game_id) FROM game_players")
    ((n >= 4)) && break
    sleep 0.2
done
mapfile -t hot < <(sk_sql "$D_DB" "SELECT game_id FROM game_players GROUP BY game_id ORDER BY COUNT(*) DESC LIMIT 4")
((${#hot[@]} >= 2)) || sk_bail "no hot games found"
tap_diag "locking games ${hot[*]}"

# locker SEED: outside transactions, one client process each, until told to
# stop.  The net-zero UPDATE pair (+1 then -1 on the same rows, committed
# together) leaves the totals alone but gives the outside transaction undo
# weight, so InnoDB picks the daemon's batch as the deadlock victim too.
locker() {
    local g h a b up down k hold dir
    RANDOM=$1
    until [[ -e $SK_TEST_TMP/stop-lockers ]]; do
        g=${hot[RANDOM % ${#hot[@]}]}
        h=${hot[RANDOM % ${#hot[@]}]}
        if ((RANDOM % 25 == 0)); then
            hold=11                                    # past innodb_lock_wait_timeout
        else
            hold=0.$((RANDOM % 6))$((RANDOM % 10))     # 0.00 .. 0.59 s
        fi
        k=$((RANDOM % 200 + 1))
        dir=ASC
        ((RANDOM % 2)) || dir=DESC
        a="SELECT id FROM games WHERE id IN ($g, $h) ORDER BY id $dir FOR UPDATE;"
        up="UPDATE game_players SET score = score + 1 WHERE game_id = $g AND user_id <= $k;"
        down="UPDATE game_players SET score = score - 1 WHERE game_id = $g AND user_id <= $k;"
        if ((RANDOM % 2)); then b="$a $up DO SLEEP(0.05); $down"; else b="$up DO SLEEP(0.05); $a $down"; fi
        # A failed statement rolls the whole transaction back (no COMMIT runs).
        timeout 30 mariadb "${SK_DB_ADMIN[@]}" -N -B "$D_DB" \
            <<<"START TRANSACTION; $b DO SLEEP($hold); COMMIT;" >/dev/null 2>>"$SK_TEST_TMP/locker.$2.err" || true
        echo >>"$SK_TEST_TMP/locker.n"
    done
}
for l in 1 2; do fault_bg locker $((seed + l)) "$l"; done

wait "$gen" || sk_bail "loadgen failed"
sleep 3
touch "$SK_TEST_TMP/stop-lockers"
for p in "${FAULT_BG[@]}"; do wait "$p" 2>/dev/null || true; done
FAULT_BG=()
deadlocks=$(grep -c 'Deadlock found' "${FD_LOG[1]}" || true)
timeouts=$(grep -c 'Lock wait timeout' "${FD_LOG[1]}" || true)
outside=$(cat "$SK_TEST_TMP"/locker.*.err 2>/dev/null | grep -cE 'Deadlock|Lock wait' || true)
tap_diag "$(wc -l <"$SK_TEST_TMP/locker.n") outside transactions"
tap_diag "daemon batches retried after a deadlock: $deadlocks, after a lock-wait timeout: $timeouts; outside transactions that lost: $outside"
tap_check "real deadlocks or lock-wait timeouts were provoked in the daemon ($deadlocks + $timeouts)" \
    test $((deadlocks + timeouts)) -gt 0

fault_report e 240
tap_check "the daemon survived" fd_alive 1
fd_kill 1 TERM
tap_is "exit 0 after SIGTERM" "${FD_RC[1]}" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
