#!/usr/bin/env bash
# Issue 19, item 6: memory is bounded by bytes, not only by events.
#  (a) game_players locked from outside, 1,500 score events of 64 KiB each
#      (94 MiB; the event window of 20,000 alone would take them all): with
#      default settings the partition is paused at its share of
#      pipeline.max_inflight_bytes, the bytes in flight stay under it, and
#      the peak RSS stays under 64 MiB and within max_inflight_bytes plus a
#      fixed allowance of the RSS before; unlocked, every event applies once.
#  (b) 100,000 distinct game ids with pipeline.game_marks=1000: every event
#      applies once, the marks map never holds more than 1000 games, games
#      whose mark was dropped apply again with the right totals (read first,
#      never taken as new), and the peak RSS stays under 64 MiB.
#  (c) the same, smaller, under the sanitizers: no report.
#  (d) events over limits.max_message_bytes whose dead-letter copies cannot
#      be delivered (they stay in flight): each holds no more than the
#      producer's message.max.bytes of its payload, not the whole of it.
# RSS is measured on the -O2 build next to the sanitizer build (SK_DAEMON):
# ASan's shadow memory and its quarantine of freed blocks (256 MiB by
# default) would hide what the daemon itself holds.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

san=$SK_DAEMON
plain=${SK_DAEMON%/san/scorekeeper}/scorekeeper
[[ $plain != "$SK_DAEMON" ]] || sk_bail "SK_DAEMON=$SK_DAEMON is not a build/san/scorekeeper: the -O2 build beside it is what test 62 measures"
if [[ $plain == "$SK_ROOT/build/scorekeeper" ]]; then
    make -C "$SK_ROOT" --no-print-directory build/scorekeeper >"$SK_TEST_TMP/make.log" 2>&1 ||
        sk_bail "cannot build build/scorekeeper: $(tail -n 5 "$SK_TEST_TMP/make.log")"
fi
[[ -x $plain ]] || sk_bail "no -O2 build at $plain"

MIB=$((1024 * 1024))
max_bytes=$((24 * MIB)) # pipeline.max_inflight_bytes by default
# Beyond what the events in flight are counted for, the peak may hold:
# librdkafka's prefetch (512 KiB queued per partition, fetches of up to 2 MiB
# in flight), the page rounding of blocks of 64 KiB or more (mmap-ed, a few
# per cent), SQL and batch buffers, allocator slack.
allowance=$((16 * MIB))

metric() { curl -s --max-time 5 "$url/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$D_PID/status"; }
# wait_metric NAME OP VALUE: until the metric compares so (60 s at most).
wait_metric() {
    local i v
    for i in $(seq 1 600); do
        v=$(metric "$1")
        [[ -n $v ]] && awk -v a="$v" -v b="$3" "BEGIN { exit !(a $2 b) }" && return 0
        sleep 0.1
    done
    return 1
}
# all_results COUNT: every result now on the results topic (COUNT expected),
# one JSON per line.
all_results() {
    sk_results "$1" 240 >"$SK_TEST_TMP/res.head" || true
    timeout 60 kcat -b "$KAFKA_BROKERS" -C -t "$T_RESULTS" -o beginning -e -q -f '%s\n'
}
# once FILE COUNT: COUNT results, one per source offset 0..COUNT-1, all applied.
once() {
    local got
    got=$(jq -r '"\(.source.offset) \(.status)"' "$1" | sort -n | uniq -c |
        awk -v n="$2" '$1 != 1 || $3 != "applied" { bad++ } { seen[$2] = 1 }
                       END { for (i = 0; i < n; i++) if (!(i in seen)) miss++;
                             printf "%d lines, %d not once or not applied, %d missing", NR, bad + 0, miss + 0 }')
    [[ $got == "$2 lines, 0 not once or not applied, 0 missing" ]] || { echo "$got"; return 1; }
}

# ---- (a) padded events, database locked ----------------------------------
SK_DAEMON=$plain
sk_daemon_setup mem 1
sk_daemon_start || sk_bail "daemon did not start"
url=$(sk_metrics_url)
[[ -n $url ]] || sk_bail "the daemon's log does not say where its metrics are"
f=$SK_TEST_TMP/warm.txt
printf '3\t{"event_id":"w","game_id":3,"username":"big","delta":1}\n' >"$f"
sk_send "$T_SCORES" "$f"
sk_results 1 30 >/dev/null || sk_bail "warm-up event got no result"
base=$(kb VmRSS)

sk_locker "$D_DB" "LOCK TABLES game_players WRITE; SELECT 1;"
tap_is "(a) an outside session holds game_players locked" "$SK_LOCKED" 1
n=1500
pad=$(head -c 65536 /dev/zero | tr '\0' ' ')
for i in $(seq 1 "$n"); do
    e="{\"event_id\":\"p-$i\",\"game_id\":3,\"username\":\"big\",\"delta\":1"
    printf '3\t%s%s}\n' "$e" "${pad:0:$((65536 - ${#e} - 1))}"
done >"$SK_TEST_TMP/pad.txt"
tap_is "(a) $n events of 65,536 bytes (the largest accepted)" \
    "$(awk '{ n[length($0) - 2]++ } END { for (l in n) print n[l], l }' "$SK_TEST_TMP/pad.txt")" "$n 65536"
sk_send "$T_SCORES" "$SK_TEST_TMP/pad.txt" || sk_bail "could not send the padded events"

# until the partition is paused, or holds every event sent (the limit by
# events alone would let it)
for _ in $(seq 1 600); do
    [[ $(metric scorekeeper_partitions_paused) == 1 || $(metric scorekeeper_events_in_flight) == "$n" ]] && break
    sleep 0.1
done
tap_is "(a) the partition is paused" "$(metric scorekeeper_partitions_paused)" 1
tap_check "(a) at its share of pipeline.max_inflight_bytes" \
    grep -qE "paused $T_SCORES \[0\]: [0-9]+ events .*holding [0-9]+ bytes \(limit $max_bytes per partition\)" "$D_LOG"
inflight=$(metric scorekeeper_events_in_flight)
bytes=$(metric scorekeeper_events_in_flight_bytes)
tap_diag "held: $inflight events, $bytes bytes in flight"
tap_check "(a) fewer events in flight than were sent ($inflight)" test "$inflight" -lt "$n"
# the event that reached the share is the last one taken
tap_check "(a) the bytes in flight stay within the limit and one event ($bytes)" \
    test "$bytes" -ge $((max_bytes - 2 * 70000)) -a "$bytes" -le $((max_bytes + 70000))

sk_locker_end "UNLOCK TABLES;"
all_results $((n + 1)) >"$SK_TEST_TMP/a.res"
tap_check "(a) unlocked: every event applied, once" once "$SK_TEST_TMP/a.res" $((n + 1))
tap_is "(a) the score counts each event once" "$(sk_score "$D_DB" 3 big)" $((n + 1))
tap_is "(a) nothing in flight, nothing paused" \
    "$(metric scorekeeper_events_in_flight) $(metric scorekeeper_events_in_flight_bytes) $(metric scorekeeper_partitions_paused)" "0 0 0"
hwm=$(kb VmHWM)
tap_diag "(a) VmRSS before $((base / 1024)) MiB, VmHWM $((hwm / 1024)) MiB (${hwm} kB), pipeline.max_inflight_bytes $((max_bytes / MIB)) MiB"
tap_check "(a) peak RSS ($((hwm / 1024)) MiB) within the RSS before ($((base / 1024)) MiB) + max_inflight_bytes + $((allowance / MIB)) MiB" \
    test $(((hwm - base) * 1024)) -le $((max_bytes + allowance))
tap_check "(a) peak RSS under 64 MiB with default settings" test "$hwm" -lt $((64 * 1024))
sk_daemon_stop
tap_is "(a) exit 0 after SIGTERM" "$D_RC" 0

# ---- (b) 100,000 distinct games, a small marks map -----------------------
# marks_run PART N BOUND AGAIN: N events of games 1..N (one each, delta 1), then
# one more (delta 2) for games 1..AGAIN, long dropped from the map; checks
# that each applies once with the right total and the map stays in bounds.
marks_run() {
    local tag="($1)" n=$2 bound=$3 again=$4 most=0 v i
    sk_daemon_setup "marks$1" 1
    sk_daemon_start -o "pipeline.game_marks=$bound" || sk_bail "daemon did not start"
    url=$(sk_metrics_url)
    base=$(kb VmRSS)
    awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++)
        printf "%d\t{\"event_id\":\"g-%d\",\"game_id\":%d,\"username\":\"u%d\",\"delta\":1}\n", i, i, i, i % 50 }' \
        >"$SK_TEST_TMP/games.txt"
    sk_send "$T_SCORES" "$SK_TEST_TMP/games.txt" || sk_bail "could not send the events"
    for i in $(seq 1 2400); do
        v=$(metric scorekeeper_game_marks)
        ((${v:-0} > most)) && most=$v
        [[ $(metric "scorekeeper_events_applied_total{topic=\"$T_SCORES\"}") == "$n" ]] && break
        sleep 0.1
    done
    awk -v n="$again" 'BEGIN { for (i = 1; i <= n; i++)
        printf "%d\t{\"event_id\":\"a-%d\",\"game_id\":%d,\"username\":\"u%d\",\"delta\":2}\n", i, i, i, i % 50 }' \
        >"$SK_TEST_TMP/again.txt"
    sk_send "$T_SCORES" "$SK_TEST_TMP/again.txt" || sk_bail "could not send the events again"
    all_results $((n + again)) >"$SK_TEST_TMP/b.res"
    v=$(metric scorekeeper_game_marks)
    ((v > most)) && most=$v
    tap_check "$tag every event applied, once ($n + $again)" once "$SK_TEST_TMP/b.res" $((n + again))
    tap_is "$tag the games dropped from the map got their right totals" \
        "$(jq -r --arg a "a-" 'select(.event_id | startswith($a)) | .score' "$SK_TEST_TMP/b.res" | sort -u)" 3
    tap_is "$tag the tables hold every game once, with the right scores" \
        "$(sk_sql "$D_DB" "SELECT COUNT(*), SUM(score), (SELECT COUNT(*) FROM game_offsets) FROM game_players")" \
        "$n	$((n + 2 * again))	$n"
    tap_check "$tag the marks map held at most $bound games (at most $most seen)" \
        test "$most" -le "$bound" -a "$most" -gt 0
    tap_is "$tag no game was taken as new after its mark was dropped" \
        "$(metric scorekeeper_db_one_trip_redone_total)" 0
    hwm=$(kb VmHWM)
    tap_diag "$tag VmRSS before $((base / 1024)) MiB, VmHWM $((hwm / 1024)) MiB (${hwm} kB)"
    sk_daemon_stop
    tap_is "$tag exit 0 after SIGTERM" "$D_RC" 0
}
marks_run b 100000 1000 200
tap_check "(b) peak RSS under 64 MiB" test "$hwm" -lt $((64 * 1024))

# ---- (c) the same under the sanitizers -----------------------------------
SK_DAEMON=$san
marks_run c 5000 64 100
tap_check "(c) no sanitizer reports" sk_daemon_logs_clean

# ---- (d) payloads over the size limit ------------------------------------
# Their dead-letter copies go to a topic that takes nothing, so they stay in
# flight; the producer takes 100,000 bytes at most.
SK_DAEMON=$plain
sk_daemon_setup membig 1
dlq=$(sk_unique membig.dlq100)
printf '%s\n' "$dlq" >>"$SK_TEST_TMP/.topics"
"$SK_TOOLS/mktopic" -b "$KAFKA_BROKERS" -c max.message.bytes=100 "$dlq" 1 >/dev/null ||
    sk_bail "cannot create the dead-letter topic that takes nothing"
sk_daemon_start -o "topic.dead_letter=$dlq" -o kafka.producer.message.max.bytes=100000 \
    -o shutdown.timeout_ms=2000 || sk_bail "daemon did not start"
url=$(sk_metrics_url)
base=$(kb VmRSS)
n=60
big=900000
pad=$(head -c "$big" /dev/zero | tr '\0' ' ')
for i in $(seq 1 "$n"); do
    e="{\"event_id\":\"b-$i\",\"game_id\":3,\"username\":\"big\",\"delta\":1"
    printf '3\t%s%s}\n' "$e" "${pad:0:$((big - ${#e} - 1))}"
done >"$SK_TEST_TMP/big.txt"
timeout 120 kcat -b "$KAFKA_BROKERS" -P -t "$T_SCORES" -K $'\t' -X acks=all -X message.max.bytes=2000000 \
    -l "$SK_TEST_TMP/big.txt" || sk_bail "the broker did not take the large events"
sk_results "$n" 120 >"$SK_TEST_TMP/d.res" || true
tap_is "(d) $n events of $big bytes rejected too_large" \
    "$(jq -r '"\(.status) \(.error.code)"' "$SK_TEST_TMP/d.res" | sort | uniq -c | sed 's/^ *//')" \
    "$n rejected too_large"
wait_metric scorekeeper_events_in_flight == "$n" || true
bytes=$(metric scorekeeper_events_in_flight_bytes)
tap_is "(d) their dead-letter copies wait: all $n in flight" "$(metric scorekeeper_events_in_flight)" "$n"
tap_check "(d) each holds at most 100,000 bytes of its payload and a little more ($bytes in all)" \
    test "$bytes" -ge $((n * 100000)) -a "$bytes" -le $((n * (100000 + 4096)))
hwm=$(kb VmHWM)
tap_diag "(d) VmRSS before $((base / 1024)) MiB, VmHWM $((hwm / 1024)) MiB (${hwm} kB); the payloads: $((n * big / MIB)) MiB"
tap_check "(d) peak RSS ($((hwm / 1024)) MiB) within the RSS before + the bytes in flight + $((allowance / MIB)) MiB" \
    test $(((hwm - base) * 1024)) -le $((bytes + allowance))
sk_daemon_stop
tap_is "(d) SIGTERM: the deadline passes with the copies undelivered (exit 1)" "$D_RC" 1
tap_done
