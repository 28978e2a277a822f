#!/usr/bin/env bash
# Kafka over SASL_SSL (issue 20, item 2): the stack's broker has a second
# listener, SCRAM-SHA-512 over TLS with certificates made by stack-up.sh
# (KAFKA_SASL_* in build/stack.env).
#   A. The daemon reaches Kafka only through that listener, its password
#      passed as the systemd credential kafka.sasl.password: events in,
#      rows and results out, a clean stop; the password is in no log line
#      and not in its argv; --check-config says ok and masks it.
#   B. A wrong password (kafka.sasl.password_file): the daemon exits by
#      itself with 77 (EX_NOPERM) and one error line naming the mechanism,
#      the user and the broker, never a password.
#   C. A CA that did not sign the broker's certificate: a TLS error naming
#      the broker and ssl.ca.location, never READY; SIGTERM stops it.
#   D. -o kafka.sasl.password=... is refused with 78.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

if [[ -z ${KAFKA_SASL_BROKERS:-} ]]; then
    tap_skip "SASL_SSL end to end" "no SASL_SSL listener (external services without KAFKA_SASL_BROKERS)"
    tap_done
    exit
fi

sk_daemon_setup sasl 2
# Passwords are only ever compared through their files (grep -f), so that
# none is in an argument a failed check would print.
pwf=$KAFKA_SASL_PASSWORD_FILE
plain_port=${KAFKA_BROKERS##*:}
sasl_port=${KAFKA_SASL_BROKERS##*:}
sasl=(-o "kafka.bootstrap.servers=$KAFKA_SASL_BROKERS" -o kafka.security.protocol=SASL_SSL
    -o "kafka.sasl.mechanisms=$KAFKA_SASL_MECHANISM" -o "kafka.sasl.username=$KAFKA_SASL_USER"
    -o "kafka.ssl.ca.location=$KAFKA_SASL_CA")
# Test clients speak SASL_SSL too, their password in a properties file.
kc() { timeout 60 kcat -F "$KAFKA_SASL_CLIENT_CONF" -b "$KAFKA_SASL_BROKERS" -q "$@" 2>/dev/null; }

# wait_exit PID SECONDS: sets rc to the process's exit status, or to
# "running" if it still runs after SECONDS.  Not in a subshell: only this
# shell can wait for its child.
wait_exit() {
    local i
    rc=running
    for ((i = 0; i < $2 * 10; i++)); do
        if ! kill -0 "$1" 2>/dev/null; then
            rc=0
            wait "$1" || rc=$?
            return
        fi
        sleep 0.1
    done
}

# ---- A: end to end through SASL_SSL, the password a credential ----------
creds=$SK_TEST_TMP/creds
mkdir -m 0700 "$creds"
install -m 0400 "$KAFKA_SASL_PASSWORD_FILE" "$creds/kafka.sasl.password"
export CREDENTIALS_DIRECTORY=$creds

mapfile -t base < <(sk_daemon_args)
out=$("$SK_DAEMON" --check-config "${base[@]}" "${sasl[@]}" 2>&1) && rc=0 || rc=$?
tap_is "--check-config through SASL_SSL: exit 0" "$rc" 0
tap_check "--check-config: Kafka answers at the SASL_SSL listener, password masked" bash -c '
    grep -q "^kafka:    ok (1 brokers answer at $2)" <<<"$1" &&
    grep -q "^  kafka.sasl.password = \*\*\*\*\*\*\*\*$" <<<"$1" && ! grep -qFf "$3" <<<"$1"' _ \
    "$out" "$KAFKA_SASL_BROKERS" "$pwf"

sk_daemon_start "${sasl[@]}" -o batch.linger_ms=20 || sk_bail "daemon did not start over SASL_SSL"
tap_ok "daemon reaches READY over SASL_SSL"
unset CREDENTIALS_DIRECTORY

tap_check "the password is not in the daemon's argv" bash -c '! tr "\0" "\n" <"/proc/$1/cmdline" | grep -qFf "$2"' _ \
    "$D_PID" "$pwf"
# Every broker connection of the daemon goes to the SASL_SSL port.
conns=$(ss -Htnp state established 2>/dev/null | grep "pid=$D_PID," | awk '{print $4}' | sed 's/.*://' | sort | uniq -c)
tap_check "the daemon's Kafka connections all go to the SASL_SSL listener" bash -c '
    grep -q " $2\$" <<<"$1" && ! grep -q " $3\$" <<<"$1"' _ "$conns" "$sasl_port" "$plain_port"

users=$SK_TEST_TMP/users.txt
scores=$SK_TEST_TMP/scores.txt
printf 'ann\t{"event_id":"u-1","username":"ann","nickname":"Ann"}\n' >"$users"
: >"$scores"
for i in $(seq 1 20); do
    printf '%d\t{"event_id":"s-%d","game_id":%d,"username":"ann","delta":%d}\n' \
        $((i % 2 + 1)) "$i" $((i % 2 + 1)) "$i" >>"$scores"
done
printf '1\t{"event_id":"s-bad","game_id":1,"username":"ann","delta":"x"}\n' >>"$scores"
kc -P -t "$T_USERS" -K $'\t' -X acks=all -l "$users"
kc -P -t "$T_SCORES" -K $'\t' -X acks=all -l "$scores"

res=$SK_TEST_TMP/results.jsonl
kc -C -t "$T_RESULTS" -o beginning -c 22 -f '%s\n' >"$res" || true
tap_is "22 results for 22 events, read over SASL_SSL" "$(wc -l <"$res")" 22
tap_is "statuses" "$(jq -r .status "$res" | sort | uniq -c | awk '{$1=$1};1')" "21 applied
1 rejected"
tap_is "totals in the database" "$(sk_game_scores "$D_DB" 1);$(sk_game_scores "$D_DB" 2)" \
    "ann=110;ann=100"
tap_is "the last result of each game carries its total" \
    "$(jq -r 'select(.event_id=="s-19" or .event_id=="s-20") | "\(.event_id) \(.score)"' "$res" | sort)" \
    "s-19 100
s-20 110"

sk_daemon_stop
tap_is "SIGTERM: clean exit 0" "$D_RC" 0
tap_check "the password appears in no log line" bash -c '! grep -qFf "$2" "$1"' _ "$D_LOG" "$pwf"

# ---- B: a wrong password -------------------------------------------------
wrong=$SK_TEST_TMP/wrong.password
( umask 077; printf 'Wr0ng-%s\n' "$(sk_unique pw)" >"$wrong" )
log_b=$SK_TEST_TMP/daemon.wrong-password.log
"$SK_DAEMON" "${base[@]}" "${sasl[@]}" -o "kafka.sasl.password_file=$wrong" >"$log_b" 2>&1 &
pid_b=$!
wait_exit "$pid_b" 60
if [[ $rc == running ]]; then
    kill -TERM "$pid_b" 2>/dev/null || true
    wait "$pid_b" 2>/dev/null || true
fi
tap_is "wrong password: the daemon exits by itself with 77 (EX_NOPERM)" "$rc" 77
line=$(grep -F 'Kafka authentication failed' "$log_b" | grep -F 'exiting' || true)
tap_check "wrong password: one error line naming the mechanism, user and broker" bash -c '
    [[ $(grep -c . <<<"$1") == 1 ]] &&
    grep -qF "Kafka authentication failed (SASL mechanism SCRAM-SHA-512, user $2): sasl_ssl://$3/" <<<"$1" &&
    grep -qF "kafka.sasl.password_file or the credential kafka.sasl.password" <<<"$1"' _ \
    "$line" "$KAFKA_SASL_USER" "$KAFKA_SASL_BROKERS"
tap_check "wrong password: never READY" bash -c '! grep -q "ready:" "$1"' _ "$log_b"
tap_check "wrong password: neither password appears in the log" bash -c '
    ! grep -qFf "$2" "$1" && ! grep -qFf "$3" "$1"' _ "$log_b" "$wrong" "$pwf"
[[ $rc == 77 ]] || tap_diag "$(tail -n 15 "$log_b")"
out=$("$SK_DAEMON" --check-config "${base[@]}" "${sasl[@]}" -o "kafka.sasl.password_file=$wrong" 2>&1) && rc=0 || rc=$?
tap_is "wrong password: --check-config exits 77 too" "$rc" 77
tap_check "wrong password: --check-config says the brokers refused the credentials" \
    grep -qF "kafka:    FAILED: authentication refused (SASL mechanism SCRAM-SHA-512, user $KAFKA_SASL_USER)" <<<"$out"
tap_check "wrong password: not in --check-config's output" bash -c '! grep -qFf "$2" <<<"$1"' _ "$out" "$wrong"

# ---- C: a CA that did not sign the broker's certificate -----------------
other=$SK_TEST_TMP/other-ca
mkdir "$other"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=not the broker's CA" -keyout "$other/ca.key" -out "$other/ca.pem" 2>/dev/null
install -m 0400 "$KAFKA_SASL_PASSWORD_FILE" "$SK_TEST_TMP/good.password"
log_c=$SK_TEST_TMP/daemon.wrong-ca.log
"$SK_DAEMON" "${base[@]}" "${sasl[@]}" -o "kafka.ssl.ca.location=$other/ca.pem" \
    -o "kafka.sasl.password_file=$SK_TEST_TMP/good.password" -o shutdown.timeout_ms=5000 >"$log_c" 2>&1 &
pid_c=$!
for ((i = 0; i < 600; i++)); do
    grep -q 'certificate verify failed.*ssl.ca.location' "$log_c" && break
    kill -0 "$pid_c" 2>/dev/null || break
    sleep 0.1
done
tap_check "wrong CA: a TLS error naming the broker and ssl.ca.location" bash -c '
    grep "certificate verify failed" "$1" | grep -F "sasl_ssl://$2/" | grep -q "ssl.ca.location"' _ \
    "$log_c" "$KAFKA_SASL_BROKERS"
tap_check "wrong CA: the warning says what happens next" \
    grep -q 'Kafka: _SSL: .*certificate verify failed.*; librdkafka tries again by itself' "$log_c"
tap_check "wrong CA: not READY, still running" bash -c '! grep -q "ready:" "$1" && kill -0 "$2"' _ \
    "$log_c" "$pid_c"
kill -TERM "$pid_c" 2>/dev/null || true
wait_exit "$pid_c" 60
[[ $rc != running ]] || { kill -KILL "$pid_c" 2>/dev/null; wait "$pid_c" 2>/dev/null || true; }
tap_is "wrong CA: SIGTERM stops it, exit 0" "$rc" 0
tap_check "wrong CA: the password appears in no log line" bash -c '! grep -qFf "$2" "$1"' _ "$log_c" "$pwf"

# ---- D: a password on the command line -----------------------------------
out=$("$SK_DAEMON" "${base[@]}" "${sasl[@]}" -o "kafka.sasl.password=$(<"$wrong")" 2>&1) && rc=0 || rc=$?
tap_is "-o kafka.sasl.password=...: exit 78" "$rc" 78
tap_check "-o kafka.sasl.password: refused without echoing it" bash -c '! grep -qFf "$2" <<<"$1" &&
    grep -q "\"kafka.sasl.password\" (from -o): refused" <<<"$1"' _ "$out" "$wrong"

tap_check "no sanitizer reports" bash -c '! grep -lE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$@"' _ \
    "$SK_TEST_TMP"/daemon.*.log
tap_done
