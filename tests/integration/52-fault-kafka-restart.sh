#!/usr/bin/env bash
# Fault c: the Kafka broker is restarted (SIGTERM, waited for, started again
# with the same data directory and ports) in the middle of a stream (SOAK=1:
# three restarts in a bigger stream).  The producer of the stream retries
# through the outage; the daemon reconnects, its idempotent producer and its
# offset commits carry on; nothing is lost or applied twice.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"
source "$(dirname "$0")/../lib/faults.sh"
[[ $SK_STACK_OURS == 1 ]] || { tap_skip "Kafka restart" "needs the private stack (restarts its broker)"; tap_done; exit 0; }

events=$(fault_pick 20000 200000)
rate=$(fault_pick 1000 4000)
restarts=$(fault_pick 1 3)
seed=$((RANDOM + 1))
tap_diag "seed $seed, $events events at $rate/s, $restarts broker restart(s)"

sk_daemon_setup fkafka 4
fd_start 1 -o batch.linger_ms=10
fd_wait_ready 1 || sk_bail "daemon did not start"
# The stream's producer must survive the broker's absence: no message timeout.
fault_bg fault_loadgen -n "$events" -g 40 -u 400 --invalid 40 --rate "$rate" --seed "$seed" --prefix c \
    -X message.timeout.ms=0
gen=${FAULT_BG[-1]}

for ((r = 1; r <= restarts; r++)); do
    sleep 4
    before=$(fault_results_so_far)
    t0=$SECONDS
    fault_stack_stop kafka || sk_bail "could not stop the broker"
    t1=$SECONDS
    sleep 2
    fault_stack_start kafka || sk_bail "could not restart the broker"
    tap_diag "restart $r: broker stopped after $before results (stop $((t1 - t0)) s, down $((SECONDS - t1)) s in all)"
    fd_alive 1 || { tap_diag "$(tail -n 20 "${FD_LOG[1]}")"; sk_bail "daemon died during the broker restart"; }
    tap_ok "restart $r: the daemon is still running after the broker came back"
done
wait "$gen" || sk_bail "loadgen failed (could not deliver the stream through the restart)"
FAULT_BG=()

fault_report c 240
tap_check "the daemon survived the whole stream" fd_alive 1
fd_kill 1 TERM
tap_is "exit 0 after SIGTERM" "${FD_RC[1]}" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
