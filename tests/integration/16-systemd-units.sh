#!/usr/bin/env bash
# The systemd units as installed: `systemd-analyze verify` accepts both (with
# ExecStart= pointing at the binary of a DESTDIR install, and the man pages of
# Documentation= found there), and `systemd-analyze security --offline=true`
# rates both at an overall exposure of at most 2.0.  Offline: no systemd as
# PID 1 is needed.  Also: every directive the sandbox relies on is present,
# and TimeoutStopSec= leaves room for the daemon's own drain deadline.
source "$(dirname "$0")/../lib/testlib.sh"

max_exposure=2.0
units=(scorekeeper.service scorekeeper@.service)

if ! command -v systemd-analyze >/dev/null; then
    for u in "${units[@]}"; do tap_skip "$u: verify and security" "systemd-analyze is not installed"; done
    tap_done
    exit 0
fi
tap_diag "$(systemd-analyze --version | head -n1)"

root=$SK_TEST_TMP/root
if out=$(make -C "$SK_ROOT" --no-print-directory install DESTDIR="$root" PREFIX=/usr 2>&1); then
    tap_ok "make install DESTDIR=… PREFIX=/usr"
else
    tap_fail "make install DESTDIR=… PREFIX=/usr" "$out"
    tap_done
    exit 1
fi
bin=$root/usr/bin/scorekeeper
unitdir=$root/usr/lib/systemd/system
# The installed units name /usr/bin/scorekeeper, which does not exist here:
# verify checks that ExecStart= is executable, so point it at the staged one.
vdir=$SK_TEST_TMP/units
mkdir -p "$vdir"
for u in "${units[@]}"; do
    sed "s|^ExecStart=/usr/bin/scorekeeper |ExecStart=$bin |" "$unitdir/$u" >"$vdir/$u"
done
# Documentation=man:… is checked with man(1): find ours in the staging root.
export MANPATH=$root/usr/share/man

tap_is "no @placeholder@ left in the installed units" \
    "$(grep -ho '@[a-z]*@' "$unitdir"/scorekeeper*.service | sort -u | tr '\n' ' ')" ""
tap_is "ExecStart= of scorekeeper.service" \
    "$(grep '^ExecStart=' "$unitdir/scorekeeper.service")" \
    "ExecStart=/usr/bin/scorekeeper --config /etc/scorekeeper/scorekeeper.conf"
tap_is "ExecStart= of scorekeeper@.service reads INSTANCE.conf" \
    "$(grep '^ExecStart=' "$unitdir/scorekeeper@.service")" \
    "ExecStart=/usr/bin/scorekeeper --config /etc/scorekeeper/%i.conf"

# A control: verify must fail on a broken unit here, or its passing means
# nothing.
sed "s|^ExecStart=[^ ]*|ExecStart=/nonexistent/scorekeeper|" "$vdir/scorekeeper.service" >"$vdir/broken.service"
if systemd-analyze verify "$vdir/broken.service" >/dev/null 2>&1; then
    tap_fail "control: verify rejects a unit whose ExecStart= does not exist" "it accepted it"
else
    tap_ok "control: verify rejects a unit whose ExecStart= does not exist"
fi
rm -f "$vdir/broken.service"

# Directives every unit must carry (name=value as written).
required=(
    Type=notify NotifyAccess=main WatchdogSec=30s Restart=on-failure RestartSec=2s
    StartLimitIntervalSec=300 StartLimitBurst=5 TimeoutStartSec=90s TimeoutStopSec=45s
    DynamicUser=yes PrivateUsers=yes UMask=0077 NoNewPrivileges=yes CapabilityBoundingSet=
    AmbientCapabilities= ProtectSystem=strict ProtectHome=yes PrivateTmp=yes
    PrivateDevices=yes DevicePolicy=closed ProtectKernelTunables=yes ProtectKernelModules=yes
    ProtectKernelLogs=yes ProtectControlGroups=yes ProtectClock=yes ProtectHostname=yes
    ProtectProc=invisible ProcSubset=pid KeyringMode=private RemoveIPC=yes LockPersonality=yes
    MemoryDenyWriteExecute=yes RestrictRealtime=yes RestrictSUIDSGID=yes RestrictNamespaces=yes
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" SystemCallArchitectures=native
    SystemCallFilter=@system-service "SystemCallFilter=~@privileged @resources"
    SystemCallErrorNumber=EPERM LoadCredential=db.password:/etc/scorekeeper/db.password
)

# shutdown.timeout_ms default, from the binary itself.
drain_ms=$("$bin" --help | sed -n 's/^  shutdown\.timeout_ms .*default \([0-9]*\)).*/\1/p')

for u in "${units[@]}"; do
    inst=$u
    [[ $u == *@.service ]] && inst=${u%@.service}@1.service
    missing=()
    for d in "${required[@]}"; do
        grep -qxF "$d" "$unitdir/$u" || missing+=("$d")
    done
    tap_is "$u: carries every required directive" "${missing[*]}" ""

    stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unitdir/$u")
    if [[ -n $drain_ms && -n $stop_s ]] && ((stop_s * 1000 > drain_ms)); then
        tap_ok "$u: TimeoutStopSec=${stop_s}s exceeds the default drain deadline (${drain_ms} ms)"
    else
        tap_fail "$u: TimeoutStopSec= exceeds the default drain deadline" \
            "TimeoutStopSec=${stop_s:-?}s, shutdown.timeout_ms default ${drain_ms:-?}"
    fi

    rc=0
    out=$(systemd-analyze verify "$vdir/$inst" 2>&1) || rc=$?
    if ((rc == 0)) && [[ -z $out ]]; then
        tap_ok "$u: systemd-analyze verify $inst: no errors, no warnings"
    else
        tap_fail "$u: systemd-analyze verify $inst: no errors, no warnings" "exit $rc
$out"
    fi

    rc=0
    out=$(systemd-analyze security --offline=true --no-pager "$vdir/$inst" 2>&1) || rc=$?
    level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p' <<<"$out")
    if [[ -z $level ]]; then
        tap_fail "$u: systemd-analyze security --offline=true rates it" "exit $rc
$out"
        continue
    fi
    tap_diag "$u: overall exposure level $level (threshold $max_exposure)"
    if awk -v l="$level" -v m="$max_exposure" 'BEGIN { exit !(l <= m) }'; then
        tap_ok "$u: overall exposure $level <= $max_exposure"
    else
        tap_fail "$u: overall exposure $level <= $max_exposure" \
            "$(grep -E '^✗' <<<"$out" || true)"
    fi
done

tap_done
