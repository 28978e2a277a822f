#!/usr/bin/env bash
# The sandbox of the units, for real where this machine allows it: the real
# daemon on the private stack, started the way the units start it
# (--config with the shipped default file, the password as a credential in
# $CREDENTIALS_DIRECTORY, db.password_file unset), but
#
#  1. as an unprivileged user (nobody:nogroup, no supplementary groups), with
#     no_new_privs, empty capability sets and an empty bounding set
#     (setpriv): what DynamicUser=yes, NoNewPrivileges=yes,
#     CapabilityBoundingSet= and AmbientCapabilities= leave it;
#  2. the same, plus a seccomp filter equivalent to the units'
#     SystemCallFilter=@system-service ~@privileged @resources,
#     SystemCallErrorNumber=EPERM, SystemCallArchitectures=native,
#     MemoryDenyWriteExecute=yes and RestrictAddressFamilies=AF_UNIX AF_INET
#     AF_INET6 (tests/lib/seccomp-exec.c, with the system call sets taken
#     from `systemd-analyze syscall-filter`).  Kafka is addressed as
#     localhost there, so name resolution runs without AF_NETLINK.
#
# Each run processes events end to end (results arrive, rows are right) and
# stops on SIGTERM with exit status 0.  Run 1 uses the sanitizer build, run
# 2 the plain build (the one `make install` installs; ASan itself calls
# setrlimit(), which @resources denies).  The units themselves, started by
# systemd, are test 41 (a booted systemd host in a container).
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

REAL_SAN=$SK_DAEMON
REAL_PLAIN=$SK_ROOT/build/scorekeeper

if ((EUID != 0)) || ! command -v setpriv >/dev/null || ! id nobody >/dev/null 2>&1; then
    tap_skip "unprivileged runs" "needs root, setpriv(1) and a nobody user to drop to"
    tap_done
    exit 0
fi
group=$(id -gn nobody)

# What a DynamicUser= service gets: its credential directory readable only by
# its own user.  The test's temp dir must be traversable for nobody.
chmod 0711 "$SK_TEST_TMP"
cred=$SK_TEST_TMP/credentials
mkdir -m 0700 "$cred"
install -m 0400 "$SCOREKEEPER_DB_PASSWORD_FILE" "$cred/db.password"
chown -R nobody:"$group" "$cred"
conf=$SK_TEST_TMP/scorekeeper.conf
sed -e 's|@[a-z]*@|/nonexistent|g' "$SK_ROOT/systemd/scorekeeper.conf" >"$conf"
chmod 0644 "$conf"

setpriv_args=(--reuid=nobody --regid="$group" --clear-groups --no-new-privs
    --inh-caps=-all --ambient-caps=-all --bounding-set=-all)

# make_wrapper FILE PREFIX... BINARY: a script usable as SK_DAEMON.
make_wrapper() {
    local file=$1
    shift
    {
        printf '#!/bin/sh\n'
        printf 'export CREDENTIALS_DIRECTORY=%q\n' "$cred"
        printf 'exec'
        printf ' %q' setpriv "${setpriv_args[@]}" -- "$@"
        printf ' "$@"\n'
    } >"$file"
    chmod 0755 "$file"
}

# status_of PID FIELD: a field of /proc/PID/status, blanks squeezed.
status_of() { awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print; exit }' "/proc/$1/status"; }

# scenario NAME SECCOMP(0|2) WHAT [-o k=v...]: one daemon run with checks.
scenario() {
    local name=$1 seccomp=$2 what=$3
    shift 3
    sk_daemon_setup "$name" 2
    if ! sk_daemon_start --config "$conf" -o db.password_file= -o batch.linger_ms=20 "$@"; then
        tap_fail "$what: daemon starts and reports READY" "see diagnostics above"
        return
    fi
    tap_ok "$what: daemon starts and reports READY"
    tap_is "$what: runs as nobody" "$(status_of "$D_PID" Uid) $(status_of "$D_PID" Gid)" \
        "65534 65534 65534 65534 $(id -g nobody) $(id -g nobody) $(id -g nobody) $(id -g nobody)"
    tap_is "$what: no supplementary groups" "$(status_of "$D_PID" Groups)" ""
    tap_is "$what: no_new_privs" "$(status_of "$D_PID" NoNewPrivs)" 1
    local caps
    caps=$(for f in CapInh CapPrm CapEff CapBnd CapAmb; do printf '%s=%s ' "$f" "$(status_of "$D_PID" $f)"; done)
    tap_is "$what: no capabilities, empty bounding set" "$caps" \
        "CapInh=0000000000000000 CapPrm=0000000000000000 CapEff=0000000000000000 CapBnd=0000000000000000 CapAmb=0000000000000000 "
    tap_is "$what: seccomp mode" "$(status_of "$D_PID" Seccomp)" "$seccomp"

    local users=$SK_TEST_TMP/$name.users scores=$SK_TEST_TMP/$name.scores res=$SK_TEST_TMP/$name.results
    printf '%s\t%s\n' alice '{"event_id":"u-1","username":"alice","nickname":"Alice"}' >"$users"
    printf '%s\t%s\n' \
        7 '{"event_id":"s-1","game_id":7,"game_name":"Sandboxed","username":"alice","delta":10}' \
        7 '{"event_id":"s-2","game_id":7,"username":"bob","delta":5}' \
        8 '{"event_id":"s-3","game_id":8,"username":"alice","set":40}' \
        7 '{"event_id":"s-4","game_id":7,"username":"alice","delta":3}' \
        7 '{"event_id":"s-5","game_id":7,"username":"bob","delta":"x"}' >"$scores"
    sk_send "$T_USERS" "$users"
    sk_send "$T_SCORES" "$scores"
    if sk_results 6 60 >"$res"; then
        tap_ok "$what: 6 results for 6 events"
    else
        tap_fail "$what: 6 results for 6 events" "got $(wc -l <"$res"); log: $(tail -n 20 "$D_LOG")"
    fi
    tap_is "$what: results" \
        "$(jq -r '[.event_id, .status, (.score // .error.code // "-")] | join(" ")' "$res" | sort)" \
        "s-1 applied 10
s-2 applied 5
s-3 applied 40
s-4 applied 13
s-5 rejected wrong_type
u-1 applied -"
    tap_is "$what: rows" "$(sk_sql "$D_DB" "SELECT gp.game_id, u.username, gp.score FROM game_players gp
        JOIN users u ON u.id = gp.user_id ORDER BY 1, 2")" "7	alice	13
7	bob	5
8	alice	40"
    sk_daemon_stop
    tap_is "$what: SIGTERM: exit 0" "$D_RC" 0
    tap_check "$what: nothing refused in the log (EPERM, EACCES)" \
        bash -c "! grep -iE 'not permitted|permission denied' '$D_LOG'"
}

# ---- 1: unprivileged user, no_new_privs, no capabilities (sanitizer build)
make_wrapper "$SK_TEST_TMP/unpriv" "$REAL_SAN"
SK_DAEMON=$SK_TEST_TMP/unpriv
scenario hard_user 0 "nobody, no caps"
tap_check "nobody, no caps: no sanitizer reports" sk_daemon_logs_clean

# ---- 2: the same plus the units' seccomp filter and MemoryDenyWriteExecute
# sk_expand_group GROUP: the system call names of a systemd set, recursively.
sk_expand_group() {
    local w
    systemd-analyze syscall-filter "$1" 2>/dev/null | sed -n '2,$p' | while read -r w _; do
        [[ -z $w || $w == \#* ]] && continue
        if [[ $w == @* ]]; then sk_expand_group "$w"; else printf '%s\n' "$w"; fi
    done
}
filter_ok=1
if ! command -v systemd-analyze >/dev/null || ! command -v gcc >/dev/null; then
    filter_ok=0
    why="needs systemd-analyze (for the system call sets) and gcc"
fi
if ((filter_ok)); then
    sk_expand_group @system-service | LC_ALL=C sort -u >"$SK_TEST_TMP/service.list"
    { sk_expand_group @privileged; sk_expand_group @resources; } | LC_ALL=C sort -u >"$SK_TEST_TMP/denied.list"
    LC_ALL=C comm -23 "$SK_TEST_TMP/service.list" "$SK_TEST_TMP/denied.list" >"$SK_TEST_TMP/allowed.list"
    tap_diag "seccomp: $(wc -l <"$SK_TEST_TMP/allowed.list") system calls allowed of @system-service's $(wc -l <"$SK_TEST_TMP/service.list"); denied $(wc -l <"$SK_TEST_TMP/denied.list") of ~@privileged @resources"
    hdr=$SK_TEST_TMP/allowed.h
    {
        printf '#include <sys/syscall.h>\n'
        while read -r s; do
            printf '#ifdef __NR_%s\n#define SK_NR_%s __NR_%s,\n#else\n#define SK_NR_%s\n#endif\n' "$s" "$s" "$s" "$s"
        done <"$SK_TEST_TMP/allowed.list"
        printf '#define SK_ALLOWED'
        while read -r s; do printf ' SK_NR_%s' "$s"; done <"$SK_TEST_TMP/allowed.list"
        printf ' -1\n'
    } >"$hdr"
    helper=$SK_TEST_TMP/seccomp-exec
    if ! out=$(gcc -O2 -Wall -Wextra -Werror -include "$hdr" -o "$helper" "$SK_ROOT/tests/lib/seccomp-exec.c" 2>&1); then
        filter_ok=0
        why="tests/lib/seccomp-exec.c does not build here: $out"
    elif ! out=$(make -C "$SK_ROOT" --no-print-directory build/scorekeeper 2>&1); then
        filter_ok=0
        why="the plain build failed: $out"
    fi
fi
if ((filter_ok)); then
    chmod 0755 "$helper"
    # Controls: the filter must deny what the units deny, or passing means
    # nothing.  nice(1) calls setpriority() (@resources), setpriv(1) setresuid()
    # (@privileged); python's mmap with PROT_WRITE|PROT_EXEC is what
    # MemoryDenyWriteExecute= forbids, AF_NETLINK what RestrictAddressFamilies= does.
    tap_check "seccomp control: an allowed program runs" "$helper" /bin/true
    tap_check "seccomp control: setpriority() (@resources) fails with EPERM" \
        bash -c "'$helper' /usr/bin/nice -n 5 /bin/true 2>&1 | grep -q 'Operation not permitted'"
    tap_check "seccomp control: setuid() (@privileged) fails with EPERM" \
        bash -c "'$helper' /usr/bin/setpriv --reuid=nobody /bin/true 2>&1 | grep -qi 'not permitted'"
    if command -v python3 >/dev/null; then
        tap_check "seccomp control: an AF_NETLINK socket fails with EAFNOSUPPORT" \
            bash -c "'$helper' /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)' 2>&1 | grep -q 'Address family not supported'"
        tap_check "seccomp control: a writable+executable mapping fails with EPERM" \
            bash -c "'$helper' /usr/bin/python3 -c 'import mmap; mmap.mmap(-1, 4096, prot=7)' 2>&1 | grep -q PermissionError"
    fi
    make_wrapper "$SK_TEST_TMP/filtered" "$helper" "$REAL_PLAIN"
    SK_DAEMON=$SK_TEST_TMP/filtered
    scenario hard_seccomp 2 "nobody, no caps, seccomp" \
        -o kafka.bootstrap.servers="localhost:${KAFKA_BROKERS##*:}"
else
    tap_skip "seccomp run" "$why"
fi

tap_done
