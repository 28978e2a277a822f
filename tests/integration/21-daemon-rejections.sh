#!/usr/bin/env bash
# Every rejection code end to end: each invalid example of schemas/examples
# (plus an empty payload, a tombstone on the scores topic, a message over the
# size limit and a score pushed past BIGINT) goes through the broker between
# valid events; each gets a "rejected" result with exactly its code, and the
# valid events around them still apply.  (A tombstone on the users topic
# deletes a user: for one nobody created, "not_found"; test 33 has the rest.)
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

sk_daemon_setup rej 1
sk_daemon_start -o batch.linger_ms=10 || sk_bail "daemon did not start"

expect=$SK_TEST_TMP/expect.txt # topic-kind offset code
: >"$expect"
declare -A next_off=([user]=0 [score]=0)
topic_of() { if [[ $1 == user ]]; then echo "$T_USERS"; else echo "$T_SCORES"; fi; }

# produce KIND KEY-or-"" FILE CODE
produce() {
    local kind=$1 key=$2 file=$3 code=$4 args=()
    [[ -z $key ]] || args=(-k "$key")
    timeout 30 kcat -b "$KAFKA_BROKERS" -P -t "$(topic_of "$kind")" -X acks=all "${args[@]}" "$file"
    echo "$kind ${next_off[$kind]} $code" >>"$expect"
    next_off[$kind]=$((next_off[$kind] + 1))
}
# produce_line KIND LINE CODE [kcat args]: key<TAB>value in one line (empty/NULL payloads)
produce_line() {
    local kind=$1 line=$2 code=$3
    shift 3
    printf '%s\n' "$line" | timeout 30 kcat -b "$KAFKA_BROKERS" -P -t "$(topic_of "$kind")" -K $'\t' "$@"
    echo "$kind ${next_off[$kind]} $code" >>"$expect"
    next_off[$kind]=$((next_off[$kind] + 1))
}
valid() { # a valid event between the invalid ones
    local kind=$1 n=$2 f=$SK_TEST_TMP/valid.json
    if [[ $kind == user ]]; then
        printf '{"event_id":"ok-u%d","username":"ok%d","nickname":"N%d"}' "$n" "$n" "$n" >"$f"
        produce user "ok$n" "$f" applied
    else
        printf '{"event_id":"ok-s%d","game_id":5,"username":"ok%d","delta":1}' "$n" "$n" >"$f"
        produce score 5 "$f" applied
    fi
}

n=0
codes_seen=$SK_TEST_TMP/codes
: >"$codes_seen"
for kind in user score; do
    for f in "$SK_ROOT"/schemas/examples/$kind/invalid/*.json; do
        base=${f%.json}
        code=$(basename "$base")
        code=${code%%--*}
        echo "$code" >>"$codes_seen"
        if [[ -f $base.key ]]; then
            key=$(cat "$base.key")
        elif [[ $kind == user ]]; then
            key=$(jq -r '.username // "x"' "$f" 2>/dev/null || echo x)
        else
            key=$(jq -r '.game_id // 1' "$f" 2>/dev/null || echo 1)
        fi
        if [[ ! -s $f ]]; then
            produce_line "$kind" "k"$'\t' "$code"
        else
            produce "$kind" "$key" "$f" "$code"
        fi
        n=$((n + 1))
        valid "$kind" "$n"
    done
    if [[ $kind == user ]]; then
        produce_line "$kind" "k"$'\t' not_found -Z
    else
        produce_line "$kind" "k"$'\t' tombstone -Z
    fi
    big=$SK_TEST_TMP/big.json
    head -c 70000 /dev/zero | tr '\0' 'a' | sed 's/^/{"username":"/; s/$/"}/' >"$big"
    produce "$kind" k "$big" too_large
    n=$((n + 1))
    valid "$kind" "$n"
done
total=$(wc -l <"$expect")
ncodes=$(sort -u "$codes_seen" | wc -l)
tap_check "schemas/examples supply at least 15 distinct rejection codes ($ncodes; $total events in all)" \
    test "$ncodes" -ge 15

res=$SK_TEST_TMP/results.jsonl
sk_results "$total" 90 >"$res" || true
tap_is "one result per event" "$(wc -l <"$res")" "$total"

got=$(jq -r --arg tu "$T_USERS" '"\(if .source.topic == $tu then "user" else "score" end) \(.source.offset) \(if .status == "rejected" then .error.code else .status end)"' "$res" | sort -k1,1 -k2,2n)
want=$(sort -k1,1 -k2,2n "$expect")
tap_is "each event has exactly its expected status and code" "$got" "$want"
tap_is "rejection messages are non-empty" \
    "$(jq -r 'select(.status=="rejected") | select((.error.message|length) == 0) | .source.offset' "$res")" ""
tap_is "valid events between the invalid ones all applied" \
    "$(sk_sql "$D_DB" "SELECT COUNT(*) FROM users WHERE username LIKE 'ok%'")" "$((n))"

# BIGINT overflow: only the offending event is rejected; the next applies.
sk_sql "$D_DB" "UPDATE game_players gp JOIN users u ON u.id = gp.user_id SET gp.score = 9223372036854775800
                WHERE u.username = 'ok$n' AND gp.game_id = 5"
of=$SK_TEST_TMP/of.txt
printf '5\t{"event_id":"of-1","game_id":5,"username":"ok%d","delta":100}\n5\t{"event_id":"of-2","game_id":5,"username":"ok%d","delta":-800}\n' "$n" "$n" >"$of"
sk_send "$T_SCORES" "$of"
sk_results $((total + 2)) 60 | tail -n 2 >"$res.of" || true
tap_is "score pushed past BIGINT is rejected alone" \
    "$(jq -r '"\(.event_id) \(.status) \(.error.code // .score)"' "$res.of" | sort)" \
    "of-1 rejected score_overflow
of-2 applied 9223372036854775000"
tap_is "the stored score reflects only the applied event" "$(sk_score "$D_DB" 5 "ok$n")" 9223372036854775000

# Dead-letter topic: every rejected input, bytes unchanged, with headers.
rejected=$(grep -vcE ' (applied|not_found)$' "$expect")
rejected=$((rejected + 1)) # the BIGINT overflow
dlq=$SK_TEST_TMP/dlq
sk_consume "$T_DLQ" "$rejected" 60 -f '%t|%p|%o|%h\n' >"$dlq" 2>/dev/null || true
tap_is "every rejected input is copied to the dead-letter topic" "$(wc -l <"$dlq")" "$rejected"
tap_check "dead-letter headers give source topic, partition, offset, code and message" \
    grep -q "sk-source-topic=$T_SCORES,sk-source-partition=0,sk-source-offset=[0-9]*,sk-error-code=score_overflow,sk-error-message=adding 100" "$dlq"
# Bytes unchanged: the invalid-UTF-8 example comes back byte for byte.
# (the first invalid_utf8 user example in file order is the first one produced)
f=$(ls "$SK_ROOT"/schemas/examples/user/invalid/invalid_utf8--*.json | head -n 1)
off=$(awk '$1 == "user" && $3 == "invalid_utf8" {print $2; exit}' "$expect")
got_hex=$(kcat -b "$KAFKA_BROKERS" -C -t "$T_DLQ" -o beginning -c "$rejected" -q \
    -f '%h\t%s\n' 2>/dev/null | grep -a "sk-source-topic=$T_USERS,sk-source-partition=0,sk-source-offset=$off," |
    cut -f2- | head -c "$(stat -c %s "$f")" | od -An -tx1 | tr -d ' \n')
tap_is "the dead-letter copy is the input byte for byte" "$got_hex" "$(od -An -tx1 "$f" | tr -d ' \n')"

sk_daemon_stop
tap_is "SIGTERM: clean exit 0" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
