#!/usr/bin/env bash
# Fault b: MariaDB is stopped (SIGTERM to mariadbd, waited for) for 10 s in the
# middle of a stream and started again with the same datadir, port and socket
# (SOAK=1: three outages in a bigger stream).  The daemon stays up, keeps its
# loop turning, reconnects with backoff, and in the end nothing is lost or
# applied twice.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"
source "$(dirname "$0")/../lib/faults.sh"
[[ $SK_STACK_OURS == 1 ]] || { tap_skip "MariaDB outage" "needs the private stack (stops its mariadbd)"; tap_done; exit 0; }

events=$(fault_pick 20000 200000)
rate=$(fault_pick 1000 4000)
outages=$(fault_pick 1 3)
seed=$((RANDOM + 1))
tap_diag "seed $seed, $events events at $rate/s, $outages MariaDB outage(s) of 10 s"

sk_daemon_setup fdbdown 4
fd_start 1 -o batch.linger_ms=10 -o log.level=debug -o db.idle_ping_ms=1000
fd_wait_ready 1 || sk_bail "daemon did not start"
fault_bg fault_loadgen -n "$events" -g 40 -u 400 --invalid 40 --rate "$rate" --seed "$seed" --prefix b
gen=${FAULT_BG[-1]}

for ((o = 1; o <= outages; o++)); do
    sleep 4
    before=$(fault_results_so_far)
    t0=$SECONDS
    fault_stack_stop mariadb || sk_bail "could not stop MariaDB"
    tap_diag "outage $o: MariaDB stopped after $before results (took $((SECONDS - t0)) s)"
    lines0=$(wc -l <"${FD_LOG[1]}")
    sleep 10
    mid=$(fault_results_so_far)
    lines1=$(wc -l <"${FD_LOG[1]}")
    fd_alive 1 || { tap_diag "$(tail -n 20 "${FD_LOG[1]}")"; sk_bail "daemon died while MariaDB was down"; }
    tap_ok "outage $o: daemon still running with MariaDB down for 10 s"
    # A loop that keeps turning keeps retrying (and logging it at debug level).
    tap_check "outage $o: its loop kept turning (log grew by $((lines1 - lines0)) lines)" test "$lines1" -gt "$lines0"
    fault_stack_start mariadb || sk_bail "could not restart MariaDB"
    tap_diag "outage $o: MariaDB back; $((mid - before)) results published while it was down"
done
wait "$gen" || sk_bail "loadgen failed"
FAULT_BG=()
tap_check "the daemon saw the database go away" grep -qiE 'closing|lost|gone away|connect' "${FD_LOG[1]}"

fault_report b 240
tap_check "and reconnected after the outage" grep -q 'connected' "${FD_LOG[1]}"
tap_check "the daemon survived the whole stream" fd_alive 1
fd_kill 1 TERM
tap_is "exit 0 after SIGTERM" "${FD_RC[1]}" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
