#!/usr/bin/env bash
# The Prometheus rules and the Grafana dashboard in contrib/, against a real
# daemon's /metrics.
#
# A daemon (watchdog on, as under systemd) applies events and rejects one,
# and is scraped once healthy; then a transaction of it is held by an
# outside lock past pipeline.stall_timeout_ms, and it is scraped again while
# it withholds the watchdog.  Every series name the rules and the dashboard
# use, every label they group or match by, and every input series of the
# rules' unit tests (name and label names) must be in those scrapes.  Then
# `promtool check rules` and `promtool test rules` pass, and each alert's
# tests fail when that alert's expression never fires (so every alert has a
# case where it must fire).
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

rules=$SK_ROOT/contrib/prometheus/scorekeeper.rules.yml
rules_test=$SK_ROOT/contrib/prometheus/scorekeeper.rules.test.yml
dashboard=$SK_ROOT/contrib/grafana/scorekeeper-dashboard.json
command -v promtool >/dev/null || sk_bail "promtool is missing (make deps installs the prometheus package)"

# ---- a real scrape: healthy, then wedged
sk_daemon_setup alerts 2
listener=
trap '_d_rc=$?; set +e; kill $listener 2>/dev/null; _sk_daemon_cleanup; _sk_cleanup "$_d_rc"' EXIT
sk_notify_listen || sk_bail "no sd_notify listener"

export NOTIFY_SOCKET=$sock WATCHDOG_USEC=1000000
sk_daemon_start -o batch.linger_ms=10 -o pipeline.stall_timeout_ms=1000 -o db.query_timeout_ms=60000 \
    -o db.pool_size=2 || sk_bail "daemon did not start"
unset NOTIFY_SOCKET WATCHDOG_USEC
url=$(sk_metrics_url)
scrape() { curl -sf --max-time 10 "$url/metrics"; }
# value FILE SERIES: the sample of SERIES (name with its labels) in FILE
value() { awk -v s="$2" '$1 == s { print $2 }' "$1"; }
# scrape_until FILE SERIES WANT [SERIES WANT]: scrape into FILE until each
# SERIES has the value WANT (30 s at most).
scrape_until() {
    local file=$1 i ok deadline=$((SECONDS + 30))
    shift
    while ((SECONDS < deadline)); do
        scrape >"$file" || true
        ok=1
        for ((i = 1; i < $#; i += 2)); do
            [[ $(value "$file" "${!i}") == "${@:i+1:1}" ]] || ok=0
        done
        ((ok)) && return 0
        sleep 0.1
    done
    return 1
}

f=$SK_TEST_TMP/ev.txt
for i in $(seq 1 20); do
    printf '%d\t{"event_id":"a%d","game_id":%d,"username":"p%d","delta":1}\n' $((i % 2 + 1)) "$i" \
        $((i % 2 + 1)) $((i % 3))
done >"$f"
printf '1\t{"event_id":"bad","game_id":1,"username":"p","delta":"x"}\n' >>"$f"
sk_send "$T_SCORES" "$f"
sk_results 21 60 >/dev/null || tap_diag "results missing"
# The lag series come with librdkafka's statistics (every 5 s), the
# delivery counters with the deliveries.
healthy=$SK_TEST_TMP/healthy.prom
scrape_until "$healthy" scorekeeper_dead_letters_delivered_total 1 || true
deadline=$((SECONDS + 30))
while ((SECONDS < deadline)); do
    grep -q '^scorekeeper_consumer_lag_messages{' "$healthy" && break
    sleep 0.1
    scrape >"$healthy" || true
done
tap_is "healthy scrape: ready, watchdog fed, one dead letter, lag reported" \
    "$(value "$healthy" scorekeeper_ready) $(value "$healthy" scorekeeper_watchdog_withheld) $(value "$healthy" scorekeeper_dead_letters_delivered_total) $(grep -q '^scorekeeper_consumer_lag_messages{' "$healthy" && echo lag)" \
    "1 0 1 lag"

# Wedged: an outside transaction holds game 1 far longer than the limit.
sk_locker "$D_DB" "SET SESSION innodb_lock_wait_timeout = 100; START TRANSACTION; SELECT id FROM games WHERE id = 1 FOR UPDATE;"
printf '1\t{"event_id":"w","game_id":1,"username":"p","delta":1}\n' >"$f"
sk_send "$T_SCORES" "$f"
wedged=$SK_TEST_TMP/wedged.prom
scrape_until "$wedged" scorekeeper_watchdog_withheld 1 || true
tap_is "wedged scrape: the watchdog withheld, not ready" \
    "$(value "$wedged" scorekeeper_watchdog_withheld) $(value "$wedged" scorekeeper_ready)" "1 0"
tap_check "the log says why (pipeline wedged)" grep -q 'pipeline wedged: the transaction of game 1' "$D_LOG"
sk_locker_end "COMMIT;"
again=$SK_TEST_TMP/again.prom
scrape_until "$again" scorekeeper_watchdog_withheld 0 scorekeeper_ready 1 || true
tap_is "the transaction done: the watchdog fed again, ready" \
    "$(value "$again" scorekeeper_watchdog_withheld) $(value "$again" scorekeeper_ready)" "0 1"
sk_daemon_stop
tap_is "SIGTERM: exit 0" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean

# ---- what the scrapes hold: "name label,label" per series, and the labels
series=$SK_TEST_TMP/series
cat "$healthy" "$wedged" | grep -v '^#' | awk '{
    name = $1; labels = ""
    if (match(name, /\{.*\}/)) {
        inner = substr(name, RSTART + 1, RLENGTH - 2); name = substr(name, 1, RSTART - 1)
        n = split(inner, kv, /",/)
        for (i = 1; i <= n; i++) { sub(/=.*/, "", kv[i]); l[i] = kv[i] }
        asort(l); for (i = 1; i <= n; i++) labels = labels (i > 1 ? "," : "") l[i]; delete l
    }
    print name, labels }' | sort -u >"$series"
names() { cut -d' ' -f1 "$series" | sort -u; }
# Labels a query may use: the series' own, and those Prometheus adds.
known_labels=$( (cut -s -d' ' -f2 "$series" | tr ',' '\n'; printf '%s\n' job instance le) | sort -u)

# missing_names TEXT: the scorekeeper_*/process_* names in TEXT that no
# scraped series has.
missing_names() { grep -oE '\b(scorekeeper|process)_[a-z0-9_]+' <<<"$1" | sort -u | comm -23 - <(names); }
# missing_labels TEXT: labels grouped or matched by in TEXT that no scraped
# series has.
missing_labels() {
    { grep -oE '\b(by|without) *\([a-z_, ]*\)' <<<"$1" | sed 's/.*(//; s/)//' | tr ', ' '\n\n'
        grep -oE '[{,] *[a-z_]+ *(=~|!~|!=|=) *"' <<<"$1" | sed -E 's/^[{,] *//; s/ *[=!~]+ *"$//'
    } | grep . | sort -u | comm -23 - <(printf '%s\n' "$known_labels")
}

# ---- the rules
rule_text=$(grep -v '^ *#' "$rules")
exprs=$(awk '/^ *expr:/ { on = 1; print; next } on && /^ *[a-z_]+:/ { on = 0 } on' "$rules")
n=$(grep -oE '\b(scorekeeper|process)_[a-z0-9_]+' <<<"$rule_text" | sort -u | wc -l)
tap_is "every series the rules name ($n) is in the scrape" "$(missing_names "$rule_text")" ""
tap_is "every label the rules group or match by is in the scrape" "$(missing_labels "$exprs")" ""
out=$(promtool check rules "$rules" 2>&1) && rc=0 || rc=$?
tap_is "promtool check rules: 6 rules, no error" "$rc $(grep -o 'SUCCESS: [0-9]* rules found' <<<"$out")" \
    "0 SUCCESS: 6 rules found"
[[ $rc == 0 ]] || tap_diag "$out"
alerts=$(sed -n 's/^ *- alert: *//p' "$rules")
tap_is "the six alerts" "$(tr '\n' ' ' <<<"$alerts")" \
    "ScorekeeperNotReady ScorekeeperLagGrowing ScorekeeperDeadLettersRising ScorekeeperOutputFailing ScorekeeperSlowTransactions ScorekeeperWatchdogWithheld "

# ---- their unit tests: input series as scraped, then promtool
bad=$(sed -nE "s/^ *- series: *'([^']*)'.*/\\1/p" "$rules_test" | awk '{
    name = $0; labels = ""
    if (match(name, /\{.*\}/)) {
        inner = substr(name, RSTART + 1, RLENGTH - 2); name = substr(name, 1, RSTART - 1)
        n = split(inner, kv, /",/); m = 0
        for (i = 1; i <= n; i++) { sub(/=.*/, "", kv[i]); if (kv[i] != "job" && kv[i] != "instance") l[++m] = kv[i] }
        asort(l); for (i = 1; i <= m; i++) labels = labels (i > 1 ? "," : "") l[i]; delete l
    }
    print name, labels }' | sort -u | comm -23 - "$series")
n=$(grep -c "^ *- series:" "$rules_test" || true)
tap_is "every input series of the rules' tests ($n) is a scraped series with its labels (plus job, instance)" \
    "$bad" ""
out=$(cd "$(dirname "$rules_test")" && promtool test rules "${rules_test##*/}" 2>&1) && rc=0 || rc=$?
tap_is "promtool test rules passes" "$rc" 0
[[ $rc == 0 ]] || tap_diag "$out"
# Each alert in turn made unable to fire: its tests must fail.
mut=$SK_TEST_TMP/mut
mkdir -p "$mut"
cp "$rules_test" "$mut/"
unexercised=
for a in $alerts; do
    awk -v a="$a" '
        /^ *- alert:/ { mine = ($3 == a) }
        mine && /^ *expr:/ { sub(/expr:.*/, "expr: vector(0) == 1"); print; skip = 1; next }
        skip && /^ *[a-z_]+:/ { skip = 0 }
        !skip' "$rules" >"$mut/${rules##*/}"
    (cd "$mut" && promtool test rules "${rules_test##*/}" >/dev/null 2>&1) && unexercised+="$a "
done
tap_is "every alert has a case where it must fire (its tests fail when it cannot)" "$unexercised" ""

# ---- the dashboard
if jq -e '.panels | length > 0' "$dashboard" >/dev/null 2>&1; then
    tap_ok "the dashboard is JSON with panels"
else
    tap_fail "the dashboard is JSON with panels" "$(jq . "$dashboard" 2>&1 | tail -n 3)"
fi
queries=$(jq -r '[.. | objects | (.expr?, (if .type? == "query" then .query.query? // .query? else empty end))
    | strings] | .[]' "$dashboard" 2>/dev/null || true)
n=$(grep -c . <<<"$queries" || true)
tap_check "the dashboard has queries ($n)" test "$n" -ge 10
tap_is "every series the dashboard queries is in the scrape" "$(missing_names "$queries")" ""
tap_is "every label the dashboard groups or matches by is in the scrape" "$(missing_labels "$queries")" ""
# Its PromQL parses: each panel query as a recording rule, Grafana's
# variables given values.
{
    printf 'groups:\n  - name: dashboard\n    rules:\n'
    grep -v '^label_values(' <<<"$queries" | sed -e 's/\$__rate_interval/5m/g' -e 's/\$[a-z]*/.*/g' |
        jq -Rr '"      - record: dashboard:query\n        expr: \(. | tojson)"'
} >"$SK_TEST_TMP/dashboard.rules.yml"
out=$(promtool check rules "$SK_TEST_TMP/dashboard.rules.yml" 2>&1) && rc=0 || rc=$?
tap_is "every panel query of the dashboard is valid PromQL (promtool check rules)" "$rc" 0
[[ $rc == 0 ]] || tap_diag "$out"
for t in Readiness Throughput 'Consumer lag' 'In flight' 'Transaction latency' 'Dead letters'; do
    tap_check "the dashboard has a panel \"$t\"" \
        jq -e --arg t "$t" '[.. | objects | .title? | strings | select(startswith($t))] | length > 0' "$dashboard"
done
tap_is "every panel and query uses the dashboard's data source variable" \
    "$(jq -r '[.. | objects | .datasource? | objects | .uid] | unique | .[]' "$dashboard")" '${datasource}'
tap_done
