#!/usr/bin/env bash
# Issue 22: a stop whose deadline passes must still end in an orderly exit.
# A score event of about 1,000,000 bytes is rejected (too_large).  Its
# dead-letter topic takes no record of more than 100 bytes, so the copy can
# be delivered in no form: too large for the producer, then cut to fit it,
# then headers alone, each refused; the copy waits, the daemon says which
# topic refuses and why and stops being ready.  201 valid events for the
# same key follow and apply.  On SIGTERM the drain cannot finish, the
# deadline (shutdown.timeout_ms) passes, and the daemon must exit by itself
# with status 1, with no sanitizer report.  Before the fix, teardown freed
# the scheduler and then closed the consumer, whose revocation callback
# used the freed scheduler: a crash in teardown.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

# A sanitizer stopping the process exits 1 by default: the same status as a
# passed deadline.  Give the sanitizers their own status so the two differ.
export ASAN_OPTIONS="$ASAN_OPTIONS:exitcode=86"
export UBSAN_OPTIONS="$UBSAN_OPTIONS:exitcode=86"

n_valid=201
sk_daemon_setup stopbig 1
dlq=$(sk_unique stopbig.dlq100)
printf '%s\n' "$dlq" >>"$SK_TEST_TMP/.topics"
"$SK_TOOLS/mktopic" -b "$KAFKA_BROKERS" -c max.message.bytes=100 "$dlq" 1 >/dev/null ||
    sk_bail "cannot create the dead-letter topic that takes nothing"
sk_daemon_start -o shutdown.timeout_ms=3000 -o batch.linger_ms=10 -o "topic.dead_letter=$dlq" ||
    sk_bail "daemon did not start"
url=$(sk_metrics_url)
[[ -n $url ]] || sk_bail "the daemon's log does not say where its metrics are"
metric() { curl -s --max-time 5 "$url/metrics" | awk -v n="$1" '$1 == n {print $2}'; }

# One valid score event padded with JSON whitespace to exactly 1,000,000
# bytes: over limits.max_message_bytes (64 KiB), under the test broker's
# message.max.bytes (the default 1048588), over librdkafka's default
# message.max.bytes (1000000) once a key and the dead-letter headers are
# added.  kcat needs a larger limit of its own to send it.
big=$SK_TEST_TMP/big.json
sk_padded_score "$big" 1000000
tap_is "the large event is 1,000,000 bytes of valid JSON" \
    "$(stat -c %s "$big") $(jq -c . "$big")" \
    '1000000 {"event_id":"big-1","game_id":3,"username":"big","delta":1}'
timeout 60 kcat -b "$KAFKA_BROKERS" -P -t "$T_SCORES" -k 3 -X acks=all -X message.max.bytes=2000000 "$big" ||
    sk_bail "the broker did not take the large event"

# Then the valid events, same key: p0, p1, p2 get 67 points each.
valid=$SK_TEST_TMP/valid.txt
for i in $(seq 1 "$n_valid"); do
    printf '3\t{"event_id":"v-%d","game_id":3,"username":"p%d","delta":1}\n' "$i" $((i % 3))
done >"$valid"
sk_send "$T_SCORES" "$valid" || sk_bail "could not send the valid events"

res=$SK_TEST_TMP/results.jsonl
sk_results $((n_valid + 1)) 120 >"$res" || true
tap_is "a result for every event ($((n_valid + 1)))" "$(wc -l <"$res")" $((n_valid + 1))
tap_is "the large event is rejected as too_large" \
    "$(jq -r 'select(.source.offset == 0) | "\(.status) \(.error.code)"' "$res")" \
    "rejected too_large"
tap_is "the valid events applied" \
    "$(jq -r 'select(.source.offset > 0) | .status' "$res" | sort | uniq -c | sed 's/^ *//')" "$n_valid applied"
tap_is "the rows are in the database" \
    "$(sk_game_scores "$D_DB" 3)" \
    "p0=67,p1=67,p2=67"

# Stop only once the daemon itself counts the valid events' results as
# delivered: then the one event left in flight is the large one, whose
# dead-letter copy can never be delivered.
inflight='' delivered=''
for _ in $(seq 1 600); do
    delivered=$(metric scorekeeper_results_delivered_total)
    inflight=$(metric scorekeeper_events_in_flight)
    [[ $delivered == $((n_valid + 1)) && $inflight == 1 ]] && break
    sleep 0.1
done
tap_is "before the stop: every result delivered, one event (the large one) still in flight" \
    "$delivered $inflight" "$((n_valid + 1)) 1"
tap_is "its dead-letter copy was never delivered" "$(metric scorekeeper_dead_letters_delivered_total)" 0
for _ in $(seq 1 600); do
    [[ $(metric scorekeeper_output_refused) == 1 ]] && break
    sleep 0.1
done
tap_is "it was tried smaller twice (cut to fit, then headers alone)" \
    "$(curl -s --max-time 5 "$url/metrics" | awk '$1 == "scorekeeper_outputs_cut_total{output=\"dead_letter\"}" {print $2}')" 2
tap_check "the log says which topic refuses the copy, and why" \
    grep -q "delivery to $dlq refused: Broker: Message size too large" "$D_LOG"
tap_is "the daemon is not ready while a topic refuses its outputs" \
    "$(metric scorekeeper_output_refused) $(metric scorekeeper_ready) $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url/healthz")" \
    "1 0 503"

# SIGTERM; the deadline is 3 s, so 120 s is only a guard against a hang.
kill -TERM "$D_PID"
t0=$SECONDS
for _ in $(seq 1 1200); do
    kill -0 "$D_PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$D_PID" 2>/dev/null; then
    tap_fail "the daemon exits by itself after SIGTERM" "still running $((SECONDS - t0)) s after SIGTERM; killing it"
    kill -KILL "$D_PID" 2>/dev/null || true
fi
rc=0
wait "$D_PID" || rc=$?
D_PID=
tap_is "it exits with the passed deadline's status 1 (not a signal, not a sanitizer abort)" "$rc" 1
tap_check "the log says it stopped with the event in flight" \
    grep -q 'SIGTERM: stopping; finishing 1 events in flight' "$D_LOG"
tap_check "the log says the deadline passed with the event in flight" \
    grep -q 'shutdown deadline passed with 1 events in flight' "$D_LOG"
tap_check "no sanitizer reports" sk_daemon_logs_clean
if ((_tap_failed)); then
    tap_diag "daemon log (last 40 lines):"
    tap_diag "$(tail -n 40 "$D_LOG")"
fi
tap_done
