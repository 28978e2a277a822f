#!/usr/bin/env bash
# Fault d: three instances in one consumer group over six partitions; during
# the stream instances are started, stopped with SIGTERM and killed with
# SIGKILL (SOAK=1: more membership changes over a bigger stream).  Every
# rebalance hands partitions over; per-game exactly-once effect must hold.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"
source "$(dirname "$0")/../lib/faults.sh"

events=$(fault_pick 25000 200000)
rate=$(fault_pick 1000 4000)
changes=$(fault_pick 6 24)
seed=$((RANDOM + 1))
tap_diag "seed $seed, $events events at $rate/s, $changes membership changes"

sk_daemon_setup fgroup 6
opts=(-o batch.linger_ms=10 -o db.pool_size=2)
for i in 1 2 3; do fd_start "$i" "${opts[@]}"; done
for i in 1 2 3; do fd_wait_ready "$i" 90 || sk_bail "instance $i did not start"; done
fault_bg fault_loadgen -n "$events" -g 60 -u 500 --invalid 50 --rate "$rate" --seed "$seed" --prefix d
gen=${FAULT_BG[-1]}

terms=0 kills=0 starts=0 bad_term=0 c=0
while ((c < changes)) || kill -0 "$gen" 2>/dev/null; do
    sleep "$((RANDOM % 3 + 1)).$((RANDOM % 10))"
    i=$((RANDOM % 3 + 1))
    if ! fd_alive "$i"; then
        fd_start "$i" "${opts[@]}"
        starts=$((starts + 1))
    elif ((c % 2 == 0)); then
        fd_kill "$i" KILL
        kills=$((kills + 1))
    else
        fd_kill "$i" TERM
        terms=$((terms + 1))
        [[ ${FD_RC[$i]} == 0 ]] || { bad_term=$((bad_term + 1)); tap_diag "instance $i: exit ${FD_RC[$i]} after SIGTERM: $(tail -n 5 "${FD_LOG[$i]}")"; }
    fi
    c=$((c + 1))
    ((c < changes * 4)) || break
done
wait "$gen" || sk_bail "loadgen failed"
FAULT_BG=()
# Bring the group back to three members for the end of the stream.
for i in 1 2 3; do fd_alive "$i" || { fd_start "$i" "${opts[@]}"; starts=$((starts + 1)); }; done
for i in 1 2 3; do fd_wait_ready "$i" 90 || sk_bail "instance $i did not become ready"; done
tap_diag "$c membership changes: $kills SIGKILL, $terms SIGTERM, $starts starts"
tap_check "at least one SIGKILL and one SIGTERM" test "$kills" -ge 1 -a "$terms" -ge 1
tap_is "every SIGTERM mid-stream: exit 0" "$bad_term" 0

fault_report d 240

for i in 1 2 3; do
    fd_kill "$i" TERM
    tap_is "instance $i: exit 0 after SIGTERM" "${FD_RC[$i]}" 0
done
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
