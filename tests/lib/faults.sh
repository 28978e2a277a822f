# shellcheck shell=bash
# Helpers for the fault suite, tests/integration/5N-fault-*.sh.  Source after
# testlib.sh and daemon.sh.
#
#   SOAK=1               long version (bigger streams, more faults): `make soak`
#   fault_pick FAST SOAK print FAST, or SOAK when SOAK=1
#   fd_start I [-o k=v]  start daemon instance I (any number of them at once);
#                        sets FD_PID[I]; log $SK_TEST_TMP/daemon.N.log
#   fd_wait_ready I [S]  wait until instance I logged "ready:" (default 60 s)
#   fd_kill I SIG        send SIG to instance I; waits when it is KILL or TERM
#                        (FD_RC[I] = exit status)
#   fd_alive I           instance I is running
#   fault_bg CMD...      run CMD in the background, killed at exit
#   fault_stack_stop S   stop mariadb|kafka of the private stack in place
#   fault_stack_start S  start it again (also done at exit, whatever happens)
#   fault_loadgen ARGS   loadgen on the test's topics with a ledger ($FAULT_LEDGER)
#   fault_results_so_far number of messages in the results topic
#   fault_report PREFIX [TIMEOUT_S]
#                        wait for a result for every event of the ledger, then
#                        compare results and tables with the ledger, print the
#                        report as TAP diagnostics and assert it (see below).
#
# The report (one line, then one assertion per number):
#   produced  events in the ledger (what loadgen delivered to Kafka)
#   hostile   invalid events in the ledger
#   applied   distinct valid sources with an "applied" or "duplicate" result
#   rejected  distinct sources with a "rejected" result      (must = hostile)
#   missing   sources without any result                     (must be 0)
#   lost      missing valid results + (game,user) rows whose total is below the
#             ledger's or absent                             (must be 0)
#   twice     score events with two "applied" results + rows whose total is
#             above the ledger's or unexpected               (must be 0)
#   mismatch  mismatching (game,user) rows, and the sum of |db - ledger|
#   users     users rows (nickname) differing from the ledger (must be 0)
#   extra     results beyond one per source (re-consumed after a fault; each of
#             them must be a harmless re-report: see results-check.sh -D)
#   dup_only  sources whose only result is "duplicate" (applied before a crash
#             whose result was never delivered)

SOAK=${SOAK:-0}
fault_pick() { if [[ $SOAK == 1 ]]; then printf '%s\n' "$2"; else printf '%s\n' "$1"; fi; }

declare -A FD_PID=() FD_RC=() FD_LOG=()
FAULT_BG=()
FAULT_STOPPED=()
FAULT_LEDGER=$SK_TEST_TMP/ledger
# Ledger for the result checks (default: FAULT_LEDGER); a test that produces
# events of its own besides loadgen's points it at a ledger holding both,
# while the table totals still come from FAULT_LEDGER alone.
FAULT_RESULTS_LEDGER=
FAULT_CTL=$SK_ROOT/tests/stack/control.sh

# The fault options every instance gets: fast reconnects, short sessions.
FAULT_DAEMON_OPTS=(-o db.retry_min_ms=50 -o db.retry_max_ms=2000 -o shutdown.timeout_ms=20000)

fd_start() {
    local i=$1
    shift
    _d_n=$((_d_n + 1))
    FD_LOG[$i]=$SK_TEST_TMP/daemon.$_d_n.log
    : >"${FD_LOG[$i]}" # fd_wait_ready may read it before the daemon's redirection made it
    local args
    mapfile -t args < <(sk_daemon_args)
    "$SK_DAEMON" "${args[@]}" "${FAULT_DAEMON_OPTS[@]}" "$@" >"${FD_LOG[$i]}" 2>&1 &
    FD_PID[$i]=$!
}

fd_alive() { [[ -n ${FD_PID[$1]:-} ]] && kill -0 "${FD_PID[$1]}" 2>/dev/null; }

fd_wait_ready() {
    local i=$1 tmo=${2:-60} n
    for ((n = 0; n < tmo * 10; n++)); do
        grep -q 'ready:' "${FD_LOG[$i]}" && return 0
        if ! fd_alive "$i"; then
            tap_diag "instance $i exited before READY:"
            tap_diag "$(tail -n 20 "${FD_LOG[$i]}")"
            return 1
        fi
        sleep 0.1
    done
    tap_diag "instance $i not READY within $tmo s: $(tail -n 5 "${FD_LOG[$i]}")"
    return 1
}

fd_kill() {
    local i=$1 sig=$2 pid=${FD_PID[$1]:-}
    [[ -n $pid ]] || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    if [[ $sig == KILL || $sig == TERM ]]; then
        local rc=0
        wait "$pid" 2>/dev/null || rc=$?
        FD_RC[$i]=$rc
        FD_PID[$i]=
    fi
}

fault_bg() {
    "$@" &
    FAULT_BG+=($!)
}

fault_stack_stop() {
    [[ $SK_STACK_OURS == 1 ]] || { tap_diag "external services: cannot stop $1"; return 1; }
    FAULT_STOPPED+=("$1")
    "$FAULT_CTL" stop "$1"
}

fault_stack_start() {
    "$FAULT_CTL" start "$1"
}

# Restore every service this test stopped and check the stack, before the
# databases are dropped.  Runs from the EXIT trap.
_fault_cleanup() {
    local i p s
    for i in "${!FD_PID[@]}"; do
        p=${FD_PID[$i]}
        [[ -n $p ]] && kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    for p in "${FAULT_BG[@]}"; do
        kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    for s in "${FAULT_STOPPED[@]}"; do
        "$FAULT_CTL" start "$s" >&2 || printf '# ERROR: could not restart %s\n' "$s"
    done
    if [[ ${#FAULT_STOPPED[@]} -gt 0 ]]; then
        "$SK_ROOT/tests/stack/stack-check.sh" >/dev/null 2>&1 ||
            printf '# ERROR: the stack is unhealthy after this test\n'
    fi
    return 0
}
trap '_d_rc=$?; set +e; _fault_cleanup; _sk_daemon_cleanup; _sk_cleanup "$_d_rc"' EXIT

fault_loadgen() {
    "$SK_TOOLS/loadgen" -q -b "$KAFKA_BROKERS" --users-topic "$T_USERS" --scores-topic "$T_SCORES" \
        --ledger "$FAULT_LEDGER" "$@"
}

fault_results_so_far() {
    local o
    o=$(timeout 10 kcat -b "$KAFKA_BROKERS" -C -t "$T_RESULTS" -o -1 -c 1 -e -q -f '%o\n' 2>/dev/null || true)
    echo $((${o:--1} + 1))
}

# _fault_rows LEDGER_TOTALS DB_TOTALS: "below above absent extra mismatch absdiff"
_fault_rows() {
    awk -F'\t' '
    FILENAME == ARGV[1] { e[$1 FS $2] = $3; next }
    { a[$1 FS $2] = $3 }
    END {
        for (k in e) {
            if (!(k in a)) { absent++; mis++; d += (e[k] < 0 ? -e[k] : e[k]); continue }
            if (a[k] + 0 < e[k] + 0) { below++; mis++; d += e[k] - a[k] }
            else if (a[k] + 0 > e[k] + 0) { above++; mis++; d += a[k] - e[k] }
        }
        for (k in a) if (!(k in e)) { extra++; mis++; d += (a[k] < 0 ? -a[k] : a[k]) }
        printf "%d %d %d %d %d %.0f\n", below, above, absent, extra, mis, d
    }' "$1" "$2"
}

# fault_report PREFIX [TIMEOUT_S] [EXTRA_LEDGER_MODE]: see the top of the file.
fault_report() {
    local prefix=$1 tmo=${2:-180} sum=$SK_TEST_TMP/summary chk=$SK_TEST_TMP/check rc=0
    local produced hostile rl=${FAULT_RESULTS_LEDGER:-$FAULT_LEDGER}
    produced=$(wc -l <"$rl")
    hostile=$(awk -F'\t' '$3 == "invalid"' "$rl" | wc -l)
    "$SK_ROOT/tests/tools/results-check.sh" -D -q -b "$KAFKA_BROKERS" -t "$T_RESULTS" \
        -l "$rl" -n "$produced" -T "$tmo" -s "$sum" >"$chk" 2>&1 || rc=$?
    local sources=0 missing=0 applied_sources=0 rejected_sources=0 applied_twice=0 inconsistent=0
    local extra=0 dup_only=0 unknown=0 unparseable=0 wrong=0 duplicate=0
    if [[ -f $sum ]]; then
        local k v
        while IFS='=' read -r k v; do
            case $k in
            sources | missing | applied_sources | rejected_sources | applied_twice | inconsistent | \
                extra | dup_only | unknown | unparseable | wrong | duplicate) printf -v "$k" '%s' "${v:-0}" ;;
            esac
        done <"$sum"
    else
        missing=$produced
    fi
    "$SK_ROOT/tests/tools/ledger-totals.sh" "$FAULT_LEDGER" >"$SK_TEST_TMP/want.tsv"
    "$SK_ROOT/tests/tools/db-totals.sh" "$SCOREKEEPER_DB_ADMIN" "$D_DB" "$prefix" >"$SK_TEST_TMP/got.tsv"
    local below above absent xrows mis absdiff
    read -r below above absent xrows mis absdiff < <(_fault_rows "$SK_TEST_TMP/want.tsv" "$SK_TEST_TMP/got.tsv")
    local users_bad
    users_bad=$(diff <("$SK_ROOT/tests/tools/ledger-totals.sh" --users "$FAULT_LEDGER") \
        <("$SK_ROOT/tests/tools/db-totals.sh" --users "$SCOREKEEPER_DB_ADMIN" "$D_DB" "$prefix") |
        grep -c '^[<>]' || true)
    # Valid sources without any result are lost as far as the producers can tell.
    local lost=$((missing + below + absent)) twice=$((applied_twice + above + xrows))
    local report="produced=$produced applied=$applied_sources lost=$lost twice=$twice missing=$missing rejected=$rejected_sources hostile=$hostile"
    report+=" | rows: $(wc -l <"$SK_TEST_TMP/want.tsv") expected, mismatch=$mis (below=$below above=$above absent=$absent extra=$xrows) sum|diff|=$absdiff users_mismatch=$users_bad"
    report+=" | results: sources=$sources extra=$extra duplicate=$duplicate dup_only=$dup_only unknown=$unknown inconsistent=$inconsistent wrong_outcome=$wrong"
    tap_diag "REPORT $report"
    FAULT_REPORT=$report
    [[ $rc == 0 ]] || tap_diag "results-check: $(tail -n 12 "$chk")"
    if [[ $mis != 0 ]]; then
        tap_diag "first mismatching rows (game user ledger db):"
        tap_diag "$(join -t $'\t' -a1 -a2 -e '-' -o 0,1.2,2.2 \
            <(awk -F'\t' '{print $1 ":" $2 "\t" $3}' "$SK_TEST_TMP/want.tsv" | LC_ALL=C sort) \
            <(awk -F'\t' '{print $1 ":" $2 "\t" $3}' "$SK_TEST_TMP/got.tsv" | LC_ALL=C sort) |
            awk -F'\t' '$2 != $3' | head -n 8)"
    fi
    tap_is "lost = 0" "$lost" 0
    tap_is "applied twice = 0" "$twice" 0
    tap_is "results missing = 0" "$missing" 0
    tap_is "rejected = hostile ($hostile)" "$rejected_sources" "$hostile"
    tap_is "applied = produced - hostile" "$applied_sources" "$((produced - hostile))"
    tap_is "tables: mismatching (game,user) rows = 0 (sum of differences $absdiff)" "$mis" 0
    tap_is "users table equals the ledger" "$users_bad" 0
    tap_is "every extra result is a harmless re-report, outcomes match the ledger" \
        "unknown=$unknown inconsistent=$inconsistent wrong=$wrong unparseable=$unparseable check_rc=$rc" \
        "unknown=0 inconsistent=0 wrong=0 unparseable=0 check_rc=0"
}
