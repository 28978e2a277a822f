#!/usr/bin/env bash
# Configuration errors stop start-up with exit 78 and a message naming the
# key, the value and where it came from; secrets never appear in messages;
# --help, --version and usage errors behave.
source "$(dirname "$0")/../lib/testlib.sh"
B=$SK_ROOT/build/san/scorekeeper
export ASAN_OPTIONS=detect_leaks=1

# run ARGS...: sets rc and out (stderr+stdout)
run() { rc=0; out=$("$B" "$@" 2>&1) || rc=$?; }

run -o batch.max_event=5 -o db.url=mariadb://u@127.0.0.1/d -o kafka.bootstrap.servers=127.0.0.1:1
tap_is "unknown key: exit 78" "$rc" 78
tap_check "unknown key: names the key, the origin and a suggestion" \
    grep -q 'unknown key "batch.max_event" (from -o); did you mean "batch.max_events"' <<<"$out"

conf=$SK_TEST_TMP/bad.conf
printf '# comment\ndb.url = mariadb://u@127.0.0.1/d\n\nbatch.max_events = lots\n' >"$conf"
run --config "$conf" -o kafka.bootstrap.servers=127.0.0.1:1
tap_is "bad value in a file: exit 78" "$rc" 78
tap_check "bad value: names value, key and file:line" \
    grep -q "invalid value \"lots\" for \"batch.max_events\" (from $conf:4)" <<<"$out"

run -o db.url=mariadb://u:hunter2@127.0.0.1/d -o kafka.bootstrap.servers=127.0.0.1:1
tap_is "password in db.url: exit 78" "$rc" 78
tap_check "password in db.url: refused without echoing it" bash -c '! grep -q hunter2 <<<"$1" && grep -q "db.password_file" <<<"$1"' _ "$out"

run -o kafka.bootstrap.servers=127.0.0.1:1
tap_is "missing db.url: exit 78" "$rc" 78
tap_check "missing db.url: names it" grep -q '"db.url"' <<<"$out"

run -o db.url=mariadb://u@127.0.0.1:1/d -o kafka.bootstrap.servers=127.0.0.1:1 -o kafka.no.such.prop=1
tap_is "unknown librdkafka property: exit 78" "$rc" 78
tap_check "unknown librdkafka property: named with its origin" \
    grep -q 'invalid setting "kafka.no.such.prop" = "1" (from -o)' <<<"$out"

# Secrets: never from -o or the file; from a _file or a systemd credential.
run -o db.url=mariadb://u@127.0.0.1:1/d -o kafka.bootstrap.servers=127.0.0.1:1 -o kafka.sasl.password=s3cr3t-x
tap_is "-o kafka.sasl.password=...: exit 78" "$rc" 78
tap_check "-o kafka.sasl.password: says where to put it, never echoes it" bash -c '! grep -q s3cr3t-x <<<"$1" &&
    grep -q "\"kafka.sasl.password\" (from -o): refused: a secret is never taken from the command line" <<<"$1" &&
    grep -q "\"kafka.sasl.password_file\", or pass it as the systemd credential \"kafka.sasl.password\"" <<<"$1"' _ "$out"
secret_conf=$SK_TEST_TMP/secret.conf
printf 'db.url = mariadb://u@127.0.0.1:1/d\nkafka.ssl.key.password = s3cr3t-y\n' >"$secret_conf"
run --check-config --config "$secret_conf" -o kafka.bootstrap.servers=127.0.0.1:1
tap_is "a Kafka secret in the config file: exit 78 (also under --check-config)" "$rc" 78
tap_check "a Kafka secret in the config file: names file:line, never echoes it" bash -c '! grep -q s3cr3t-y <<<"$1" &&
    grep -q "\"kafka.ssl.key.password\" (from $2:2): refused" <<<"$1"' _ "$out" "$secret_conf"

# Guarded passthrough: a property a promise rests on is refused, naming it.
run -o db.url=mariadb://u@127.0.0.1:1/d -o kafka.bootstrap.servers=127.0.0.1:1 -o kafka.enable.auto.commit=true
tap_is "-o kafka.enable.auto.commit=true: exit 78" "$rc" 78
tap_check "kafka.enable.auto.commit: the promise it would break" grep -q \
    '"kafka.enable.auto.commit" = "true" (from -o): refused: offsets are committed by scorekeeper only after each event.s result is delivered' <<<"$out"
run --check-config -o db.url=mariadb://u@127.0.0.1:1/d -o kafka.bootstrap.servers=127.0.0.1:1 \
    -o kafka.consumer.isolation.level=read_uncommitted
tap_is "--check-config, kafka.consumer.isolation.level=read_uncommitted: exit 78" "$rc" 78
tap_check "--check-config names the promise" grep -q \
    '^configuration: FAILED: "kafka.consumer.isolation.level" = "read_uncommitted" (from -o): refused: only committed input events are applied' <<<"$out"

# metrics.listen is checked as the endpoint parses it, by --check-config too.
run --check-config -o db.url=mariadb://u@127.0.0.1:1/d -o kafka.bootstrap.servers=127.0.0.1:1 \
    -o metrics.listen=localhost:9464
tap_is "--check-config, metrics.listen=localhost:9464: exit 78" "$rc" 78
tap_check "--check-config says why metrics.listen is refused" grep -q \
    'configuration: FAILED: invalid value "localhost:9464" for "metrics.listen" (from -o): host must be a numeric IPv4 address' <<<"$out"

pw=$SK_TEST_TMP/pw
printf 'p4ss-w0rd-Z\n' >"$pw"
run -o db.url=mariadb://u@127.0.0.1:1/d -o db.password_file="$pw" -o kafka.bootstrap.servers=127.0.0.1:1 \
    -o db.connect_timeout_ms=300 migrate
tap_is "unreachable database for migrate: exit 69" "$rc" 69
tap_check "the password read from its file never appears in output" bash -c '! grep -q p4ss-w0rd-Z <<<"$1"' _ "$out"

run -o db.url=mariadb://u@127.0.0.1/d -o db.password_file=/nonexistent/pw -o kafka.bootstrap.servers=x
tap_is "unreadable password file: exit 78" "$rc" 78
tap_check "unreadable password file: named" grep -q '/nonexistent/pw' <<<"$out"

# --check-config: settings shown with secrets masked, services tried.
run --check-config -o db.url=mariadb://u@127.0.0.1:1/d -o db.password_file="$pw" \
    -o kafka.bootstrap.servers=127.0.0.1:1 -o db.connect_timeout_ms=300
tap_is "--check-config with nothing reachable: exit 69" "$rc" 69
tap_check "--check-config prints the effective settings" grep -q '^  batch.max_events = 2000$' <<<"$out"
tap_check "--check-config masks secrets" bash -c '! grep -q p4ss-w0rd-Z <<<"$1" && grep -q "db.password = (set)" <<<"$1"' _ "$out"
tap_check "--check-config says the database failed" grep -q '^database: FAILED' <<<"$out"
tap_check "--check-config says Kafka failed" grep -q '^kafka:    FAILED' <<<"$out"
mapfile -t ok_args < <(printf '%s\n' -o "db.url=$SCOREKEEPER_DB_URL" -o "db.password_file=$SCOREKEEPER_DB_PASSWORD_FILE" \
    -o "kafka.bootstrap.servers=$KAFKA_BROKERS")
run --check-config "${ok_args[@]}"
tap_is "--check-config against the running stack: exit 0" "$rc" 0
tap_check "--check-config: database ok and Kafka ok" bash -c 'grep -q "^database: ok" <<<"$1" && grep -q "^kafka:    ok" <<<"$1"' _ "$out"
# A Kafka secret from its _file, then from the credential: accepted, masked.
kpw=$SK_TEST_TMP/kafka-pw
printf 'k4fka-s3cr3t\n' >"$kpw"
run --check-config "${ok_args[@]}" -o kafka.sasl.password_file="$kpw"
tap_is "--check-config, kafka.sasl.password_file: exit 0" "$rc" 0
tap_check "--check-config: the secret read from its file is masked" bash -c '! grep -q k4fka-s3cr3t <<<"$1" &&
    grep -q "^  kafka.sasl.password = \*\*\*\*\*\*\*\*$" <<<"$1" &&
    grep -q "^kafka consumer: sasl.password = \*\*\*\*\*\*\*\*$" <<<"$1"' _ "$out"
creds=$SK_TEST_TMP/creds
mkdir -p "$creds"
printf 'cr3d-s3cr3t\n' >"$creds/kafka.sasl.password"
rc=0
out=$(CREDENTIALS_DIRECTORY=$creds "$B" --check-config "${ok_args[@]}" 2>&1) || rc=$?
tap_is "--check-config, the credential kafka.sasl.password: exit 0" "$rc" 0
tap_check "--check-config: the credential is read and masked" bash -c '! grep -q cr3d-s3cr3t <<<"$1" &&
    grep -q "^  kafka.sasl.password = \*\*\*\*\*\*\*\*$" <<<"$1"' _ "$out"

# kafka.consumer.X and kafka.producer.X reach their client only: the values
# are read back from the configurations librdkafka built for each.
run --check-config "${ok_args[@]}" -o kafka.consumer.fetch.wait.max.ms=77 -o kafka.producer.linger.ms=9
tap_is "--check-config with per-client settings: exit 0" "$rc" 0
tap_check "kafka.consumer.fetch.wait.max.ms reaches the consumer only" bash -c '
    grep -qx "kafka consumer: fetch.wait.max.ms = 77" <<<"$1" && grep -q "^kafka producer: fetch.wait.max.ms = " <<<"$1" &&
    ! grep -qx "kafka producer: fetch.wait.max.ms = 77" <<<"$1"' _ "$out"
tap_check "kafka.producer.linger.ms reaches the producer only" bash -c '
    grep -qx "kafka producer: linger.ms = 9" <<<"$1" && grep -q "^kafka consumer: linger.ms = " <<<"$1" &&
    ! grep -qx "kafka consumer: linger.ms = 9" <<<"$1"' _ "$out"
run --check-config "${ok_args[@]}" -o kafka.producer.acks=1
tap_is "--check-config, a setting librdkafka refuses when building the producer: exit 78" "$rc" 78

run --check-config -o batch.max_events=0 "${ok_args[@]}"
tap_is "--check-config with a bad value: exit 78" "$rc" 78
tap_check "--check-config names the bad key" grep -q 'configuration: FAILED: invalid value "0" for "batch.max_events"' <<<"$out"

run --version
tap_is "--version" "$rc:${out%% *}" "0:scorekeeper"
run --help
tap_check "--help lists every setting with its default" bash -c '[[ $1 == 0 ]] && grep -q "batch.linger_ms" <<<"$2" && grep -q "db.pool_size" <<<"$2"' _ "$rc" "$out"
run frobnicate
tap_is "unknown command: usage error 64" "$rc" 64
run -o
tap_is "missing -o argument: usage error 64" "$rc" 64
tap_done
