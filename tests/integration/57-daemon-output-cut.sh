#!/usr/bin/env bash
# Issue 19, item 1: an output over a size limit must not freeze its
# partition.  With the producer's message.max.bytes at 100,000:
#  - a 300,000-byte score event is rejected (too_large) and its dead-letter
#    copy, too large to send whole, goes out cut to fit, with the headers
#    sk-truncated and sk-original-size;
#  - a valid event whose echoed correlation-id header alone is 110,000 bytes
#    applies, and its result goes out without the echoed headers;
#  - every event gets its result, nothing stays in flight, each cut is
#    logged and counted, and SIGTERM drains and exits 0 (before, the copy
#    and the result were refused and queued again forever: the partition's
#    offsets stopped and the stop waited for its deadline).
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

n_valid=50
sk_daemon_setup cut 1
sk_daemon_start -o kafka.message.max.bytes=100000 -o batch.linger_ms=10 ||
    sk_bail "daemon did not start"
url=$(sk_metrics_url)
[[ -n $url ]] || sk_bail "the daemon's log does not say where its metrics are"
metrics() { curl -s --max-time 5 "$url/metrics"; }
metric() { metrics | awk -v n="$1" '$1 == n {print $2}'; }

# offset 0: valid JSON padded with spaces to 300,000 bytes
big=$SK_TEST_TMP/big.json
sk_padded_score "$big" 300000
timeout 60 kcat -b "$KAFKA_BROKERS" -P -t "$T_SCORES" -k 3 -X acks=all "$big" ||
    sk_bail "the broker did not take the large event"
# offset 1: a small valid event with a 110,000-byte correlation-id
ev=$SK_TEST_TMP/ev.json
printf '{"event_id":"hdr-1","game_id":3,"username":"p0","delta":1}' >"$ev"
long=$(head -c 110000 /dev/zero | tr '\0' 'x')
sk_produce "$T_SCORES" 3 "$ev" "correlation-id=$long" ||
    sk_bail "the broker did not take the event with the long header"
# offsets 2..: valid events with a short correlation-id
for i in $(seq 1 "$n_valid"); do
    printf '{"event_id":"v-%d","game_id":3,"username":"p%d","delta":1}' "$i" $((i % 3)) >"$ev"
    sk_produce "$T_SCORES" 3 "$ev" "correlation-id=c-$i" || sk_bail "could not send event $i"
done

n=$((n_valid + 2))
res=$SK_TEST_TMP/results.txt
# source offset <TAB> the result's headers <TAB> the result
sk_consume "$T_RESULTS" "$n" 120 -f '%s\t%h\n' >"$res.raw" || true
while IFS=$'\t' read -r r h; do
    printf '%s\t%s\t%s\n' "$(jq -r .source.offset <<<"$r")" "$h" "$r"
done <"$res.raw" >"$res"
tap_is "a result for every event ($n)" "$(wc -l <"$res")" "$n"
tap_is "the large event is rejected as too_large" \
    "$(awk -F'\t' '$1 == 0 {print $3}' "$res" | jq -r '"\(.status) \(.error.code)"')" "rejected too_large"
tap_is "the event with the long header applied" \
    "$(awk -F'\t' '$1 == 1 {print $3}' "$res" | jq -r .status)" applied
tap_is "its result went out without the echoed headers" \
    "$(awk -F'\t' '$1 == 1 {print ($2 == "" ? "none" : "some")}' "$res")" none
tap_is "the others keep their correlation-id" \
    "$(awk -F'\t' '$1 == 2 {print $2}' "$res")" "correlation-id=c-1"
tap_is "the rows are in the database (p0 got the long-header event too)" \
    "$(sk_game_scores "$D_DB" 3)" \
    "p0=17,p1=17,p2=17"

dl=$SK_TEST_TMP/dlq.bin
timeout 60 kcat -b "$KAFKA_BROKERS" -C -t "$T_DLQ" -o beginning -c 1 -q -f '%h\n' >"$SK_TEST_TMP/dlq.h" || true
timeout 60 kcat -b "$KAFKA_BROKERS" -C -t "$T_DLQ" -o beginning -c 1 -q -D '' -f '%s' >"$dl" || true
hdrs=$(cat "$SK_TEST_TMP/dlq.h")
tap_check "the dead-letter copy says it is cut, and the original size" \
    grep -q 'sk-truncated=true.*sk-original-size=300000' "$SK_TEST_TMP/dlq.h"
tap_check "and still where it came from and why" \
    grep -q "sk-source-topic=$T_SCORES,sk-source-partition=0,sk-source-offset=0,sk-error-code=too_large" "$SK_TEST_TMP/dlq.h"
size=$(stat -c %s "$dl")
tap_check "its payload fits the limit ($size bytes)" test "$size" -gt 90000 -a "$size" -le 100000
tap_check "and is the input's first bytes" cmp -s "$dl" <(head -c "$size" "$big")

tap_is "each cut counted once" \
    "$(metrics | awk '$1 ~ /^scorekeeper_outputs_cut_total/ {printf "%s ", $2}')" "1 1 "
tap_check "and logged: the dead-letter copy" grep -q 'dead-letter copy of .* at 0 is too large .*cut to fit' "$D_LOG"
tap_check "and logged: the result" grep -q 'result of .* at 1 is too large .*without the echoed headers' "$D_LOG"
for _ in $(seq 1 600); do
    [[ $(metric scorekeeper_events_in_flight) == 0 ]] && break
    sleep 0.1
done
tap_is "nothing stays in flight" "$(metric scorekeeper_events_in_flight)" 0
tap_is "no topic refuses the outputs; the daemon is ready" \
    "$(metric scorekeeper_output_refused) $(metric scorekeeper_ready)" "0 1"

sk_daemon_stop
tap_is "SIGTERM drains and exits 0" "$D_RC" 0
tap_check "the drain finished (no deadline)" grep -q 'drained: every consumed event has its result' "$D_LOG"
tap_check "no sanitizer reports" sk_daemon_logs_clean
if ((_tap_failed)); then
    tap_diag "daemon log (last 40 lines):"
    tap_diag "$(tail -n 40 "$D_LOG")"
fi
tap_done
