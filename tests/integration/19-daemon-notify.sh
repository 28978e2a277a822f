#!/usr/bin/env bash
# The systemd protocol, with this test as systemd's end of NOTIFY_SOCKET:
# READY=1 once Kafka and MariaDB answer, STATUS= with counters, WATCHDOG=1
# at half of WATCHDOG_USEC, RELOADING=1/READY=1 around SIGHUP (a good reload
# applies, a bad one keeps the old settings and says so), the watchdog
# withheld while a batch is wedged and fed again after, STOPPING=1 and a
# clean exit 0 on SIGTERM.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

sk_daemon_setup notify 1
listener=
trap '_d_rc=$?; set +e; kill $listener 2>/dev/null; _sk_daemon_cleanup; _sk_cleanup "$_d_rc"' EXIT
sk_notify_listen || sk_bail "no sd_notify listener"

conf=$SK_TEST_TMP/sk.conf
printf 'batch.linger_ms = 10\npipeline.stall_timeout_ms = 2000\n' >"$conf"
export NOTIFY_SOCKET=$sock WATCHDOG_USEC=1000000
sk_daemon_start --config "$conf" -o db.query_timeout_ms=60000 -o db.pool_size=2 || sk_bail "daemon did not start"
unset NOTIFY_SOCKET WATCHDOG_USEC
sleep 0.3
tap_check "READY=1 sent" grep -q ' READY=1$' "$notes"

f=$SK_TEST_TMP/ev.txt
for i in $(seq 1 20); do printf '%d\t{"event_id":"n%d","game_id":%d,"username":"p","delta":1}\n' $((i % 2 + 1)) "$i" $((i % 2 + 1)); done >"$f"
sk_send "$T_SCORES" "$f"
sk_results 20 30 >/dev/null || tap_diag "results missing"
sleep 5.5 # a STATUS= every 5 s
tap_check "STATUS= carries live counters" grep -qE ' STATUS=running: consumed 20, applied 20' "$notes"
w0=$(grep -c ' WATCHDOG=1$' "$notes")
sleep 3
w1=$(grep -c ' WATCHDOG=1$' "$notes")
tap_check "WATCHDOG=1 every half WATCHDOG_USEC (got $((w1 - w0)) in 3 s, want 5-7)" test $((w1 - w0)) -ge 5 -a $((w1 - w0)) -le 7

# A good reload: log level and linger may change at run time.
printf 'batch.linger_ms = 5\nlog.level = debug\npipeline.stall_timeout_ms = 2000\n' >"$conf"
kill -HUP "$D_PID"
sleep 1
tap_check "RELOADING=1 then READY=1 on SIGHUP" bash -c "grep -A3 ' RELOADING=1$' '$notes' | grep -q ' READY=1$'"
tap_check "the good reload applied 2 changes" grep -q 'reloaded settings: 2 changed' "$D_LOG"
# A bad reload: the drain deadline needs a restart; everything stays as it was.
printf 'batch.linger_ms = 50\nshutdown.timeout_ms = 5000\n' >"$conf"
kill -HUP "$D_PID"
sleep 1
tap_check "a reload changing a restart-only key is refused and says so" \
    grep -q 'reload refused, keeping the current settings: .*shutdown.timeout_ms' "$D_LOG"
tap_check "the daemon still runs after a bad reload" kill -0 "$D_PID"
printf 'batch.linger_ms = 5\npipeline.stall_timeout_ms = 2000\n' >"$conf"
kill -HUP "$D_PID"

# Wedge: an outside transaction holds game 1 far longer than the stall limit.
coproc LOCKER { mariadb "${SK_DB_ADMIN[@]}" --unbuffered -N -B "$D_DB" 2>&1; }
echo "SET SESSION innodb_lock_wait_timeout = 100; START TRANSACTION; SELECT id FROM games WHERE id = 1 FOR UPDATE;" >&"${LOCKER[1]}"
read -r -t 10 _ <&"${LOCKER[0]}" || true
printf '1\t{"event_id":"x","game_id":1,"username":"p","delta":1}\n' >"$f"
sk_send "$T_SCORES" "$f"
sleep 4
tap_check "the log names the wedged transaction" grep -q "pipeline wedged: the transaction of game 1 has held db#" "$D_LOG"
w2=$(grep -c ' WATCHDOG=1$' "$notes")
sleep 2
w3=$(grep -c ' WATCHDOG=1$' "$notes")
tap_is "watchdog withheld while wedged" "$((w3 - w2))" 0
echo "COMMIT;" >&"${LOCKER[1]}"
exec {LOCKER[1]}>&-
wait "$LOCKER_PID" || true
sleep 2
w4=$(grep -c ' WATCHDOG=1$' "$notes")
tap_check "watchdog fed again once the batch completes" test $((w4 - w3)) -ge 2
tap_check "the log says the pipeline moves again" grep -q 'pipeline moving again' "$D_LOG"

t0=$(date +%s%N)
sk_daemon_stop
t1=$(date +%s%N)
tap_is "SIGTERM: exit 0" "$D_RC" 0
tap_check "STOPPING=1 sent" grep -q ' STOPPING=1$' "$notes"
tap_check "stopped within TimeoutStopSec=45s ($(((t1 - t0) / 1000000)) ms)" test $(((t1 - t0) / 1000000)) -lt 45000
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
