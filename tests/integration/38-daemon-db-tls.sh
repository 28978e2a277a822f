#!/usr/bin/env bash
# TLS to MariaDB (issue 20, item 1).  A private server with certificates
# this test makes (openssl) and require_secure_transport=ON:
#  - without db.tls the server refuses the login, and the log says TLS may be why;
#  - with the right CA the daemon connects to "localhost" (the certificate's
#    only name: it carries no IP address, so the check is of the name, not of
#    the address the pool connects to), --check-config shows the TLS state,
#    events apply, and a statement waiting on a lock does not hold the loop;
#  - a wrong CA, a certificate for another host name, and db.url naming the
#    address instead of the name are refused before the login, saying why;
#  - an account that REQUIREs X509 logs in with db.tls_cert and an encrypted
#    db.tls_key (passphrase from a file or from the systemd credentials);
#  - no passphrase or password in any log.
# The name: "localhost" resolves without DNS; the private server listens on
# the address it resolves to first here (as the daemon's getaddrinfo does).
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"
source "$(dirname "$0")/../lib/privdb.sh"

command -v openssl >/dev/null || sk_bail "openssl is not installed (tests/tools/deps.sh)"
addr=$(getent ahosts localhost | awk 'NR == 1 { print $1 }')
[[ -n $addr ]] || sk_bail "localhost does not resolve"

# ---- certificates
c=$SK_TEST_TMP/certs
mkdir -p "$c"
pass=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$pass" >"$c/key.pass"
chmod 0600 "$c/key.pass"
ossl() { openssl "$@" >>"$c/openssl.log" 2>&1 || sk_bail "openssl $1 failed: $(tail -n 3 "$c/openssl.log")"; }
ca() { ossl req -x509 -newkey rsa:2048 -nodes -keyout "$c/$1.key" -out "$c/$1.pem" -days 2 -subj "/CN=$2"; }
signed() { # NAME CN SAN
    ossl req -newkey rsa:2048 -nodes -keyout "$c/$1.key" -out "$c/$1.csr" -subj "/CN=$2"
    printf '%s\n' "$3" >"$c/$1.ext"
    ossl x509 -req -in "$c/$1.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" -CAcreateserial \
        -out "$c/$1.pem" -days 2 -extfile "$c/$1.ext"
}
ca ca "scorekeeper test CA"
ca wrongca "another CA"
signed server localhost "subjectAltName=DNS:localhost"
signed other sk-other.test "subjectAltName=DNS:sk-other.test"
signed client scorekeeper-client "extendedKeyUsage=clientAuth"
ossl pkey -in "$c/client.key" -out "$c/client.enc.key" -aes256 -passout "file:$c/key.pass"
cp "$c/server.pem" "$c/live.pem"
cp "$c/server.key" "$c/live.key"

sk_privdb_start --ssl-ca="$c/ca.pem" --ssl-cert="$c/live.pem" --ssl-key="$c/live.key" \
    --require-secure-transport=ON --bind-address="$addr"
sk_daemon_setup tls 1
pw=$(<"$SCOREKEEPER_DB_PASSWORD_FILE")
if [[ $addr != 127.0.0.1 ]]; then # the account the daemon logs in from
    sk_sql "" "CREATE USER '$SK_DB_USER'@'$addr' IDENTIFIED BY '$pw';
               GRANT SELECT, INSERT, UPDATE ON \`$D_DB\`.* TO '$SK_DB_USER'@'$addr';"
fi
SK_DB_HOST=localhost # sk_daemon_args: db.url names the host, not the address
dburl="mariadb://${SK_DB_USER}@localhost:${SK_DB_PORT}/${D_DB}"
base=(-o "db.url=$dburl" -o "db.password_file=$SCOREKEEPER_DB_PASSWORD_FILE"
    -o "kafka.bootstrap.servers=$KAFKA_BROKERS" -o db.connect_timeout_ms=2000)
n_check=0
# check OUT_NAME [-o k=v...]: --check-config; its exit status in $rc, stdout+stderr in $out
check() {
    n_check=$((n_check + 1))
    out=$SK_TEST_TMP/check.$n_check.log
    rc=0
    env ${CRED:+CREDENTIALS_DIRECTORY=$CRED} "$SK_DAEMON" "${base[@]}" "$@" --check-config >"$out" 2>&1 || rc=$?
}

# ---- no TLS
check
tap_is "without db.tls: --check-config exits 69" "$rc" 69
tap_check "the server refused the login, and the log points at db.tls" \
    grep -q 'connect failed: Access denied.*require_secure_transport=ON.*see db.tls' "$out"

# ---- the right CA
check -o db.tls=verify-full -o "db.tls_ca=$c/ca.pem"
tap_is "right CA: --check-config exits 0" "$rc" 0
tap_check "--check-config shows the TLS state" \
    grep -qE "^database TLS: TLSv1\.[23] [A-Z0-9_-]+, certificate verified for localhost \(CA $c/ca.pem\)$" "$out"
check -o db.tls=on -o "db.tls_ca=$c/ca.pem" -o db.url="mariadb://${SK_DB_USER}@$addr:${SK_DB_PORT}/${D_DB}"
tap_is "db.url naming the address: refused (the certificate names localhost only)" "$rc" 69
tap_check "the log names the address it checked" \
    grep -q "connect failed: .*the server's certificate is not valid for the host name $addr (db.tls = verify-full)" "$out"

sk_daemon_start -o db.tls=on -o "db.tls_ca=$c/ca.pem" -o batch.linger_ms=10 -o db.pool_size=2 ||
    sk_bail "daemon did not start with db.tls = on"
tap_check "each connection says it is verified for localhost" \
    grep -q "db#0: connected (.*TLSv1\.[23] .*certificate verified for localhost" "$D_LOG"
f=$SK_TEST_TMP/scores.txt
for i in $(seq 1 20); do
    printf '%d\t{"event_id":"s%d","game_id":%d,"username":"u%d","delta":%d}\n' $((i % 2 + 1)) "$i" $((i % 2 + 1)) $((i % 3)) "$i"
done >"$f"
sk_send "$T_SCORES" "$f"
if sk_results 20 60 >"$SK_TEST_TMP/r1"; then
    tap_is "20 events over TLS: all applied" "$(jq -r .status "$SK_TEST_TMP/r1" | sort | uniq -c | awk '{print $2 "=" $1}')" applied=20
else
    tap_fail "20 events over TLS: all applied" "$(tail -n 20 "$D_LOG")"
fi
tap_is "game 1's total is right" "$(sk_sql "$D_DB" "SELECT SUM(score) FROM game_players WHERE game_id = 1")" \
    $((2 + 4 + 6 + 8 + 10 + 12 + 14 + 16 + 18 + 20))

# A statement over TLS that waits (a lock held from outside) must leave the
# loop free: /metrics answers at once meanwhile.
sk_locker "$D_DB" "SET SESSION innodb_lock_wait_timeout = 100; START TRANSACTION; SELECT id FROM games WHERE id = 1 FOR UPDATE;"
tap_is "an outside transaction holds game 1's lock" "$SK_LOCKED" 1
printf '1\t{"event_id":"late","game_id":1,"username":"u1","delta":100}\n' >"$f"
sk_send "$T_SCORES" "$f"
waiting=
for _ in $(seq 1 100); do
    waiting=$(sk_sql "" "SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'")
    [[ $waiting -ge 1 ]] && break
    sleep 0.1
done
tap_check "the daemon's transaction waits for the lock" test "${waiting:-0}" -ge 1
url=$(sk_metrics_url)
slow=0
for _ in 1 2 3; do
    t=$(curl -s -o /dev/null -w '%{time_total}' --max-time 5 "$url/metrics" || echo 9)
    awk -v t="$t" 'BEGIN { exit !(t < 1.0) }' || slow=$((slow + 1))
    sleep 0.3
done
tap_is "/metrics answers within 1 s while the statement waits (3 probes)" "$slow" 0
sk_locker_end "COMMIT;"
if sk_results 21 60 | tail -n 1 >"$SK_TEST_TMP/r2" && [[ -s $SK_TEST_TMP/r2 ]]; then
    tap_is "the waiting event applies once the lock is gone" "$(jq -r '"\(.event_id) \(.status)"' "$SK_TEST_TMP/r2")" "late applied"
else
    tap_fail "the waiting event applies once the lock is gone" "$(tail -n 20 "$D_LOG")"
fi
sk_daemon_stop
tap_is "exit 0 after SIGTERM" "$D_RC" 0

# ---- refused: a wrong CA, a certificate for another name
check -o db.tls=verify-full -o "db.tls_ca=$c/wrongca.pem"
tap_is "wrong CA: --check-config exits 69" "$rc" 69
tap_check "the log says the certificate does not verify against that CA" \
    grep -q "connect failed: .*certificate.*checked against CA $c/wrongca.pem" "$out"
check -o db.tls=verify-ca -o "db.tls_ca=$c/wrongca.pem"
tap_is "wrong CA with verify-ca: refused too" "$rc" 69

cp "$c/other.pem" "$c/live.pem"
cp "$c/other.key" "$c/live.key"
sk_sql "" "FLUSH SSL" || sk_bail "FLUSH SSL failed"
check -o db.tls=verify-full -o "db.tls_ca=$c/ca.pem"
tap_is "certificate for sk-other.test: --check-config exits 69" "$rc" 69
tap_check "the log names the host name the certificate is not valid for" \
    grep -q "connect failed: .*the server's certificate is not valid for the host name localhost (db.tls = verify-full)" "$out"
check -o db.tls=verify-ca -o "db.tls_ca=$c/ca.pem"
tap_is "the same with verify-ca (name not checked): connects" "$rc" 0
cp "$c/server.pem" "$c/live.pem"
cp "$c/server.key" "$c/live.key"
sk_sql "" "FLUSH SSL" || sk_bail "FLUSH SSL failed"

# ---- client certificate
sk_sql "" "ALTER USER '$SK_DB_USER'@'$addr' REQUIRE X509"
check -o db.tls=on -o "db.tls_ca=$c/ca.pem"
tap_is "REQUIRE X509 without a client certificate: refused" "$rc" 69
check -o db.tls=on -o "db.tls_ca=$c/ca.pem" -o "db.tls_cert=$c/client.pem" -o "db.tls_key=$c/client.enc.key" \
    -o "db.tls_key_password_file=$c/key.pass"
tap_is "REQUIRE X509 with db.tls_cert and the encrypted db.tls_key: --check-config exits 0" "$rc" 0
tap_check "and shows the TLS state" grep -q '^database TLS: .*certificate verified for localhost' "$out"
check -o db.tls=on -o "db.tls_ca=$c/ca.pem" -o "db.tls_cert=$c/client.pem" -o "db.tls_key=$c/client.enc.key"
tap_is "the encrypted key without its passphrase: a configuration error (78)" "$rc" 78
tap_check "naming db.tls_key" grep -q 'configuration: FAILED: "db.tls_key": no private key could be read' "$out"
CRED=$SK_TEST_TMP/creds
mkdir -p "$CRED"
cp "$c/client.pem" "$CRED/db.tls_cert"
cp "$c/client.enc.key" "$CRED/db.tls_key"
cp "$c/key.pass" "$CRED/db.tls_key_password"
check -o db.tls=on -o "db.tls_ca=$c/ca.pem"
tap_is "certificate, key and passphrase as systemd credentials: --check-config exits 0" "$rc" 0
sk_daemon_start -o db.tls=on -o "db.tls_ca=$c/ca.pem" -o "db.tls_cert=$c/client.pem" \
    -o "db.tls_key=$c/client.enc.key" -o "db.tls_key_password_file=$c/key.pass" ||
    sk_bail "daemon did not start with a client certificate"
printf '2\t{"event_id":"x1","game_id":2,"username":"u9","delta":5}\n' >"$f"
sk_send "$T_SCORES" "$f"
if sk_results 22 60 | tail -n 1 >"$SK_TEST_TMP/r3" && [[ -s $SK_TEST_TMP/r3 ]]; then
    tap_is "with a client certificate: the event applies" "$(jq -r '"\(.event_id) \(.status)"' "$SK_TEST_TMP/r3")" "x1 applied"
else
    tap_fail "with a client certificate: the event applies" "$(tail -n 20 "$D_LOG")"
fi
sk_daemon_stop
tap_is "exit 0 after SIGTERM" "$D_RC" 0
CRED=
sk_sql "" "ALTER USER '$SK_DB_USER'@'$addr' REQUIRE NONE"

# ---- secrets
leaks=$(grep -lF -e "$pass" -e "$pw" "$SK_TEST_TMP"/check.*.log "$SK_TEST_TMP"/daemon.*.log 2>/dev/null || true)
tap_is "no passphrase or password in any output" "$leaks" ""
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
