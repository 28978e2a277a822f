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

run -o db.url=mariadb://u@127.0.0.1:1/d -o kafka.bootstrap.servers=127.0.0.1:1 -o kafka.sasl.password=s3cr3t-x -o kafka.no.such.prop=1
tap_is "unknown librdkafka property: exit 78" "$rc" 78
tap_check "unknown librdkafka property: named with its origin" \
    grep -q 'invalid setting "kafka.no.such.prop" = "1" (from -o)' <<<"$out"
tap_check "a kafka secret never appears in output" bash -c '! grep -q s3cr3t-x <<<"$1"' _ "$out"

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
