#!/usr/bin/env bash
# Kafka round trip: a message produced with a key and two headers comes back
# byte for byte; mktopic creates topics with the asked partition count and
# deletes them (-d, how every test's topics go at exit).
# shellcheck source=tests/lib/testlib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/testlib.sh"

if [[ $SK_STACK_OURS == 1 ]]; then
    cmd=$(tr '\0' ' ' <"/proc/$KAFKA_PID/cmdline" 2>/dev/null || true)
    exe=$(readlink "/proc/$KAFKA_PID/exe" 2>/dev/null || true)
    if [[ $cmd == *" kafka.Kafka "* && $exe == */java ]]; then
        tap_ok "broker pid $KAFKA_PID is a kafka.Kafka JVM"
    else
        tap_fail "broker pid $KAFKA_PID is a kafka.Kafka JVM" "exe=$exe cmdline=$cmd"
    fi
    # Every listening socket of the broker must be on loopback only.
    listen=$(ss -Hltnp | grep "pid=$KAFKA_PID," | awk '{print $4}' || true)
    if [[ -n $listen ]] && ! grep -qvE '^(\[::ffff:)?127\.0\.0\.1\]?:[0-9]+$' <<<"$listen"; then
        tap_ok "broker listens on 127.0.0.1 only"
    else
        tap_fail "broker listens on 127.0.0.1 only" "listening: $listen"
    fi
else
    tap_skip "broker is a kafka.Kafka JVM" "external broker $KAFKA_BROKERS"
fi

# --- mktopic
topic=$(sk_unique rt)
tap_check "mktopic creates $topic with 3 partitions" sk_mktopic "$topic" 3
nparts=$(kcat -b "$KAFKA_BROKERS" -L -J -t "$topic" -m 10 2>/dev/null |
    jq -r '.topics[0].partitions | length' || echo "?")
tap_is "metadata shows 3 partitions" "$nparts" 3
tap_check "mktopic on an existing topic succeeds" sk_mktopic "$topic" 3
if out=$(sk_mktopic "$topic" 5 2>&1); then
    tap_fail "mktopic rejects an existing topic with another partition count" "exit 0: $out"
elif [[ $out == *"exists with 3 partitions, not 5"* ]]; then
    tap_ok "mktopic rejects an existing topic with another partition count"
else
    tap_fail "mktopic rejects an existing topic with another partition count" "unexpected: $out"
fi
if out=$("$SK_TOOLS/mktopic" -b "$KAFKA_BROKERS" "$(sk_unique bad)" 0 2>&1); then
    tap_fail "mktopic rejects 0 partitions" "exit 0: $out"
else
    tap_ok "mktopic rejects 0 partitions"
fi
if out=$("$SK_TOOLS/mktopic" -b "$KAFKA_BROKERS" -t 5000 'bad/name' 1 2>&1); then
    tap_fail "mktopic reports an invalid topic name" "exit 0: $out"
elif [[ -n $out ]]; then
    tap_ok "mktopic reports an invalid topic name"
else
    tap_fail "mktopic reports an invalid topic name" "failed without a message"
fi

# --- round trip.  Payload with UTF-8, tab, CR, a comma and a trailing
# newline; key with a space; headers whose values contain '=' and UTF-8.
payload=$SK_TEST_TMP/payload
printf '{"game":42,"name":"Quiz \xc3\xa9t\xc3\xa9\t\xf0\x9f\x8e\xb2","x":"a,b\r"}\n' >"$payload"
key='game 42'
h1='trace-id=00-4bf92f3577b34da6-01'
h2='source=quiz=\xc3\xa9'
h2=$(printf '%b' "$h2")
tap_check "produce one message with key and 2 headers" \
    sk_produce "$topic" "$key" "$payload" "$h1" "$h2"

got=$SK_TEST_TMP/got
# %S/%K are payload/key lengths, so byte counts are checked too.
if sk_consume "$topic" 1 30 -f 'len=%S klen=%K key=%k|headers=%h|payload=%s' >"$got" 2>"$SK_TEST_TMP/consume.err"; then
    tap_ok "consume the message back"
else
    tap_fail "consume the message back" "$(cat "$SK_TEST_TMP/consume.err")"
fi
want=$SK_TEST_TMP/want
{
    printf 'len=%d klen=%d key=%s|headers=%s,%s|payload=' \
        "$(stat -c %s "$payload")" "${#key}" "$key" "$h1" "$h2"
    cat "$payload"
} >"$want"
if cmp -s "$want" "$got"; then
    tap_ok "payload, key and both headers are byte-exact"
else
    tap_fail "payload, key and both headers are byte-exact" \
        "want: $(od -c "$want" | head -20)
got:  $(od -c "$got" | head -20)"
fi

# The payload alone, through the plain helper, must also match (guards
# against the format above masking a difference).
if sk_consume "$topic" 1 30 -f '%s' >"$got.plain" 2>/dev/null && cmp -s "$payload" "$got.plain"; then
    tap_ok "payload bytes identical via plain consume"
else
    tap_fail "payload bytes identical via plain consume" "$(od -c "$got.plain" 2>/dev/null | head)"
fi

# A second message with no key/headers, so counting works: exactly 2 now.
printf 'second' >"$SK_TEST_TMP/p2"
sk_produce "$topic" "" "$SK_TEST_TMP/p2" >/dev/null 2>&1 || true
count=$(sk_consume "$topic" 2 30 -f 'M\n' 2>/dev/null | wc -l)
tap_is "two messages on the topic" "$count" 2
if sk_consume "$topic" 3 5 -f 'M\n' >/dev/null 2>&1; then
    tap_fail "consuming a third message times out" "sk_consume returned 3 messages"
else
    tap_ok "consuming a third message times out"
fi

# --- mktopic -d
gone=$(sk_unique del)
sk_mktopic "$gone" 1 >/dev/null 2>&1
listed() { # (no grep -q in the pipe: under pipefail jq's SIGPIPE would fail it)
    local names
    names=$(kcat -b "$KAFKA_BROKERS" -L -J -m 10 2>/dev/null | jq -r '.topics[].topic') &&
        grep -qxF "$1" <<<"$names"
}
tap_check "the topic to delete is listed" listed "$gone"
tap_check "mktopic -d deletes it, and a topic that does not exist counts as deleted" \
    "$SK_TOOLS/mktopic" -b "$KAFKA_BROKERS" -d "$gone" "$(sk_unique never_made)"
for ((i = 0; i < 50; i++)); do listed "$gone" || break; sleep 0.2; done
if listed "$gone"; then
    tap_fail "the deleted topic leaves the metadata" "still listed after 10 s"
else
    tap_ok "the deleted topic leaves the metadata"
fi
twice=$(sk_unique twice)
sk_mktopic "$twice" 1 >/dev/null 2>&1
rc=0
out=$("$SK_TOOLS/mktopic" -b "$KAFKA_BROKERS" -d "$twice" "$twice" 2>&1) || rc=$?
if [[ $rc == 1 && $out == *"cannot delete topic '$twice'"* && $out != *Sanitizer* ]]; then
    tap_ok "mktopic -d with a topic named twice fails with the broker's reason"
else
    tap_fail "mktopic -d with a topic named twice fails with the broker's reason" "exit $rc: $out"
fi
rc=0
"$SK_TOOLS/mktopic" -b "$KAFKA_BROKERS" -d >/dev/null 2>&1 || rc=$?
tap_is "mktopic -d without a topic is a usage error" "$rc" 2

tap_done
