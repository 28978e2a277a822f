#!/usr/bin/env bash
# Fault a: the daemon is killed with SIGKILL at random points of one stream
# (at least 5 times; SOAK=1: 15 times, bigger stream) and restarted each time.
# Events consumed again after a kill must say "duplicate" (or repeat an
# idempotent outcome); nothing may be lost or applied twice: the tables equal
# the totals computed from the ledger of what was produced.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"
source "$(dirname "$0")/../lib/faults.sh"

events=$(fault_pick 20000 200000)
rate=$(fault_pick 1000 4000)
kills=$(fault_pick 5 15)
seed=$((RANDOM + 1))
tap_diag "seed $seed, $events events at $rate/s, at least $kills SIGKILLs"

sk_daemon_setup fkill 4
opts=(-o batch.linger_ms=10 -o batch.max_events=200)
fd_start 1 "${opts[@]}"
fd_wait_ready 1 || sk_bail "daemon did not start"
fault_bg fault_loadgen -n "$events" -g 40 -u 400 --invalid 40 --rate "$rate" --seed "$seed" --prefix a
gen=${FAULT_BG[-1]}

n=0 not_ready=0
while ((n < kills)) || kill -0 "$gen" 2>/dev/null; do
    # A random point: sometimes before READY (during the group join), mostly
    # while batches are in flight.
    if ((RANDOM % 4 == 0)); then
        sleep "0.$((RANDOM % 9 + 1))"
    else
        fd_wait_ready 1 90 || sk_bail "restarted daemon did not become ready"
        sleep "$((RANDOM % 3)).$((RANDOM % 10))"
    fi
    grep -q 'ready:' "${FD_LOG[1]}" || not_ready=$((not_ready + 1))
    fd_alive 1 || { tap_diag "$(tail -n 20 "${FD_LOG[1]}")"; sk_bail "daemon died by itself"; }
    fd_kill 1 KILL
    n=$((n + 1))
    fd_start 1 "${opts[@]}"
    ((n < kills * 3)) || break
done
wait "$gen" || sk_bail "loadgen failed"
FAULT_BG=()
tap_diag "SIGKILLed the daemon $n times during the stream ($not_ready before READY), restarted each time"
tap_check "at least $kills kills" test "$n" -ge "$kills"
fd_wait_ready 1 90 || sk_bail "last daemon did not become ready"

fault_report a 240

fd_kill 1 TERM
tap_is "last daemon: exit 0 after SIGTERM" "${FD_RC[1]}" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
