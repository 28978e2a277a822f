#!/usr/bin/env bash
# Start a private single-node Kafka broker (KRaft) and MariaDB server bound to
# 127.0.0.1 on free ports, create the scorekeeper database and runtime user,
# and describe everything in build/stack.env.  See tests/stack/lib.sh for the
# file layout.
#
# Reuses a healthy running stack; cleans up a stale one first.  Does nothing
# when KAFKA_BROKERS and SCOREKEEPER_DB_URL are already set in the
# environment (external services; see tests/README.md).
set -euo pipefail
# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if sk_external_services; then
    sk_log "KAFKA_BROKERS and SCOREKEEPER_DB_URL are set: using $KAFKA_BROKERS and $SCOREKEEPER_DB_URL, nothing started"
    exit 0
fi

"$SK_ROOT/tests/tools/deps.sh"
sk_lock

if [[ -f $SK_ENV_FILE ]]; then
    if (sk_check quiet); then
        # shellcheck source=/dev/null
        source "$SK_ENV_FILE"
        sk_log "a healthy stack is already running (Kafka $KAFKA_BROKERS pid $KAFKA_PID, MariaDB 127.0.0.1:$SCOREKEEPER_DB_PORT pid $MARIADB_PID); reusing it"
        exit 0
    fi
    sk_log "found a stale or unhealthy stack; cleaning it up first"
    (sk_check '') || true
fi
if [[ -d $SK_STATE || -f $SK_ENV_FILE ]]; then
    sk_teardown
fi

# ---------------------------------------------------------------- Kafka jars
# Fetched once per user into a cache shared by all clones.  flock makes a
# concurrent fetch wait instead of writing into the same directory; the
# .complete marker is written last, so a fetch killed half-way is redone.
fetch_kafka() {
    local cache=$SK_KAFKA_CACHE
    mkdir -p "$cache"
    exec 8>"$cache/.lock"
    flock -w 600 8 || sk_die "timed out waiting for another Kafka jar fetch ($cache/.lock)"
    if [[ ! -f $cache/.complete ]]; then
        sk_log "fetching Kafka $SK_KAFKA_VERSION jars into $cache (once)"
        rm -rf -- "${cache:?}/lib" "${cache:?}/lib.tmp"
        cat >"$cache/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scorekeeper tests/stack/stack-up.sh: only used to resolve
     the Kafka broker's runtime classpath from Maven Central. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.scorekeeper</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$SK_KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>
  </dependencies>
</project>
POM
        if ! (cd "$cache" && mvn -q -B dependency:copy-dependencies \
                -DincludeScope=runtime -DoutputDirectory="$cache/lib.tmp" >"$cache/mvn.log" 2>&1); then
            tail -n 30 "$cache/mvn.log" >&2
            exec 8>&-
            sk_die "mvn could not fetch the Kafka jars (full log: $cache/mvn.log)"
        fi
        compgen -G "$cache/lib.tmp/kafka_2.13-$SK_KAFKA_VERSION.jar" >/dev/null \
            || sk_die "mvn finished but kafka_2.13-$SK_KAFKA_VERSION.jar is missing"
        mv -- "$cache/lib.tmp" "$cache/lib"
        touch "$cache/.complete"
    fi
    exec 8>&-
}
fetch_kafka

# --------------------------------------------------------------------- ports
# Random ports below the kernel's ephemeral range (so outgoing connections
# cannot be holding them), checked against listening sockets.  There is still
# a window between the check and the bind; the readiness checks below would
# catch a clash and fail loudly rather than talk to someone else's server.
read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range
(( eph_lo > 12000 )) || eph_lo=32768
taken=()
pick_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((10000 + (RANDOM * 32768 + RANDOM) % (eph_lo - 10000)))
        [[ " ${taken[*]} " == *" $p "* ]] && continue
        [[ -z $(ss -Hltn "sport = :$p") ]] || continue
        taken+=("$p")
        echo "$p"
        return 0
    done
    sk_die "no free port found after 200 tries"
}
kafka_port=$(pick_port); taken+=("$kafka_port")
ctrl_port=$(pick_port); taken+=("$ctrl_port")
sasl_port=$(pick_port); taken+=("$sasl_port")
db_port=$(pick_port); taken+=("$db_port")

# ------------------------------------------------------------------ run dir
mkdir -p "$SK_STATE"
chmod 0700 "$SK_STATE"
run=$(mktemp -d "$SK_STATE/run.XXXXXX")
printf '%s\n' "$run" >"$SK_STATE/run"

# From here on a failure must not leave anything behind.
started_ok=0
on_exit() {
    local rc=$?
    if [[ $started_ok != 1 ]]; then
        sk_log "start-up failed; stopping whatever started and removing its data"
        sk_teardown
        (( rc != 0 )) || rc=1
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# Unix socket paths are limited to 108 bytes and SCOREKEEPER_DB_ADMIN is
# word-split, so fall back to a short /tmp directory when needed.
sock=$run/mariadb.sock
if (( ${#sock} > 100 )) || [[ $sock =~ [[:space:]] ]]; then
    sockdir=$(mktemp -d /tmp/sk-sock.XXXXXX)
    printf '%s\n' "$sockdir" >"$SK_STATE/sockdir"
    sock=$sockdir/mariadb.sock
fi

# Launch a long-running server detached from our session (setsid, stdin from
# /dev/null) so it outlives this script and a terminal's ^C.  The lock fds
# are closed: a server inheriting them would hold build/.stack.lock forever.  The wrapper
# records its own pid before exec'ing the server, so the pid file names the
# server itself whether or not setsid had to fork.
launch() {
    local pidfile=$1 log=$2
    shift 2
    # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
    setsid bash -c 'echo "$$" >"$1"; shift; exec "$@"' launch "$pidfile" "$@" \
        </dev/null >>"$log" 2>&1 9>&- 8>&- &
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s $pidfile ]] && return 0
        sleep 0.1
    done
    sk_die "could not launch $2"
}

# make_password FILE: 32 random letters and digits into FILE (mode 0600).
# Passwords only ever travel through files and stdin, never argv.
make_password() {
    ( umask 077; head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | cut -c1-32 >"$1" )
    chmod 0600 "$1"
    [[ $(wc -c <"$1") -ge 25 ]] || sk_die "could not generate a password into $1"
}

# -------------------------------------------------------------------- Kafka
kafka_dir=$run/kafka
kafka_log=$run/kafka.log
mkdir -p "$kafka_dir/data"
# A second listener speaks SASL_SSL (SCRAM-SHA-512 over TLS), the way a
# production cluster is reached; the broker's own traffic stays PLAINTEXT.
# The certificates are made here with openssl, the keystore in PEM (Kafka
# 2.7+), so no keytool and no store password.  The CA's key is deleted once
# it signed: nothing else is ever signed by it.
tls_dir=$kafka_dir/tls
mkdir -m 0700 "$tls_dir"
make_tls() {
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    openssl req -x509 -new "${ec[@]}" -keyout "$tls_dir/ca.key" -out "$tls_dir/ca.pem" \
        -days 3650 -subj "/O=scorekeeper tests/CN=test broker CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
    openssl req -new "${ec[@]}" -keyout "$tls_dir/server.key" -out "$tls_dir/server.csr" \
        -subj "/CN=127.0.0.1" &&
    printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
        'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >"$tls_dir/server.ext" &&
    openssl x509 -req -in "$tls_dir/server.csr" -CA "$tls_dir/ca.pem" -CAkey "$tls_dir/ca.key" \
        -CAcreateserial -days 3650 -extfile "$tls_dir/server.ext" -out "$tls_dir/server.crt" &&
    cat "$tls_dir/server.key" "$tls_dir/server.crt" >"$tls_dir/server.pem"
}
if ! (umask 077 && make_tls) >"$tls_dir/openssl.log" 2>&1; then
    sk_tail_log "openssl" "$tls_dir/openssl.log"
    sk_die "could not make the test broker's TLS certificates"
fi
rm -f -- "$tls_dir"/{ca.key,ca.srl,server.key,server.csr,server.ext}
chmod 0644 "$tls_dir/ca.pem"
sasl_user=scorekeeper
sasl_pwfile=$SK_STATE/kafka.sasl.password
make_password "$sasl_pwfile"
sasl_pw=$(<"$sasl_pwfile")
# kcat -F reads librdkafka properties from a file: the password stays out
# of argv for the readiness checks and the tests.
sasl_client=$SK_STATE/kafka-sasl.properties
( umask 077; printf '%s\n' security.protocol=SASL_SSL sasl.mechanisms=SCRAM-SHA-512 \
    "sasl.username=$sasl_user" "sasl.password=$sasl_pw" "ssl.ca.location=$tls_dir/ca.pem" \
    >"$sasl_client" )

cat >"$kafka_dir/server.properties" <<PROPS
# Single-node KRaft broker for scorekeeper tests; written by stack-up.sh.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctrl_port
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:$ctrl_port,SASL_SSL://127.0.0.1:$sasl_port
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port,SASL_SSL://127.0.0.1:$sasl_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$tls_dir/server.pem
log.dirs=$kafka_dir/data
num.partitions=1
auto.create.topics.enable=true
default.replication.factor=1
offsets.topic.replication.factor=1
# Fewer internal partitions than the production default: creating 50
# __consumer_offsets partitions on first use costs seconds per test run.
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
PROPS
# Everything goes to stdout, which launch() appends to kafka.log together
# with anything the JVM itself prints (e.g. an OutOfMemoryError): one file
# explains a failed start.
cat >"$kafka_dir/log4j.properties" <<'L4J'
log4j.rootLogger=WARN, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
# Keep the one INFO line that says the server finished starting.
log4j.logger.kafka.server.KafkaRaftServer=INFO
L4J
cp_jars="$SK_KAFKA_CACHE/lib/*"
cluster_id=$(java -cp "$cp_jars" -Dlog4j.configuration="file:$kafka_dir/log4j.properties" \
    kafka.tools.StorageTool random-uuid 2>>"$kafka_log") \
    || { sk_tail_log "Kafka storage tool" "$kafka_log"; sk_die "kafka StorageTool random-uuid failed"; }
# The SCRAM user is created with the storage (Kafka 3.5+).  Its password
# goes through a java @argfile, removed right after, so that it is never
# in the argv of a process.
format_args=$kafka_dir/format.args
( umask 077; printf '%s\n' kafka.tools.StorageTool format -t "$cluster_id" \
    -c "$kafka_dir/server.properties" \
    --add-scram "SCRAM-SHA-512=[name=$sasl_user,password=$sasl_pw]" >"$format_args" )
unset sasl_pw
if ! java -cp "$cp_jars" -Dlog4j.configuration="file:$kafka_dir/log4j.properties" \
        "@$format_args" >>"$kafka_log" 2>&1; then
    rm -f -- "$format_args"
    sk_tail_log "Kafka storage tool" "$kafka_log"
    sk_die "formatting Kafka storage failed"
fi
rm -f -- "$format_args"
# The JVM as Kafka's own kafka-server-start.sh runs it: a fixed 1 GB heap and
# G1 aiming at 20 ms pauses (G1's default aim is 200 ms).  SK_KAFKA_JVM_OPTS
# replaces these.
read -ra jvm_opts <<<"${SK_KAFKA_JVM_OPTS:--Xms1g -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent}"
launch "$SK_STATE/kafka.pid" "$kafka_log" \
    java "${jvm_opts[@]}" -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$kafka_dir/log4j.properties" \
    -cp "$cp_jars" kafka.Kafka "$kafka_dir/server.properties"
kafka_pid=$(<"$SK_STATE/kafka.pid")
sk_log "Kafka broker starting on 127.0.0.1:$kafka_port (pid $kafka_pid)"

# ------------------------------------------------------------------ MariaDB
# Installed and started while the JVM warms up.
db_dir=$run/mariadb
db_log=$run/mariadb.log
mkdir -p "$db_dir"
user_opt=()
# mariadbd refuses to run as root unless told to; as another user --user is
# meaningless and only warns.
if [[ $(id -u) -eq 0 ]]; then user_opt=(--user=root); fi
if ! mariadb-install-db --no-defaults --datadir="$db_dir/data" "${user_opt[@]}" \
        --auth-root-authentication-method=normal --skip-test-db \
        >>"$db_log" 2>&1; then
    sk_tail_log "mariadb-install-db" "$db_log"
    sk_die "mariadb-install-db failed"
fi
launch "$SK_STATE/mariadb.pid" "$db_log" \
    mariadbd --no-defaults --datadir="$db_dir/data" "${user_opt[@]}" \
    --socket="$sock" --port="$db_port" --bind-address=127.0.0.1 \
    --pid-file="$db_dir/mariadbd.pid" --log-error="$db_log" \
    --skip-name-resolve --innodb-buffer-pool-size=256M --max-connections=200 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-lock-wait-timeout=10
db_pid=$(<"$SK_STATE/mariadb.pid")
sk_log "MariaDB starting on 127.0.0.1:$db_port (pid $db_pid)"

# ---------------------------------------------------------------- readiness
wait_ready() {
    local name=$1 pid=$2 log=$3 timeout=$4
    shift 4
    local deadline=$((SECONDS + timeout))
    while ! "$@"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            sk_tail_log "$name" "$log"
            sk_die "$name (pid $pid) exited during start-up"
        fi
        if (( SECONDS >= deadline )); then
            sk_tail_log "$name" "$log"
            sk_die "$name did not become ready within $timeout s"
        fi
        sleep 0.3
    done
}
wait_ready MariaDB "$db_pid" "$db_log" 30 sk_mariadb_answers "$sock"
wait_ready "Kafka broker" "$kafka_pid" "$kafka_log" 60 sk_kafka_answers "127.0.0.1:$kafka_port"
wait_ready "Kafka broker (SASL_SSL)" "$kafka_pid" "$kafka_log" 30 \
    sk_kafka_answers "127.0.0.1:$sasl_port" "$sasl_client"

# ------------------------------------------------------------ DB contents
admin_args="--no-defaults -uroot -S $sock"
read -r -a admin <<<"$admin_args"
# install-db also creates passwordless root@127.0.0.1 / ::1 / hostname and
# possibly anonymous accounts; only the socket root account is needed, and
# leaving the others would let any local user in over TCP.
extra_users=$(mariadb "${admin[@]}" -N -B <<'SQL'
SELECT CONCAT('DROP USER ', QUOTE(User), '@', QUOTE(Host), ';')
  FROM mysql.global_priv
 WHERE (User = 'root' AND Host <> 'localhost') OR User = '';
SQL
)
if [[ -n $extra_users ]]; then
    mariadb "${admin[@]}" <<<"$extra_users"
fi

# shellcheck disable=SC2016 # backticks are SQL identifier quotes
mariadb "${admin[@]}" <<<'CREATE DATABASE IF NOT EXISTS `scorekeeper` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;'
SCOREKEEPER_DB_ADMIN=$admin_args "$SK_ROOT/tests/tools/db-migrate.sh" scorekeeper
mariadb "${admin[@]}" scorekeeper <"$SK_ROOT/sql/grants.sql"

# The password only ever travels through files and stdin, never argv.
pwfile=$SK_STATE/db.password
make_password "$pwfile"
pw=$(<"$pwfile")
mariadb "${admin[@]}" <<SQL
ALTER USER 'scorekeeper'@'127.0.0.1' IDENTIFIED BY '$pw' ACCOUNT UNLOCK;
ALTER USER 'scorekeeper'@'localhost' IDENTIFIED BY '$pw' ACCOUNT UNLOCK;
SQL
unset pw

# ---------------------------------------------------------------- stack.env
q() { printf '%q' "$1"; }
tmp_env=$(mktemp "$SK_BUILD/.stack.env.XXXXXX")
cat >"$tmp_env" <<ENV
# Written by tests/stack/stack-up.sh; removed by stack-down.sh.  Source it.
export KAFKA_BROKERS=$(q "127.0.0.1:$kafka_port")
export SCOREKEEPER_DB_URL=$(q "mariadb://scorekeeper@127.0.0.1:$db_port/scorekeeper")
export SCOREKEEPER_DB_PASSWORD_FILE=$(q "$pwfile")
export SCOREKEEPER_DB_SOCKET=$(q "$sock")
export SCOREKEEPER_DB_PORT=$(q "$db_port")
export SCOREKEEPER_DB_ADMIN=$(q "$admin_args")
export KAFKA_SASL_BROKERS=$(q "127.0.0.1:$sasl_port")
export KAFKA_SASL_MECHANISM=SCRAM-SHA-512
export KAFKA_SASL_USER=$(q "$sasl_user")
export KAFKA_SASL_PASSWORD_FILE=$(q "$sasl_pwfile")
export KAFKA_SASL_CA=$(q "$tls_dir/ca.pem")
export KAFKA_SASL_CLIENT_CONF=$(q "$sasl_client")
export KAFKA_PID=$(q "$kafka_pid")
export MARIADB_PID=$(q "$db_pid")
export SK_STACK_DIR=$(q "$run")
export KAFKA_LOG=$(q "$kafka_log")
export MARIADB_LOG=$(q "$db_log")
ENV
mv -- "$tmp_env" "$SK_ENV_FILE"
started_ok=1
sk_log "stack up: Kafka 127.0.0.1:$kafka_port (SASL_SSL 127.0.0.1:$sasl_port), MariaDB 127.0.0.1:$db_port; source $SK_ENV_FILE"
