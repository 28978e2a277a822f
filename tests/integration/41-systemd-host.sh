#!/usr/bin/env bash
# The README's "Install and run under systemd", followed literally on a
# host whose PID 1 is systemd: a Debian 12 tree (tests/stack/systemd-host.sh)
# booted with systemd-nspawn, its own MariaDB, no network but loopback.
#
# Every ```sh block of that section runs as written, in order, as root in
# the booted host, in a directory holding the .deb that `make deb` built
# (the first step installs it with apt-get, which takes the libraries it
# depends on from the tree's apt cache: no network).  The one change is the
# one the README asks for: the brokers kafka1:9092,kafka2:9092 become the
# test broker, reached through a unix socket that socat forwards to the
# container's own 127.0.0.1 at the broker's port (so the addresses the
# broker advertises work inside too).  The operator's own database is the
# container's MariaDB on 127.0.0.1:3306; the test stack's is not used.
#
# Then, on scorekeeper@1 and scorekeeper@2 started by systemd itself:
# Type=notify readiness, the sandbox the units ask for (DynamicUser=,
# NoNewPrivileges=, an empty bounding set, a seccomp filter), the database
# password as a credential and nowhere else, one consumer group sharing
# the partitions, every event's result and the right rows, reload, and a
# clean stop.  Then the package's life: the daemon it installed is the one
# that ran, an upgrade restarts the running instances, removing it stops
# them and keeps /etc/scorekeeper, purging it removes only its conffile.
# The topics are the defaults (game.*): no other test uses them; they are
# made fresh here and deleted at exit.
source "$(dirname "$0")/../lib/testlib.sh"

if [[ $(id -u) -ne 0 ]]; then
    tap_skip "the README's systemd steps on a systemd host" "needs root for systemd-nspawn"
    tap_done
    exit
fi
kport=${KAFKA_BROKERS##*:}
if [[ $KAFKA_BROKERS != 127.0.0.1:* && $KAFKA_BROKERS != localhost:* ]]; then
    tap_skip "the README's systemd steps on a systemd host" \
        "the broker ($KAFKA_BROKERS) is not one loopback address the container could be given"
    tap_done
    exit
fi

host=$SK_ROOT/tests/stack/systemd-host.sh
"$host" >/dev/null 2>"$SK_TEST_TMP/image.log" ||
    sk_bail "no systemd host tree: $(tail -n 5 "$SK_TEST_TMP/image.log")"

# ---- the package: built once per change (test 42 checks it)
make -C "$SK_ROOT" --no-print-directory deb >"$SK_TEST_TMP/deb.log" 2>&1 ||
    sk_bail "make deb failed: $(tail -n 5 "$SK_TEST_TMP/deb.log")"
version=$(<"$SK_ROOT/VERSION")
deb=$SK_ROOT/build/deb/scorekeeper_${version}_$(dpkg --print-architecture).deb
[[ -f $deb ]] || sk_bail "make deb made no $deb"

# ---- the host: booted, with the package in a directory and the broker forwarded
share=$SK_TEST_TMP/share # /srv/sk inside
mkdir -p "$share/op"
cp "$deb" "$share/op/"

name=sk-t41-$$
nspawn_pid=
fwd_pids=()
host_down() {
    local p
    for p in "${fwd_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -n $nspawn_pid ]] || return 0
    # SIGTERM: nspawn asks the container's systemd to power off.
    kill -TERM "$nspawn_pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$nspawn_pid" 2>/dev/null || return 0
        sleep 0.2
    done
    kill -KILL "$nspawn_pid" 2>/dev/null || true
}
trap '_rc=$?; set +e; host_down; _sk_cleanup "$_rc"' EXIT

"$host" nspawn --boot --console=passive --volatile=overlay --private-network --machine="$name" \
    --bind="$share:/srv/sk" >"$SK_TEST_TMP/console.log" 2>&1 &
nspawn_pid=$!
leader=
for _ in $(seq 1 150); do
    leader=$(pgrep -P "$nspawn_pid" -x systemd || true)
    [[ -n $leader ]] && break
    kill -0 "$nspawn_pid" 2>/dev/null || break
    sleep 0.2
done
[[ -n $leader ]] || sk_bail "the container did not boot: $(tail -n 5 "$SK_TEST_TMP/console.log")"

# in_host CMD...: run CMD as root inside the booted host, with a clean
# environment (as a login would have).
in_host() {
    nsenter -t "$leader" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 TERM=dumb "$@"
}
# journal [ARGS...]: the booted host's journal, messages only.
journal() { in_host journalctl --no-pager -o cat "$@"; }

# Until systemd has made its private socket, systemctl cannot connect at
# all ("Failed to connect to bus"): ask again until it gives a state.
state=
deadline=$((SECONDS + 120))
while ((SECONDS < deadline)); do
    state=$(in_host timeout $((deadline - SECONDS)) systemctl is-system-running --wait 2>&1 || true)
    [[ $state =~ ^(initializing|starting|running|degraded|maintenance|stopping|offline)$ ]] && break
    sleep 0.2
done
if [[ $state == running ]]; then
    tap_ok "the container booted systemd as PID 1 (state running)"
else
    tap_fail "the container booted systemd as PID 1 (state running)" \
        "state: $state; failed units: $(in_host systemctl --failed --no-legend 2>&1)"
fi
tap_is "the operator's MariaDB is running in it" "$(in_host systemctl is-active mariadb)" active

socat UNIX-LISTEN:"$share/kafka.sock",fork,unlink-early TCP:127.0.0.1:"$kport" 2>"$SK_TEST_TMP/fwd-host.log" &
fwd_pids+=($!)
for _ in $(seq 1 50); do [[ -S $share/kafka.sock ]] && break; sleep 0.1; done
nsenter -t "$leader" -n socat TCP-LISTEN:"$kport",bind=127.0.0.1,reuseaddr,fork \
    UNIX-CONNECT:"$share/kafka.sock" 2>"$SK_TEST_TMP/fwd-guest.log" &
fwd_pids+=($!)

# The default topics, made fresh: whatever an interrupted run left is gone.
"$SK_TOOLS/mktopic" -b "$KAFKA_BROKERS" -t 20000 -d game.users game.scores game.results \
    game.dead-letter >/dev/null 2>&1 || true
sk_mktopic game.users 2 >/dev/null || sk_bail "cannot create game.users"
sk_mktopic game.scores 4 >/dev/null || sk_bail "cannot create game.scores"
sk_mktopic game.results 2 >/dev/null || sk_bail "cannot create game.results"
sk_mktopic game.dead-letter 1 >/dev/null || sk_bail "cannot create game.dead-letter"

# ---- the README, literally
readme_blocks() {
    awk -v dir="$1" '
        /^## / { in_section = ($0 == "## Install and run under systemd") }
        in_section && /^ *```sh$/ { in_block = 1; n++; next }
        in_section && in_block && /^ *```$/ { in_block = 0; next }
        in_section && in_block { sub(/^   /, ""); print > (dir "/step" n ".sh") }
    ' "$SK_ROOT/README.md"
}
mkdir -p "$share/steps"
readme_blocks "$share/steps"
nsteps=$(find "$share/steps" -name 'step*.sh' | wc -l)
tap_is "the README's systemd section has its 5 command blocks" "$nsteps" 5
for i in $(seq 1 "$nsteps"); do
    sed -i -e "s/kafka1:9092,kafka2:9092/127.0.0.1:$kport/g" -e "s/kafka1:9092/127.0.0.1:$kport/g" \
        "$share/steps/step$i.sh"
    first=$(grep -v '^ *#' "$share/steps/step$i.sh" | grep -m1 . || true)
    if in_host timeout 240 bash -c "cd /srv/sk/op && bash -e /srv/sk/steps/step$i.sh" \
        >"$SK_TEST_TMP/step$i.log" 2>&1; then
        tap_ok "README step $i runs as written ($first)"
    else
        tap_fail "README step $i runs as written ($first)" "$(tail -n 25 "$SK_TEST_TMP/step$i.log")"
    fi
done

# ---- what systemd now runs, from the package
units=(scorekeeper@1 scorekeeper@2)
tap_is "both instances are active" "$(in_host systemctl is-active "${units[@]}" | tr '\n' ' ')" \
    "active active "
tap_is "the package is installed, version $version" \
    "$(in_host dpkg-query -W -f '${Status} ${Version}' scorekeeper 2>&1)" "install ok installed $version"
tap_is "apt brought its libraries from the tree's cache (they were not installed before)" \
    "$(in_host dpkg-query -W -f '${Status}\n' librdkafka1 libcjson1 libmicrohttpd12 2>&1 | sort -u)" \
    "install ok installed"
pid=$(in_host systemctl show -p MainPID --value scorekeeper@1)
tap_is "scorekeeper@1 runs the package's binary" \
    "$(in_host readlink "/proc/$pid/exe") $(in_host dpkg -S /usr/bin/scorekeeper 2>&1)" \
    "/usr/bin/scorekeeper scorekeeper: /usr/bin/scorekeeper"
tap_is "the package enabled no unit by itself (scorekeeper.service)" \
    "$(in_host systemctl is-enabled scorekeeper.service 2>&1) $(in_host systemctl is-active scorekeeper.service 2>&1)" \
    "disabled inactive"
for u in "${units[@]}"; do
    st=$(in_host systemctl show -p StatusText --value "$u")
    tap_check "$u: its status line says it runs ($st)" grep -q '^running' <<<"$st"
done
tap_is "both logged ready: (they sent READY=1 once the database and Kafka answered)" \
    "$(journal -u scorekeeper@1 -u scorekeeper@2 | grep -c '^ready: database and Kafka answer' || true)" 2

pid=$(in_host systemctl show -p MainPID --value scorekeeper@1)
status=$(in_host cat "/proc/$pid/status")
uid=$(awk '/^Uid:/ {print $2}' <<<"$status")
tap_check "scorekeeper@1 runs as a dynamic user, not root (uid $uid)" test "$uid" -ge 61184
tap_is "no_new_privs, an empty bounding set, a seccomp filter" \
    "$(awk '/^(NoNewPrivs|CapBnd|CapEff|Seccomp):/ {printf "%s %s ", $1, $2}' <<<"$status")" \
    "CapEff: 0000000000000000 CapBnd: 0000000000000000 NoNewPrivs: 1 Seccomp: 2 "
# The last mount on / in its namespace is the one it sees.
root_opts=$(in_host cat "/proc/$pid/mountinfo" | awk '$5 == "/" {o = $6} END {print o}')
tap_check "the whole file system is read-only to it (ProtectSystem=strict: / is mounted $root_opts)" \
    grep -q '^ro\(,\|$\)' <<<"$root_opts"

# Scale-out: one group, the partitions shared out.
metric() { in_host curl -sf "127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
a1= a2=
for _ in $(seq 1 100); do
    a1=$(metric 9461 scorekeeper_partitions_assigned || true)
    a2=$(metric 9462 scorekeeper_partitions_assigned || true)
    [[ -n $a1 && -n $a2 ]] && (( ${a1%.*} > 0 && ${a2%.*} > 0 && ${a1%.*} + ${a2%.*} == 6 )) && break
    sleep 0.2
done
a1=${a1:-0} a2=${a2:-0}
tap_is "one consumer group: the 6 input partitions shared between the two (metrics 9461 and 9462)" \
    "$(( ${a1%.*} + ${a2%.*} )) $(( ${a1%.*} > 0 && ${a2%.*} > 0 ))" "6 1"
tap_is "/healthz of scorekeeper@2 answers 200" \
    "$(in_host curl -s -o /dev/null -w '%{http_code}' 127.0.0.1:9462/healthz)" 200

# ---- events in, results out, rows right
run=$(_sk_rand)
n=400
ev=$SK_TEST_TMP/scores
declare -A want
for i in $(seq 1 $n); do
    g=$((i % 20 + 1)) u=$((i % 13)) d=$((i % 7 + 1))
    printf '%d\t{"event_id":"t41-%s-%d","game_id":%d,"game_name":"game %d","username":"p%d","delta":%d}\n' \
        "$g" "$run" "$i" "$g" "$g" "$u" "$d"
    want[$g:$u]=$(( ${want[$g:$u]:-0} + d ))
done >"$ev"
timeout 30 kcat -b "$KAFKA_BROKERS" -P -t game.scores -K $'\t' -l "$ev"
sk_consume game.results $n 90 >"$SK_TEST_TMP/results" || true
tap_is "a result for every event, each applied" \
    "$(jq -r 'select(.event_id | startswith("t41-'"$run"'")) | .status' "$SK_TEST_TMP/results" | sort | uniq -c | tr -s ' ')" \
    " $n applied"
tap_is "both instances applied some of them" \
    "$(for p in 9461 9462; do v=$(metric $p 'scorekeeper_events_applied_total{topic="game.scores"}'); (( ${v%.*} > 0 )) && echo yes; done | tr '\n' ' ')" \
    "yes yes "
got=$(in_host mariadb -N -B scorekeeper -e \
    "SELECT CONCAT(gp.game_id, ':', SUBSTRING(u.username, 2), ' ', gp.score) FROM game_players gp
     JOIN users u ON u.id = gp.user_id ORDER BY 1" 2>&1 | sort)
exp=$(for k in "${!want[@]}"; do printf '%s %s\n' "$k" "${want[$k]}"; done | sort)
tap_is "game_players in the operator's database equals the events' totals ($(wc -l <<<"$exp") rows)" \
    "$got" "$exp"

# ---- secrets: the password reached the daemon as a credential only
# The password goes to grep through a file: in an argument it would be in
# grep's own argv.
pwfile=$SK_TEST_TMP/pw
(umask 077 && in_host cat /etc/scorekeeper/db.password >"$pwfile")
tap_check "the password file was written (24 random bytes, base64)" grep -qE '^[A-Za-z0-9]{20,}$' "$pwfile"
tap_is "the password file stays 0600 root on disk" "$(in_host stat -c '%a %U' /etc/scorekeeper/db.password)" \
    "600 root"
tap_check "the password is in no process's argv" \
    bash -c "! cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -qFf '$pwfile'"
tap_is "the password is in no journal line" "$(journal | grep -cFf "$pwfile" || true)" 0

# ---- reload, stop
in_host systemctl reload scorekeeper@1 >"$SK_TEST_TMP/reload.log" 2>&1 || true
tap_is "systemctl reload: the daemon reloads its settings and stays active" \
    "$(journal -u scorekeeper@1 | grep -c '^reloaded settings' || true) $(in_host systemctl is-active scorekeeper@1)" \
    "1 active"
in_host systemctl stop "${units[@]}" >"$SK_TEST_TMP/stop.log" 2>&1 || true
for u in "${units[@]}"; do
    tap_is "$u: systemctl stop ends it cleanly (result, exit status)" \
        "$(in_host systemctl show -p Result --value "$u") $(in_host systemctl show -p ExecMainStatus --value "$u")" \
        "success 0"
done
for u in "${units[@]}"; do
    tap_is "$u: the stop drained first (journal: drained, then stopped)" \
        "$(journal -u "$u" | grep -o '^drained:\|^stopped:' | tr '\n' ' ')" "drained: stopped: "
done

# ---- the package's life: upgrade (the same .deb again), remove, purge
main_pids() { in_host systemctl show -p MainPID --value "${units[@]}" | xargs; }
in_host systemctl start "${units[@]}" >"$SK_TEST_TMP/start.log" 2>&1 || true
before=$(main_pids)
in_host dpkg -i /srv/sk/op/"${deb##*/}" >"$SK_TEST_TMP/upgrade.log" 2>&1 || true
after=$(main_pids)
tap_is "an upgrade restarts the running instances (active, new processes: $before -> $after)" \
    "$(in_host systemctl is-active "${units[@]}" | tr '\n' ' ')$(for i in 1 2; do
        b=$(cut -d' ' -f$i <<<"$before") a=$(cut -d' ' -f$i <<<"$after")
        [[ $b != 0 && $a != 0 && $a != "$b" ]] && echo -n "new "; done)" "active active new new "
in_host apt-get remove -y scorekeeper >"$SK_TEST_TMP/remove.log" 2>&1 || true
tap_is "apt-get remove: the instances stopped, the binary gone" \
    "$(in_host systemctl is-active "${units[@]}" | tr '\n' ' ')$(in_host test -e /usr/bin/scorekeeper || echo gone)" \
    "inactive inactive gone"
tap_is "apt-get remove keeps /etc/scorekeeper (the conffile and the operator's files)" \
    "$(in_host ls /etc/scorekeeper | tr '\n' ' ')" "1.conf 2.conf db.password scorekeeper.conf "
in_host apt-get purge -y scorekeeper >"$SK_TEST_TMP/purge.log" 2>&1 || true
tap_is "apt-get purge removes the conffile only" \
    "$(in_host ls /etc/scorekeeper | tr '\n' ' ')$(in_host dpkg -s scorekeeper >/dev/null 2>&1 || echo purged)" \
    "1.conf 2.conf db.password purged"
tap_done
