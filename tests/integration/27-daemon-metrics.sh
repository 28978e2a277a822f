#!/usr/bin/env bash
# /metrics in Prometheus text format, scraped during a run, shows counters
# that match the events sent; /healthz answers 200 when ready and 503 when
# the database is unreachable.  Every series scraped is documented in
# scorekeeper(8) METRICS (with its type and labels), and every documented
# series not marked "conditional" there is scraped.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

sk_daemon_setup metrics 1
sk_daemon_start -o batch.linger_ms=10 || sk_bail "daemon did not start"
url=$(sk_metrics_url)
tap_check "the daemon logs where its metrics are ($url)" test -n "$url"

u=$SK_TEST_TMP/u.txt
f=$SK_TEST_TMP/s.txt
for i in 1 2 3; do printf 'm%d\t{"username":"m%d","nickname":"M"}\n' "$i" "$i"; done >"$u"
for i in $(seq 1 10); do printf '%d\t{"game_id":%d,"username":"m%d","delta":5}\n' $((i % 2 + 1)) $((i % 2 + 1)) $((i % 3 + 1)); done >"$f"
printf '1\t{"game_id":1,"username":"m1","delta":"x"}\n1\tnot json\n' >>"$f"
sk_send "$T_USERS" "$u"
sk_send "$T_SCORES" "$f"
sk_results 15 30 >/dev/null || tap_diag "results missing"
# librdkafka's statistics come every 5 s: wait for a report made after the
# events were consumed (the scores partition's lag at 0)
for _ in $(seq 1 300); do
    curl -s --max-time 5 "$url/metrics" |
        grep -q "^scorekeeper_consumer_lag_messages{topic=\"$T_SCORES\",partition=\"0\"} 0\$" && break
    sleep 0.1
done

m=$SK_TEST_TMP/metrics.txt
code=$(curl -s -o "$m" -w '%{http_code}' "$url/metrics")
tap_is "/metrics answers 200" "$code" 200
metric() { awk -v k="$1" '$1 == k {print $2}' "$m"; }
tap_is "events consumed, per topic" \
    "$(metric "scorekeeper_events_consumed_total{topic=\"$T_SCORES\"}") $(metric "scorekeeper_events_consumed_total{topic=\"$T_USERS\"}")" "12 3"
tap_is "events applied, per topic" \
    "$(metric "scorekeeper_events_applied_total{topic=\"$T_SCORES\"}") $(metric "scorekeeper_events_applied_total{topic=\"$T_USERS\"}")" "10 3"
tap_is "events rejected" "$(metric "scorekeeper_events_rejected_total{topic=\"$T_SCORES\"}")" 2
tap_is "results and dead letters delivered" \
    "$(metric scorekeeper_results_delivered_total) $(metric scorekeeper_dead_letters_delivered_total)" "15 2"
batches=$(metric scorekeeper_batches_total)
tap_is "the batch-size histogram counts every committed batch" \
    "$(metric scorekeeper_batch_events_count{})" "$batches"
tap_is "it sums to the events applied" "$(metric scorekeeper_batch_events_sum{})" "13.000000"
tap_is "the transaction latency histogram counts every transaction" \
    "$(metric scorekeeper_db_transaction_seconds_count{})" "$(metric scorekeeper_transactions_total)"
tap_is "every event's time to its result is counted, and its age since its Kafka timestamp" \
    "$(metric scorekeeper_event_seconds_count{}) $(metric scorekeeper_event_age_seconds_count{})" "15 15"
tap_is "every applied event's wait for its transaction is counted" \
    "$(metric scorekeeper_event_wait_seconds_count{})" 13
tap_check "an event waits for its transaction no longer than it takes in all" \
    awk -v w="$(metric scorekeeper_event_wait_seconds_sum{})" -v e="$(metric scorekeeper_event_seconds_sum{})" \
    'BEGIN { exit !(w > 0 && w <= e) }'
tap_check "a transaction carries one or more batches" \
    test "$(metric scorekeeper_transactions_total)" -ge 1 -a "$(metric scorekeeper_transactions_total)" -le "$batches"
tap_is "nothing in flight, nothing paused" \
    "$(metric scorekeeper_events_in_flight) $(metric scorekeeper_partitions_paused)" "0 0"
tap_is "two partitions assigned" "$(metric scorekeeper_partitions_assigned)" 2
tap_is "consumer lag 0 for the scores partition" \
    "$(metric "scorekeeper_consumer_lag{topic=\"$T_SCORES\",partition=\"0\"}")" 0
tap_check "every sample has HELP and TYPE" bash -c '
    for n in $(grep -v "^#" "$1" | sed -E "s/[{ ].*//; s/_(bucket|sum|count)$//" | sort -u); do
        grep -q "^# TYPE $n " "$1" || { echo "no TYPE for $n"; exit 1; }
    done' _ "$m"
tap_is "rejections counted by reason" \
    "$(metric 'scorekeeper_events_rejected_by_reason_total{reason="invalid_json"}') $(metric 'scorekeeper_events_rejected_by_reason_total{reason="wrong_type"}')" "1 1"
tap_is "the lag under its name with the unit, and under the deprecated one" \
    "$(metric "scorekeeper_consumer_lag_messages{topic=\"$T_SCORES\",partition=\"0\"}") $(metric "scorekeeper_consumer_lag{topic=\"$T_SCORES\",partition=\"0\"}")" "0 0"
tap_is "build info" "$(metric "scorekeeper_build_info{version=\"$(cat "$SK_ROOT/VERSION")\"}")" 1
tap_check "process metrics: CPU, RSS, open fds" awk '
    $1 == "process_cpu_seconds_total" && $2 > 0 { c++ }
    $1 == "process_resident_memory_bytes" && $2 > 1000000 { c++ }
    $1 == "process_open_fds" && $2 >= 3 { c++ }
    END { exit c != 3 }' "$m"

# The METRICS section: ".TP", ".B NAME", then "TYPE[; labels: A, B][; conditional]."
# Prints "name|type|labels (sorted, comma-separated)|conditional (0 or 1)".
documented() {
    awk '/^\.SH / { sec = ($0 == ".SH METRICS") }
         sec && /^\.TP$/ { tp = 1; next }
         sec && tp && /^\.B [a-z_]+$/ {
             name = $2; getline t; sub(/\.$/, "", t); n = split(t, f, /; /)
             labels = ""; cond = 0
             for (i = 2; i <= n; i++)
                 if (f[i] == "conditional") cond = 1
                 else if (sub(/^labels: /, "", f[i])) { k = split(f[i], l, /, /); asort(l); labels = l[1]; for (j = 2; j <= k; j++) labels = labels "," l[j] }
             print name "|" f[1] "|" labels "|" cond }
         { tp = 0 }' "$1"
}
# The scrape's series: "name|type|labels" per sample (histograms
# under their base name, without "le").
scraped() {
    awk '$1 == "#" && $2 == "TYPE" { type[$3] = $4; next }
         /^#/ || NF == 0 { next }
         { s = $1; name = s; sub(/\{.*/, "", name)
           base = name; if (sub(/_(bucket|sum|count)$/, "", base) && type[base] == "histogram") name = base
           n = 0; delete l
           while (match(s, /[{,][a-zA-Z_]+="/)) {
               k = substr(s, RSTART + 1, RLENGTH - 3); s = substr(s, RSTART + RLENGTH)
               if (k != "le") l[++n] = k }
           asort(l); labels = l[1]; for (j = 2; j <= n; j++) labels = labels "," l[j]
           print name "|" type[name] "|" labels }' "$1" | sort -u
}
doc_check() {
    local man=$1 scrape=$2 bad=0 name type labels cond dt dl
    declare -A dtype dlabels dcond seen
    while IFS="|" read -r name type labels cond; do
        dtype[$name]=$type dlabels[$name]=$labels dcond[$name]=$cond
    done < <(documented "$man")
    ((${#dtype[@]} > 30)) || { echo "METRICS section not found in $man"; return 1; }
    while IFS="|" read -r name type labels; do
        seen[$name]=1
        if [[ -z ${dtype[$name]+x} ]]; then echo "$name: not in scorekeeper(8) METRICS"; bad=1; continue; fi
        dt=${dtype[$name]} dl=${dlabels[$name]}
        [[ $dt == "$type" ]] || { echo "$name: type $type, documented $dt"; bad=1; }
        [[ $dl == "$labels" ]] || { echo "$name: labels '$labels', documented '$dl'"; bad=1; }
    done < <(scraped "$scrape")
    for name in "${!dtype[@]}"; do
        [[ ${dcond[$name]} == 1 || -n ${seen[$name]:-} ]] || { echo "$name: documented, not scraped (and not conditional)"; bad=1; }
    done
    return $bad
}
tap_check "every series scraped is documented in scorekeeper(8) METRICS (type, labels), every one documented is scraped" \
    doc_check "$SK_ROOT/man/scorekeeper.8" "$m"
tap_is "/healthz answers 200 when ready" "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" 200
tap_is "unknown paths are 404" "$(curl -s -o /dev/null -w '%{http_code}' "$url/nope")" 404
sk_daemon_stop
tap_is "exit 0 after SIGTERM" "$D_RC" 0

# Not ready: the database does not answer (a closed port).
_d_n=$((_d_n + 1))
D_LOG=$SK_TEST_TMP/daemon.$_d_n.log
mapfile -t args < <(sk_daemon_args)
"$SK_DAEMON" "${args[@]}" -o db.url="mariadb://u@127.0.0.1:1/x" -o db.connect_timeout_ms=200 >"$D_LOG" 2>&1 &
D_PID=$!
for _ in $(seq 50); do url=$(sk_metrics_url); [[ -n $url ]] && break; sleep 0.1; done
sleep 1
tap_is "/healthz answers 503 while the database is unreachable" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" 503
tap_is "and scorekeeper_ready is 0" "$(curl -s "$url/metrics" | awk '$1 == "scorekeeper_ready" {print $2}')" 0
sk_daemon_stop
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
