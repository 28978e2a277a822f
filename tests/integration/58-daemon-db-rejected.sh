#!/usr/bin/env bash
# db_rejected end to end (issue 19, item 2): the database, not the parser,
# refuses some score events.  A CHECK constraint added by the administrator
# (game_players.score <= 1000000) makes MariaDB answer 4025
# (ER_CONSTRAINT_FAILED, class SK_DB_DATA) for a "poison" event whose delta
# is 2000000, while every other delta is 1..500.  The daemon runs a shared
# transaction's games apart, halves the refused batch until the poison event
# is alone, rejects it ("db_rejected", copied to the dead-letter topic) and
# applies everything else exactly once.
#
# Part A: one daemon, 2 partitions, poison among normal events of the same
#         games and batches (batch.linger_ms=50).  Each poison event gets
#         exactly one result, rejected/db_rejected, and one dead-letter copy;
#         every other event exactly one "applied"; tables == expected totals;
#         the log shows the split and the refusals.
# Part B: the same during membership changes: up to three daemons in one
#         group over 4 partitions, with the eager assignor (every rebalance
#         revokes every partition and mostly assigns it back to the same
#         member: the case of the bug fixed with this test, where the
#         split-off rest of a batch re-entered the queue beside the copies
#         consumed again and both applied).  A BEFORE INSERT trigger sleeps
#         (SK58_SLEEP s, default 0.15) in every statement that carries a poison
#         row, so hunts last long and overlap the rebalances.  Checks: tables
#         == expected (nothing applied twice, nothing lost), poison events
#         never "applied" and each at least once rejected/db_rejected and in
#         the dead-letter topic, every other event has a result, never a
#         rejection and never two "applied"; no daemon aborted ("must arrive
#         in order, once"), no sanitizer report.
#
# SK58_SEED fixes the streams' seed (printed at the start); SK58_ASSIGNOR
# the part B assignor (default roundrobin; cooperative-sticky is the daemon's
# own default); SK58_EVENTS, SK58_POISON: part B's stream.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"
source "$(dirname "$0")/../lib/faults.sh"

seed=${SK58_SEED:-$((RANDOM * 32768 + RANDOM + 1))}
sleep_s=${SK58_SLEEP:-0.15}
tap_diag "seed $seed (SK58_SEED=$seed reproduces the streams)"

CAP=1000000
POISON=2000000

# gen PREFIX EVENTS GAMES USERS POISONS SEED: writes $SK_TEST_TMP/PREFIX.kv
# (key<TAB>json, for sk_send) and $SK_TEST_TMP/PREFIX.ledger
# (event_id game user delta ok|poison).  Poison events avoid the first 5 %.
gen() {
    awk -v p="$1" -v n="$2" -v g="$3" -v u="$4" -v np="$5" -v seed="$6" \
        -v kv="$SK_TEST_TMP/$1.kv" -v led="$SK_TEST_TMP/$1.ledger" -v big="$POISON" '
    BEGIN {
        srand(seed)
        lo = int(n / 20)
        for (k = 0; k < np;) { i = lo + int(rand() * (n - lo)); if (!(i in poison)) { poison[i] = 1; k++ } }
        for (i = 0; i < n; i++) {
            game = 100 + int(rand() * g)
            user = p int(1 + rand() * u)
            if (i in poison) { d = big; kind = "poison" } else { d = 1 + int(rand() * 500); kind = "ok" }
            id = p "-" seed "-" i
            printf "%d\t{\"event_id\":\"%s\",\"game_id\":%d,\"username\":\"%s\",\"delta\":%d}\n", game, id, game, user, d > kv
            printf "%s\t%d\t%s\t%d\t%s\n", id, game, user, d, kind > led
        }
    }'
}

# want_totals LEDGER: game<TAB>user<TAB>score without the poison events,
# sorted like tests/tools/db-totals.sh.
want_totals() {
    awk -F'\t' '$5 == "ok" { s[$2 "\t" $3] += $4 } END { for (k in s) printf "%s\t%d\n", k, s[k] }' "$1" |
        LC_ALL=C sort
}

# results_tsv: event_id status code, one line per result so far.
results_tsv() {
    timeout 60 kcat -b "$KAFKA_BROKERS" -C -t "$T_RESULTS" -o beginning -e -q -f '%s\n' 2>/dev/null |
        jq -r '[.event_id // "-", .status // "-", .error.code // "-"] | @tsv' 2>/dev/null || true
}

# wait_results N TIMEOUT_S: until N distinct events have a result; leaves
# them in $SK_TEST_TMP/results.tsv.
wait_results() {
    local want=$1 deadline=$((SECONDS + $2)) have=0
    while :; do
        results_tsv >"$SK_TEST_TMP/results.tsv"
        have=$(cut -f1 "$SK_TEST_TMP/results.tsv" | sort -u | wc -l)
        ((have < want && SECONDS < deadline)) || break
        sleep 1
    done
    ((have >= want)) || tap_diag "results for only $have of $want events after $2 s"
}

# dlq_tsv: event_id sk-error-code, one line per dead-letter message so far.
dlq_tsv() {
    timeout 60 kcat -b "$KAFKA_BROKERS" -C -t "$T_DLQ" -o beginning -e -q -f '%h\t%s\n' 2>/dev/null |
        sed -nE 's/.*sk-error-code=([a-z_]+).*\t.*"event_id":"([^"]+)".*/\2\t\1/p' || true
}

# wait_dlq N TIMEOUT_S: until N dead-letter messages are there ($SK_TEST_TMP/dlq.tsv).
wait_dlq() {
    local deadline=$((SECONDS + $2))
    while :; do
        dlq_tsv >"$SK_TEST_TMP/dlq.tsv"
        (($(wc -l <"$SK_TEST_TMP/dlq.tsv") < $1 && SECONDS < deadline)) || break
        sleep 1
    done
}

# verdict LEDGER STRICT: one line of counts (all must be 0), from results.tsv
# and dlq.tsv.  STRICT=1 (no rebalance): exactly one result per event, and
# one dead-letter copy per poison event.
verdict() {
    awk -F'\t' -v strict="$2" '
    FILENAME == ARGV[1] { kind[$1] = $5; n++; next }
    FILENAME == ARGV[2] {
        if (!($1 in kind)) { unknown++; next }
        r[$1]++
        if ($2 == "applied") app[$1]++
        else if ($2 == "rejected" && $3 == "db_rejected") rej[$1]++
        else if ($2 == "duplicate") dup[$1]++
        else other[$1]++
        next
    }
    {   # dead-letter copies
        if (!($1 in kind) || kind[$1] != "poison" || $2 != "db_rejected") dlq_wrong++
        else dl[$1]++
    }
    END {
        for (e in kind) {
            if (!(e in r)) { missing++; continue }
            if (strict && r[e] != 1) morethanone++
            if (kind[e] == "poison") {
                if ((e in app) || (e in other) || !(e in rej)) poison_bad++
                if (strict && (e in dup)) poison_bad++
                if (!(e in dl) || (strict && dl[e] != 1)) dlq_missing++
            } else {
                if ((e in rej) || (e in other) || app[e] > 1) normal_bad++
                if (!(e in app)) { if (strict) normal_bad++; else dup_only++ }
            }
        }
        printf "missing=%d unknown=%d poison_bad=%d normal_bad=%d dlq_missing=%d dlq_wrong=%d", \
            missing, unknown, poison_bad, normal_bad, dlq_missing, dlq_wrong
        if (strict) printf " more_than_one=%d", morethanone
        printf "\n"
        printf "dup_only=%d\n", dup_only > "/dev/stderr"
    }' "$1" "$SK_TEST_TMP/results.tsv" "$SK_TEST_TMP/dlq.tsv"
}

# tables_check PREFIX LEDGER: the database equals the ledger's totals without
# the poison events.
tables_check() {
    want_totals "$2" >"$SK_TEST_TMP/want.tsv"
    "$SK_ROOT/tests/tools/db-totals.sh" "$SCOREKEEPER_DB_ADMIN" "$D_DB" "$1" >"$SK_TEST_TMP/got.tsv"
    local d
    d=$(diff "$SK_TEST_TMP/want.tsv" "$SK_TEST_TMP/got.tsv" | grep '^[<>]' || true)
    if [[ -z $d ]]; then
        tap_ok "tables == the events' totals without the poison ones ($(wc -l <"$SK_TEST_TMP/want.tsv") rows)"
    else
        tap_fail "tables == the events' totals without the poison ones" \
            "$(grep -c '^<' <<<"$d") expected rows differ (< expected, > database), first ones:
$(head -n 10 <<<"$d")"
    fi
}

# add_cap [SLEEP]: the CHECK constraint; with SLEEP also the trigger that makes
# every statement carrying a poison row slow (it runs before the CHECK, which
# still refuses the row with 4025).
add_cap() {
    sk_sql "$D_DB" "ALTER TABLE game_players ADD CONSTRAINT sk_cap CHECK (score <= $CAP)" ||
        sk_bail "cannot add the CHECK constraint"
    [[ -z ${1:-} ]] && return 0
    sk_sql "$D_DB" "CREATE TRIGGER sk_slow_poison BEFORE INSERT ON game_players FOR EACH ROW
                    SET @sk_slept = IF(NEW.score > $CAP, SLEEP($1), 0)" ||
        sk_bail "cannot add the trigger"
}

# ============================================================ part A
npa=3000 ppa=12
sk_daemon_setup rejdb 2
add_cap
gen a "$npa" 8 40 "$ppa" "$seed"
sk_daemon_start -o batch.linger_ms=50 || sk_bail "daemon did not start"
sk_send "$T_SCORES" "$SK_TEST_TMP/a.kv" || sk_bail "cannot produce part A's events"
wait_results "$npa" 120
wait_dlq "$ppa" 30
logA=$D_LOG
tap_diag "part A: $npa events over 8 games, 2 partitions, $ppa poison; logged (rate-limited): $(grep -c 'splitting it' "$logA" || true) splits, $(grep -c 'running its games one by one' "$logA" || true) shared transactions run apart"
tap_is "A: every event has exactly its result: poison rejected/db_rejected and in the dead-letter topic, the others applied" \
    "$(verdict "$SK_TEST_TMP/a.ledger" 1 2>/dev/null)" \
    "missing=0 unknown=0 poison_bad=0 normal_bad=0 dlq_missing=0 dlq_wrong=0 more_than_one=0"
tables_check a "$SK_TEST_TMP/a.ledger"
tap_check "A: the log shows a refused batch split (\"splitting it\")" grep -q 'splitting it' "$logA"
tap_check "A: the log shows an event refused by the database (4025 from sk_cap)" \
    grep -qE 'event refused by the database: CONSTRAINT .sk_cap. failed.*db_errno=4025' "$logA"
sk_daemon_stop
tap_is "A: exit 0 after SIGTERM" "$D_RC" 0
# (the log is rate-limited per partition: count the refusals in the final line)
tap_check "A: the daemon's own count: applied $((npa - ppa)), rejected $ppa, duplicate 0" \
    grep -q "stopped: consumed $npa, applied $((npa - ppa)), rejected $ppa, duplicate 0," "$logA"

# ============================================================ part B
npb=${SK58_EVENTS:-7200} ppb=${SK58_POISON:-36} chunks=16
sk_daemon_setup rejdbg 4
add_cap "$sleep_s"
gen b "$npb" 16 80 "$ppb" "$((seed + 1))"
split -n "l/$chunks" -d -a 2 "$SK_TEST_TMP/b.kv" "$SK_TEST_TMP/b.chunk."
# A drain that meets poison events takes a while (each refused attempt
# sleeps): a generous shutdown deadline, so that SIGTERM still exits 0.
opts=(-o batch.linger_ms=50 -o batch.max_events=256 -o shutdown.timeout_ms=60000
    -o "kafka.partition.assignment.strategy=${SK58_ASSIGNOR:-roundrobin}")
fd_start 1 "${opts[@]}"
fd_wait_ready 1 90 || sk_bail "instance 1 did not start"

# The stream goes out in chunks over about 15 s while members come and go.
sender() {
    local f
    for f in "$SK_TEST_TMP"/b.chunk.*; do
        sk_send "$T_SCORES" "$f" || return 1
        sleep 0.8
    done
}
fault_bg sender
gen_pid=${FAULT_BG[-1]}

# Membership changes: 1 -> 1,2 -> 2 -> 2,3 -> 3 -> 3,1 -> 3,1,2 -> 1,2
bad_term=0 changes=0
change() { # start I | stop I
    sleep "1.$((RANDOM % 10))"
    if [[ $1 == start ]]; then
        fd_start "$2" "${opts[@]}"
        fd_wait_ready "$2" 90 || sk_bail "instance $2 did not start"
    else
        fd_kill "$2" TERM
        [[ ${FD_RC[$2]} == 0 ]] || {
            bad_term=$((bad_term + 1))
            tap_diag "instance $2: exit ${FD_RC[$2]} after SIGTERM: $(tail -n 5 "${FD_LOG[$2]}")"
        }
    fi
    changes=$((changes + 1))
}
change start 2
change stop 1
change start 3
change stop 2
change start 1
change start 2
change stop 3
wait "$gen_pid" || sk_bail "producing part B's events failed"
FAULT_BG=()
wait_results "$npb" 150
wait_dlq "$ppb" 30
logsB=()
for f in "$SK_TEST_TMP"/daemon.*.log; do [[ $f == "$logA" ]] || logsB+=("$f"); done
nsplit=$(cat "${logsB[@]}" | grep -c 'splitting it' || true)
nrevoke=$(cat "${logsB[@]}" | grep -c 'revoked .* events still in flight' || true)
tap_diag "part B: $npb events over 16 games, 4 partitions, $ppb poison, trigger sleep $sleep_s s; $changes membership changes; logged (rate-limited): $nrevoke partition revocations, $nsplit splits"
v=$(verdict "$SK_TEST_TMP/b.ledger" 0 2>"$SK_TEST_TMP/dup_only")
tap_diag "part B: $(cat "$SK_TEST_TMP/dup_only") (events whose only result is \"duplicate\"), $(wc -l <"$SK_TEST_TMP/results.tsv") results, $(wc -l <"$SK_TEST_TMP/dlq.tsv") dead-letter copies"
tap_is "B: poison events never applied, always rejected/db_rejected and in the dead-letter topic; other events have a result, never two \"applied\", never rejected" \
    "$v" "missing=0 unknown=0 poison_bad=0 normal_bad=0 dlq_missing=0 dlq_wrong=0"
twice=$(awk -F'\t' '$2 == "applied"' "$SK_TEST_TMP/results.tsv" | cut -f1 | sort | uniq -d)
[[ -z $twice ]] || tap_diag "events with two \"applied\" results ($(wc -l <<<"$twice")), first ones: $(head -n 5 <<<"$twice" | tr '\n' ' ')"
tables_check b "$SK_TEST_TMP/b.ledger"
tap_is "B: every SIGTERM mid-stream: exit 0" "$bad_term" 0
tap_check "B: the poison events were hunted down (\"splitting it\")" test "$nsplit" -gt 0
for i in 1 2; do
    fd_kill "$i" TERM
    tap_is "B: instance $i: exit 0 after SIGTERM" "${FD_RC[$i]}" 0
done
aborts=$(cat "$SK_TEST_TMP"/daemon.*.log | grep -c 'must arrive in order, once' || true)
tap_is "no daemon aborted (\"must arrive in order, once\")" "$aborts" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
if ((_tap_failed)); then # keep the daemons' logs of a failed run
    keep=$SK_ROOT/build/test-logs/58-daemon-db-rejected.daemons
    rm -rf "$keep" && mkdir -p "$keep" && cp "$SK_TEST_TMP"/daemon.*.log "$keep"/ && tap_diag "daemon logs kept in $keep"
fi
tap_done
