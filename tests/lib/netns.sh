# shellcheck shell=bash
# A network path whose packets a test can drop: the daemon runs in a network
# namespace of its own, joined to the host by a veth pair; the services stay
# where they are (127.0.0.1 of the host).  A drop is an nftables rule in the
# namespace's own table on the veth, so the peer is silent (no RST, no ICMP)
# and the host's firewall is never touched.  Source after testlib.sh,
# daemon.sh and faults.sh.  Needs root, ip, nft and socat; without them the
# test is skipped.
#
#   sk_netns_up               create it; sets SK_NS (name), SK_NS_HOST (the
#                             host's address on the veth), SK_NS_PEER (the
#                             namespace's address) and SK_NS_EXEC (a command
#                             prefix: "${SK_NS_EXEC[@]}" CMD runs CMD inside)
#   sk_netns_forward PORT     SK_NS_HOST:PORT forwards to 127.0.0.1:PORT (socat
#                             on the host, one child per connection)
#   sk_netns_loopback PORT    inside, 127.0.0.1:PORT reaches SK_NS_HOST:PORT
#                             (DNAT): a Kafka broker advertises 127.0.0.1:PORT
#   sk_netns_silence PORT     drop every packet to and from SK_NS_HOST:PORT
#   sk_netns_speak PORT       stop dropping them
#   sk_netns_conns PORT       the namespace-side ports of the connections to
#                             SK_NS_HOST:PORT established now, one a line
#   sk_netns_silence_conns PORT...
#                             drop the packets of those connections (given by
#                             their namespace-side ports) and of no other: a
#                             firewall that forgot them; new ones still pass
#   sk_netns_speak_conns      stop dropping the packets of single connections
#
# Everything goes at exit: the forwarders, every process left in the
# namespace (only the test's own run there), the namespace, and with it the
# veth pair and the table.  The EXIT trap does it; a reaper started with the
# namespace does it too once the test's process is gone, for the exits where
# no trap runs (SIGKILL after a timeout, a trap lost to a signal).

SK_NS=
SK_NS_HOST=
SK_NS_PEER=
SK_NS_EXEC=()
_SK_NS_FWD=()
_SK_NS_VETH=
_SK_NS_STATE=

# The reaper: waits for the test's process to end, then stops the
# forwarders still listed in the state file and deletes the namespace.
# shellcheck disable=SC2016 # expanded by the reaper's own shell
_SK_NS_REAPER='
pid=$1 ns=$2 veth=$3 state=$4
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
if [ -s "$state" ]; then
    while read -r p; do kill -TERM -- "-$p" 2>/dev/null; done <"$state"
fi
rm -f -- "$state"
for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
ip netns del "$ns" 2>/dev/null
ip link del "$veth" 2>/dev/null
exit 0'

_sk_netns_nft() { "${SK_NS_EXEC[@]}" nft "$@"; }

sk_netns_up() {
    local t
    for t in ip nft socat ss; do
        command -v "$t" >/dev/null || { tap_skip "network namespace" "$t is not installed"; tap_done; exit 0; }
    done
    [[ $(id -u) -eq 0 ]] || { tap_skip "network namespace" "needs root"; tap_done; exit 0; }
    SK_NS=sk-ns-$$
    _SK_NS_VETH=skv$$
    local net i
    for ((i = 0; i < 50; i++)); do
        net=$((RANDOM % 250 + 1))
        ip -4 -o addr show | grep -q " 10\.211\.$net\." || break
    done
    ip netns add "$SK_NS" || sk_bail "cannot create network namespace $SK_NS"
    _SK_NS_STATE=$(mktemp "${TMPDIR:-/tmp}/sk-netns.XXXXXX") || sk_bail "mktemp failed"
    setsid bash -c "$_SK_NS_REAPER" reaper "$$" "$SK_NS" "${_SK_NS_VETH}h" "$_SK_NS_STATE" \
        </dev/null >/dev/null 2>&1 &
    SK_NS_EXEC=(ip netns exec "$SK_NS")
    SK_NS_HOST=10.211.$net.1
    SK_NS_PEER=10.211.$net.2
    ip link add "${_SK_NS_VETH}h" type veth peer name "${_SK_NS_VETH}n" &&
        ip link set "${_SK_NS_VETH}n" netns "$SK_NS" &&
        ip addr add "$SK_NS_HOST/30" dev "${_SK_NS_VETH}h" &&
        ip link set "${_SK_NS_VETH}h" up &&
        ip -n "$SK_NS" addr add "$SK_NS_PEER/30" dev "${_SK_NS_VETH}n" &&
        ip -n "$SK_NS" link set "${_SK_NS_VETH}n" up &&
        ip -n "$SK_NS" link set lo up ||
        sk_bail "cannot set up the veth pair of $SK_NS"
    # The drops: host-side ports (every connection) and namespace-side ports
    # (single connections), matched on the wire, before and after NAT.
    _sk_netns_nft -f - <<NFT || sk_bail "cannot create the nftables table in $SK_NS"
table inet sk_drop {
    set ports { type inet_service; }
    set conns { type inet_service; }
    chain wire_in {
        type filter hook prerouting priority -300; policy accept;
        iifname "${_SK_NS_VETH}n" ip saddr $SK_NS_HOST tcp sport @ports drop
        iifname "${_SK_NS_VETH}n" ip saddr $SK_NS_HOST tcp dport @conns drop
    }
    chain wire_out {
        type filter hook postrouting priority 300; policy accept;
        oifname "${_SK_NS_VETH}n" ip daddr $SK_NS_HOST tcp dport @ports drop
        oifname "${_SK_NS_VETH}n" ip daddr $SK_NS_HOST tcp sport @conns drop
    }
}
NFT
    for ((i = 0; i < 50; i++)); do
        ip -n "$SK_NS" -o link show dev "${_SK_NS_VETH}n" | grep -q LOWER_UP && break
        sleep 0.1
    done
    tap_diag "network namespace $SK_NS: host $SK_NS_HOST, namespace $SK_NS_PEER"
}

sk_netns_forward() {
    local port=$1 i
    setsid socat "TCP-LISTEN:$port,bind=$SK_NS_HOST,reuseaddr,fork" "TCP:127.0.0.1:$port" \
        </dev/null 2>>"$SK_TEST_TMP/netns-fwd.log" &
    _SK_NS_FWD+=($!)
    printf '%s\n' "$!" >>"$_SK_NS_STATE"
    for ((i = 0; i < 50; i++)); do
        ss -Hltn "src $SK_NS_HOST:$port" | grep -q . && return 0
        sleep 0.1
    done
    sk_bail "the forwarder on $SK_NS_HOST:$port did not start: $(tail -n 3 "$SK_TEST_TMP/netns-fwd.log")"
}

sk_netns_loopback() {
    local port=$1
    # A packet from 127.0.0.1 may leave by the veth only with route_localnet;
    # it leaves with the namespace's address (masquerade).
    "${SK_NS_EXEC[@]}" sysctl -qw net.ipv4.conf.all.route_localnet=1 \
        "net.ipv4.conf.${_SK_NS_VETH}n.route_localnet=1" >/dev/null ||
        sk_bail "cannot set route_localnet in $SK_NS"
    _sk_netns_nft list table ip sk_nat >/dev/null 2>&1 || _sk_netns_nft -f - <<NFT ||
table ip sk_nat {
    chain out { type nat hook output priority -100; policy accept; }
    chain post {
        type nat hook postrouting priority 100; policy accept;
        oifname "${_SK_NS_VETH}n" ip saddr 127.0.0.0/8 masquerade
    }
}
NFT
        sk_bail "cannot create the nat table in $SK_NS"
    _sk_netns_nft add rule ip sk_nat out ip daddr 127.0.0.1 tcp dport "$port" \
        dnat to "$SK_NS_HOST:$port" || sk_bail "cannot forward 127.0.0.1:$port in $SK_NS"
}

sk_netns_silence() { _sk_netns_nft add element inet sk_drop ports "{ $1 }"; }
sk_netns_speak() { _sk_netns_nft delete element inet sk_drop ports "{ $1 }"; }

sk_netns_conns() {
    "${SK_NS_EXEC[@]}" ss -Htn state established "dst $SK_NS_HOST:$1" |
        awk '{ n = split($3, a, ":"); print a[n] }'
}

sk_netns_silence_conns() {
    local p
    for p in "$@"; do _sk_netns_nft add element inet sk_drop conns "{ $p }" || return 1; done
}

sk_netns_speak_conns() { _sk_netns_nft flush set inet sk_drop conns; }

_sk_netns_cleanup() {
    local p
    for p in "${_SK_NS_FWD[@]}"; do
        kill -TERM -- "-$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    _SK_NS_FWD=()
    # Stopped: the reaper must not signal these ids again.
    [[ -z $_SK_NS_STATE ]] || : >"$_SK_NS_STATE"
    [[ -n $SK_NS ]] || return 0
    for p in $(ip netns pids "$SK_NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$SK_NS" 2>/dev/null || printf '# warning: could not delete network namespace %s\n' "$SK_NS"
    ip link del "${_SK_NS_VETH}h" 2>/dev/null || true
    SK_NS=
}
trap '_d_rc=$?; set +e; _fault_cleanup; _sk_daemon_cleanup; _sk_netns_cleanup; _sk_cleanup "$_d_rc"' EXIT
