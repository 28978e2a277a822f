#!/usr/bin/env bash
# bench.sh — the scorekeeper benchmark behind `make bench`.  See tests/bench/README.md.
#
# Runs the plain -O2 build (build/scorekeeper) on the local stack (started or
# reused) with private topics and a fresh database per run, and writes
# $BENCH_OUT/results.md (default build/bench/results.md), batch.png,
# profile.txt, summary.tsv and the raw data of every run.
#
# Steps (each can be sized or switched off with the variables below):
#   one       (BENCH_ONE=1) the same stream again from a topic of one partition, as
#             Kafka auto-creates it: events/s beside the main run's and the ceiling
#   main      BENCH_EVENTS score events pre-produced, then the daemon drains them:
#             events/s, rows/s, peak RSS, CPU s per million events; results
#             checked one-per-input and ledger totals == database totals
#             (a mismatch fails the benchmark)
#   latency   a daemon started on the main run's database, fed at half the
#             measured rate, then unthrottled, streams of the main run's world
#             (loadgen --world-seed: the same games and players, as after a
#             restart): result CreateTime - sk-sent-ns header -> p50/p95/p99/max;
#             then the half-speed stream into a fresh database (cold start)
#   ceiling   the same row changes replayed by the mariadb client as 1000-row
#             INSERT ... ON DUPLICATE KEY UPDATE statements, one transaction each
#   sweep     batch.max_events, batch.linger_ms, db.pool_size one at a time
#   mem       (BENCH_MEM=1) a big backlog in Kafka while the database is blocked
#   profile   callgrind on a small stream: instructions per event, top functions
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$root"

: "${BENCH_EVENTS:=1000000}"        # main stream: score events
: "${BENCH_GAMES:=1000}"
: "${BENCH_USERS:=100000}"
: "${BENCH_USER_PCT:=0}"            # share of user events in the streams
: "${BENCH_PARTITIONS:=4}"          # input topic partitions
: "${BENCH_ONE:=1}"                 # 0: skip the main stream's second drain, from one partition
: "${BENCH_SEED:=42}"
: "${BENCH_LAT_EVENTS:=}"           # latency runs; default: 20 s at half rate, >= 2000
: "${BENCH_LAT:=1}"                 # 0: skip the latency runs
: "${BENCH_LAT_RATE:=}"             # events/s of the first latency run; default: half the main rate
: "${BENCH_BARE:=1}"                # 0: skip the bare client beside the half-speed run
: "${BENCH_LAT_COLD:=1}"            # 0: skip the cold-start run (half speed into a fresh database)
: "${BENCH_CEILING:=1}"
: "${BENCH_SWEEP:=1}"
: "${BENCH_SWEEP_EVENTS:=200000}"
: "${BENCH_SWEEP_RATE:=2000}"       # fixed moderate rate for the sweep's p99
: "${BENCH_SWEEP_LAT_EVENTS:=20000}"
: "${BENCH_SWEEP_BATCH:=50 100 250 500 1000 2000}"
: "${BENCH_SWEEP_LINGER:=0 5 20 50}"
: "${BENCH_SWEEP_POOL:=1 2 4 8}"
: "${BENCH_MEM:=1}"
: "${BENCH_MEM_EVENTS:=5000000}"
: "${BENCH_MEM_BLOCK_S:=20}"        # seconds the database stays locked in the mem run
: "${BENCH_MEM_DRAIN_S:=30}"        # then seconds of draining before SIGTERM (0: drain all)
: "${BENCH_PROFILE:=1}"
: "${BENCH_PROFILE_EVENTS:=50000}"
: "${BENCH_TIMEOUT:=1800}"          # seconds to wait for one run's results
: "${BENCH_OUT:=build/bench}"
: "${BENCH_KEEP_DB:=0}"             # 1: leave the databases behind
: "${BENCH_LOADGEN_OPTS:=}"         # extra loadgen arguments for every stream, space-separated
: "${BENCH_OPTS:=}"                 # extra -o settings for every daemon, space-separated

: "${BENCH_BIN:=$root/build/scorekeeper}" # the daemon measured: another build for an A/B
SK_BIN=$BENCH_BIN
export SK_TOOLS=$root/build/tools
for f in "$SK_BIN" "$SK_TOOLS/loadgen" "$SK_TOOLS/mktopic" "$SK_TOOLS/sqlpace"; do
    [[ -x $f ]] || { echo "bench: $f missing; run it through 'make bench'" >&2; exit 2; }
done

# The stack: reuse a healthy one (or external services), else start one.
if [[ -z ${KAFKA_BROKERS:-} || -z ${SCOREKEEPER_DB_URL:-} ]]; then
    tests/stack/stack-up.sh >&2
fi
# shellcheck source=tests/lib/testlib.sh
source "$root/tests/lib/testlib.sh"
((BENCH_KEEP_DB)) && : >"$SK_TEST_TMP/.dbs.keep"

mkdir -p "$BENCH_OUT"
OUT=$(cd "$BENCH_OUT" && pwd -P)
rm -f "$OUT"/*.tsv "$OUT"/*.log "$OUT"/*.png "$OUT"/results.md "$OUT"/profile.txt "$OUT"/callgrind.out.*
RUNS=$OUT/runs
rm -rf "$RUNS"
mkdir -p "$RUNS"
SUMMARY=$OUT/summary.tsv
: >"$SUMMARY"
HZ=$(getconf CLK_TCK)
M=1000000000000000 # set-marker for the ceiling SQL (see gen_ceiling_sql)

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
put() { printf '%s\t%s\n' "$1" "$2" >>"$SUMMARY"; } # key value
get() { awk -F'\t' -v k="$1" '$1 == k { v = $2 } END { print v }' "$SUMMARY"; }
now_ms() { date +%s%3N; }
calc() { awk "BEGIN { printf \"%s\", $* }"; } # calc 'EXPR' (awk syntax)
fmt() { awk -v x="$1" -v d="${2:-0}" 'BEGIN { printf "%.*f", d, x }'; }

# ------------------------------------------------------------ the daemon(s)
D_PIDS=()
_bench_cleanup() {
    local p
    for p in "${D_PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
    done
    [[ -n ${LOCK_PID:-} ]] && kill "$LOCK_PID" 2>/dev/null || true
    if [[ -f $SK_TEST_TMP/.dbs.keep ]]; then : >"$SK_TEST_TMP/.dbs"; fi
}
trap '_b_rc=$?; set +e; _bench_cleanup; _sk_cleanup "$_b_rc"' EXIT

# new_run NAME [PARTITIONS] [DB]: fresh topics and a fresh database
# (migrated by the daemon, runtime user granted), or the existing DB.  Sets
# R_NAME R_DB R_USERS R_SCORES R_RESULTS R_GROUP R_DIR.
new_run() {
    local name=$1 parts=${2:-$BENCH_PARTITIONS}
    R_NAME=$name
    R_DIR=$RUNS/$name
    mkdir -p "$R_DIR"
    if [[ -n ${3:-} ]]; then
        R_DB=$3
    else
        R_DB="b_${name}_$(_sk_rand)"
        sk_track_db "$R_DB"
        sk_sql "" "CREATE DATABASE \`$R_DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
        if [[ -n ${SCOREKEEPER_DB_SOCKET:-} ]]; then
            "$SK_BIN" -o "db.url=mariadb://root@localhost/$R_DB?socket=$SCOREKEEPER_DB_SOCKET" \
                -o "kafka.bootstrap.servers=$KAFKA_BROKERS" -o sql.dir=sql migrate >"$R_DIR/migrate.log" 2>&1 ||
                die "migrate $R_DB: $(tail -3 "$R_DIR/migrate.log")"
        else
            tests/tools/db-migrate.sh "$R_DB" 2>"$R_DIR/migrate.log" || die "migrate $R_DB"
        fi
        sk_apply_grants "$R_DB"
    fi
    R_USERS=$(sk_unique "b_$name.users")
    R_SCORES=$(sk_unique "b_$name.scores")
    R_RESULTS=$(sk_unique "b_$name.results")
    R_GROUP=$(sk_unique "b_$name.group")
    sk_mktopic "$R_USERS" "$parts" >/dev/null
    sk_mktopic "$R_SCORES" "$parts" >/dev/null
    sk_mktopic "$R_RESULTS" 1 >/dev/null
}

# produce SEED N LEDGER [loadgen args...]: the stream into the run's topics.
produce() {
    local seed=$1 n=$2 ledger=$3 more
    shift 3
    read -ra more <<<"$BENCH_LOADGEN_OPTS"
    "$SK_TOOLS/loadgen" -q -b "$KAFKA_BROKERS" --users-topic "$R_USERS" --scores-topic "$R_SCORES" \
        -n "$n" -g "$BENCH_GAMES" -u "$BENCH_USERS" --user-events-pct "$BENCH_USER_PCT" \
        --seed "$seed" --prefix b --ledger "$ledger" "${more[@]}" "$@" ||
        die "loadgen failed ($R_NAME)"
}

# start_daemon [WRAPPER...] -- [-o k=v...]: start on the current run; wait for
# "ready:".  Sets D_PID D_LOG D_T_LAUNCH D_T_READY (ms) and starts the sampler.
start_daemon() {
    local wrap=() extra=() o
    while [[ $# -gt 0 && $1 != -- ]]; do wrap+=("$1"); shift; done
    [[ $# -gt 0 ]] && shift
    extra=("$@")
    for o in $BENCH_OPTS; do extra+=(-o "$o"); done
    D_LOG=$R_DIR/daemon.log
    D_T_LAUNCH=$(now_ms)
    "${wrap[@]}" "$SK_BIN" \
        -o "db.url=mariadb://${SK_DB_USER}@${SK_DB_HOST}:${SK_DB_PORT}/${R_DB}" \
        -o "db.password_file=$SCOREKEEPER_DB_PASSWORD_FILE" \
        -o "kafka.bootstrap.servers=$KAFKA_BROKERS" -o "kafka.group.id=$R_GROUP" \
        -o "topic.users=$R_USERS" -o "topic.scores=$R_SCORES" -o "topic.results=$R_RESULTS" \
        -o results.echo_headers=sk-sent-ns,correlation-id -o metrics.listen=127.0.0.1:0 \
        "${extra[@]}" >"$D_LOG" 2>&1 &
    D_PID=$!
    D_PIDS+=("$D_PID")
    local i
    for ((i = 0; i < 1200; i++)); do
        if grep -qs 'ready:' "$D_LOG"; then
            D_T_READY=$(now_ms)
            sampler "$D_PID" "$R_DIR/samples.tsv" &
            return 0
        fi
        kill -0 "$D_PID" 2>/dev/null || die "daemon exited before ready ($R_NAME): $(tail -5 "$D_LOG")"
        sleep 0.1
    done
    die "daemon not ready within 120 s ($R_NAME): $(tail -5 "$D_LOG")"
}

# proc_cpu PID: utime+stime in seconds.  proc_hwm PID: VmHWM in kB.
proc_cpu() {
    local s
    s=$(<"/proc/$1/stat") || return 1
    s=${s##*) }
    awk -v hz="$HZ" '{ printf "%.2f", ($12 + $13) / hz }' <<<"$s"
}
# daemon_cpu PID: the CPU time of the daemon's threads in seconds, to the
# nanosecond (schedstat): a short latency run can cost less than the clock
# tick utime and stime count in.  Its threads live as long as it does, so
# none is missed; falls back to proc_cpu where schedstat is not there.
daemon_cpu() {
    local f ns=0 t
    for f in /proc/"$1"/task/*/schedstat; do
        read -r t _ <"$f" 2>/dev/null || continue
        ns=$((ns + t))
    done
    if ((ns > 0)); then
        awk -v ns="$ns" 'BEGIN { printf "%.6f", ns / 1e9 }'
    else
        proc_cpu "$1"
    fi
}
# cpu_snap PID FILE: each live thread's CPU time in ns (schedstat), for
# cpu_since.  A short latency run can cost a process less than the clock
# tick utime and stime count in, the server's as well as the daemon's.
cpu_snap() {
    local f t
    for f in /proc/"$1"/task/*/schedstat; do
        read -r t _ <"$f" 2>/dev/null || continue
        f=${f%/schedstat}
        printf '%s %s\n' "${f##*/}" "$t"
    done >"$2"
}
# cpu_since PID FILE: seconds of CPU the threads of PID used since cpu_snap
# wrote FILE (a thread started since counts whole; one that ended is missed,
# so the figure never goes below 0); "" when PID is not ours to see.
cpu_since() {
    [[ -n $1 && -r /proc/$1/stat && -s $2 ]] || return 0
    cpu_snap "$1" "$2.now"
    awk 'NR == FNR { t0[$1] = $2; next } { d = $2 - ($1 in t0 ? t0[$1] : 0); if (d > 0) s += d }
         END { printf "%.6f", s / 1e9 }' "$2" "$2.now"
}
# svc_cpu PID: proc_cpu of a stack service, "" when it is not ours to see (external stack)
svc_cpu() { [[ -n $1 && -r /proc/$1/stat ]] && proc_cpu "$1" 2>/dev/null || true; }
proc_hwm() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$1/status"; }

# sampler PID FILE: every 0.25 s: ms  VmRSS kB  VmHWM kB  cpu s  (until PID exits)
sampler() {
    local pid=$1 file=$2 rss hwm cpu
    while [[ -r /proc/$pid/status ]]; do
        rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status" 2>/dev/null) || break
        hwm=$(proc_hwm "$pid" 2>/dev/null) || break
        cpu=$(proc_cpu "$pid" 2>/dev/null) || break
        [[ -n $rss ]] || break
        printf '%s\t%s\t%s\t%s\n' "$(now_ms)" "$rss" "$hwm" "$cpu" >>"$file"
        sleep 0.25
    done
}

# machine_sampler FILE: every 0.1 s, the whole machine's idle, iowait and
# steal time in /proc/stat (ticks, summed over the cores): ms idle iowait
# steal.  Steal is the time the host ran something else on our virtual
# cores; this machine's counts overrun wall time (idle 877, busy 21, iowait
# 5 and steal 397 ticks in 5 s of two cores), so it is a sign, not a
# measure.  Builtins only but sleep, so that watching costs next to nothing
# (the clock without its decimal point, whichever the locale uses).
machine_sampler() {
    local file=$1 _c _u _n _s idle iow _i _si steal _r
    while :; do
        read -r _c _u _n _s idle iow _i _si steal _r </proc/stat
        printf '%s\t%s\t%s\t%s\n' "$((${EPOCHREALTIME//[!0-9]/} / 1000))" "$idle" "$iow" "${steal:-0}" >>"$file"
        sleep 0.1
    done
}

# machine_per_second SAMPLES RESULTS -> three lines, for each second in which
# events were sent (the seconds latency_per_second lists): the mean idle
# cores, the most cores waiting for the disk in any 0.1 s (a disk that
# stalls for 0.1 s shows there, not in a mean), and the mean cores stolen.
machine_per_second() {
    local t0
    t0=$(awk -F'\t' '$2 != "-" { s = $2 / 1e6; if (n++ == 0 || s < a) a = s } END { printf "%.3f", a }' "$2")
    send_latency "$2" | awk -F'\t' -v t0="$t0" -v hz="$HZ" '
        FNR == NR { s = int($1 / 1000); sent[s] = 1; if (s > last) last = s; next }
        FNR > 1 && $1 > pt { s = int(($1 - t0) / 1000); dt = ($1 - pt) / 1000
            if (s in sent) {
                w[s] += dt; idle[s] += ($2 - pi) / hz; st[s] += ($4 - ps) / hz
                io = ($3 - pw) / hz / dt; if (io > iow[s]) iow[s] = io } }
        { pt = $1; pi = $2; pw = $3; ps = $4 }
        END { for (l = 0; l < 3; l++) { sep = ""
                  for (s = 0; s <= last; s++) if (s in sent) {
                      v = l == 1 ? iow[s] : !w[s] ? 0 : l == 0 ? idle[s] / w[s] : st[s] / w[s]
                      printf "%s%.2f", sep, v; sep = " " }
                  print "" } }' - "$1"
}

stop_daemon() {
    kill -TERM "$D_PID" 2>/dev/null || true
    D_RC=0
    wait "$D_PID" || D_RC=$?
    ((D_RC == 0)) || log "warning: daemon ($R_NAME) exited $D_RC"
}

# high watermark of the results topic (it has one partition)
results_count() {
    local r
    r=$(timeout 20 kcat -b "$KAFKA_BROKERS" -Q -t "$R_RESULTS:0:-1" 2>/dev/null) || { echo 0; return; }
    awk '{ print $NF + 0 }' <<<"$r"
}

# wait_results N: poll (cheaply: one metadata request) until N results exist.
wait_results() {
    local want=$1 deadline=$((SECONDS + BENCH_TIMEOUT)) got=0
    while :; do
        got=$(results_count)
        ((got >= want)) && return 0
        kill -0 "$D_PID" 2>/dev/null || die "daemon ($R_NAME) died with $got of $want results: $(tail -5 "$D_LOG")"
        ((SECONDS < deadline)) || die "only $got of $want results after ${BENCH_TIMEOUT}s ($R_NAME)"
        sleep 0.2
    done
}

# read_results FROM N FILE: CreateTime ms <TAB> sk-sent-ns (or -) of results FROM..FROM+N-1
read_results() {
    local from=$1 n=$2 file=$3
    timeout 600 kcat -b "$KAFKA_BROKERS" -C -t "$R_RESULTS" -p 0 -o "$from" -c "$n" -q -f '%T\t%h\n' |
        awk -F'\t' '{ s = "-"; if (match($2, /sk-sent-ns=[0-9]+/)) s = substr($2, RSTART + 11, RLENGTH - 11)
                      print $1 "\t" s }' >"$file"
    [[ $(wc -l <"$file") -eq $n ]] || die "read $(wc -l <"$file") of $n results ($R_NAME)"
}

# send_latency FILE -> per result: ms since the first send <TAB> latency ms
send_latency() {
    awk -F'\t' '$2 != "-" { s = $2 / 1e6; if (n == 0 || s < t0) t0 = s; n++; sent[n] = s; lat[n] = $1 - s }
        END { for (i = 1; i <= n; i++) printf "%.3f\t%.3f\n", sent[i] - t0, lat[i] }' "$1"
}

# latency_stats FILE [SKIP_MS] -> "count p50 p95 p99 max first_ms last_ms"
# (latency in ms; first/last: CreateTime of the results).  With SKIP_MS, only
# the events sent SKIP_MS or more after the first one count: that leaves out
# the warm-up of a fresh daemon (new rows, new users), which set the p99 of
# 20 s runs.
latency_stats() {
    send_latency "$1" | awk -F'\t' -v skip="${2:-0}" '$1 >= skip { print $2 }' | LC_ALL=C sort -g >"$1.lat"
    local first last
    read -r first last < <(awk -F'\t' 'NR == 1 || $1 < a { a = $1 } NR == 1 || $1 > b { b = $1 } END { print a, b }' "$1")
    awk -v first="$first" -v last="$last" '{ v[NR] = $1 }
        function p(q,  i) { i = int(q * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; return v[i] }
        END { if (NR == 0) { print 0, "-", "-", "-", "-", first, last; exit }
              printf "%d %.1f %.1f %.1f %.1f %s %s\n", NR, p(0.50), p(0.95), p(0.99), v[NR], first, last }' "$1.lat"
}

# latency_per_second FILE -> the p99 (ms, rounded) of the events sent in each
# second of the run, space-separated: where in a run its tail comes from.
latency_per_second() {
    send_latency "$1" | awk -F'\t' '{ printf "%d\t%s\n", int($1 / 1000), $2 }' | LC_ALL=C sort -k1,1n -k2,2g |
        awk -F'\t' 'function flush() { if (c) { i = int(0.99 * c + 0.999999); printf "%s%.0f", sep, v[i]; sep = " " } }
            $1 != sec { flush(); sec = $1; c = 0 } { v[++c] = $2 } END { flush(); print "" }'
}

# daemon_quantiles NAME...: from the running daemon's /metrics, "p50 p99" in
# ms of each histogram NAME, space-separated ("- -" when it has none).
# Estimated as Prometheus' histogram_quantile does: linear within the bucket
# where the quantile falls (the lower bound when that is +Inf).
daemon_quantiles() {
    local port text name
    port=$(sed -n 's|.*metrics on http://[^ ]*:\([0-9]*\)/metrics.*|\1|p' "$D_LOG" | tail -1)
    text=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics" 2>/dev/null) || text=
    for name in "$@"; do
        awk -v n="${name}_bucket{le=\"" '
            index($0, n) == 1 { le = substr($1, length(n) + 1); sub(/"}$/, "", le)
                                k++; upper[k] = le == "+Inf" ? -1 : le + 0; cum[k] = $2 + 0 }
            function q(f,   i, want, lo, below) {
                want = f * cum[k]; lo = 0; below = 0
                for (i = 1; i <= k; i++) {
                    if (cum[i] >= want)
                        return upper[i] < 0 ? lo * 1000 : (lo + (upper[i] - lo) * (want - below) / (cum[i] - below)) * 1000
                    lo = upper[i]; below = cum[i]
                }
            }
            END { if (!k || !cum[k]) { printf "- -"; exit } printf "%.1f %.1f", q(0.5), q(0.99) }' <<<"$text"
        printf ' '
    done
    echo
}

# drain_shape PREFIX N: where a drain's events spent their time and how they
# were grouped, from the running daemon's /metrics (means of its histograms,
# in ms: the wait from consuming an event to the start of its transaction,
# the transactions, consuming to the result) and its log (holds at the
# in-flight limit, slow transactions): PREFIX_txns, PREFIX_events_per_txn,
# PREFIX_games_per_txn, PREFIX_wait_ms, PREFIX_txn_ms, PREFIX_event_ms,
# PREFIX_holds, PREFIX_slow.  Call before stop_daemon.
drain_shape() {
    local p=$1 n=$2 port text
    port=$(sed -n 's|.*metrics on http://[^ ]*:\([0-9]*\)/metrics.*|\1|p' "$D_LOG" | tail -1)
    text=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics" 2>/dev/null) || text=
    awk -v p="$p" -v n="$n" '
        $1 == "scorekeeper_transactions_total" { tx = $2 }
        $1 == "scorekeeper_batches_total" { b = $2 }
        { k = $1; sub(/\{\}$/, "", k) } # a histogram without labels: name_sum{} v
        k ~ /^scorekeeper_(event_wait_seconds|db_transaction_seconds|event_seconds)_(sum|count)$/ { v[k] = $2 }
        function mean(h) { c = v[h "_count"]; return c > 0 ? sprintf("%.1f", v[h "_sum"] * 1000 / c) : "-" }
        END { if (tx > 0) { printf "%s_txns\t%d\n%s_events_per_txn\t%.1f\n%s_games_per_txn\t%.1f\n", p, tx, p, n / tx, p, b / tx }
              printf "%s_wait_ms\t%s\n%s_txn_ms\t%s\n%s_event_ms\t%s\n", p, mean("scorekeeper_event_wait_seconds"),
                     p, mean("scorekeeper_db_transaction_seconds"), p, mean("scorekeeper_event_seconds") }' <<<"$text" >>"$SUMMARY"
    put "${p}_holds" "$(grep -c ': paused ' "$D_LOG" || true)"
    put "${p}_slow" "$(grep -c 'slow transaction' "$D_LOG" || true)"
}

# db_status: Handler_write Handler_update Com_commit Innodb_data_fsyncs (global;
# MariaDB 10.11 has no Innodb_rows_* counters any more).  An upsert that hits an
# existing row counts one Handler_write attempt and one Handler_update.
db_status() {
    sk_sql "" "SHOW GLOBAL STATUS WHERE Variable_name IN ('Handler_write','Handler_update','Com_commit','Innodb_data_fsyncs')" |
        awk '{ v[$1] = $2 } END { print v["Handler_write"] + 0, v["Handler_update"] + 0, v["Com_commit"] + 0, v["Innodb_data_fsyncs"] + 0 }'
}
# table_changed DB TABLE: rows changed (userstat TABLE_STATISTICS), "" when unavailable
table_changed() {
    sk_sql "" "SELECT COALESCE(SUM(ROWS_CHANGED),0) FROM information_schema.TABLE_STATISTICS
               WHERE TABLE_SCHEMA = '$1' AND TABLE_NAME = '$2'" 2>/dev/null || true
}

# verify LEDGER N [TOTALS]: one result per input of LEDGER with the right
# status, and the database equals TOTALS (default LEDGER: the ledger of
# everything the database was fed).  Failure stops the benchmark.
verify() {
    local ledger=$1 n=$2 totals=${3:-$1}
    tests/tools/results-check.sh -q -b "$KAFKA_BROKERS" -t "$R_RESULTS" -l "$ledger" -n "$n" \
        -i "$R_USERS" -i "$R_SCORES" -T 120 >"$R_DIR/results-check.txt" 2>&1 ||
        die "results-check ($R_NAME): $(tail -5 "$R_DIR/results-check.txt")"
    verify_totals "$totals" "$R_DB"
}
verify_totals() {
    local ledger=$1 db=$2
    tests/tools/ledger-totals.sh "$ledger" >"$R_DIR/expected.tsv"
    tests/tools/db-totals.sh "$SCOREKEEPER_DB_ADMIN" "$db" b >"$R_DIR/actual.$db.tsv"
    if ! cmp -s "$R_DIR/expected.tsv" "$R_DIR/actual.$db.tsv"; then
        diff "$R_DIR/expected.tsv" "$R_DIR/actual.$db.tsv" | head -5 >&2 || true
        die "database $db differs from the ledger ($R_NAME): a benchmark that loses data is a failure"
    fi
    rm -f "$R_DIR/actual.$db.tsv"
}

peak_rss_mb() { # samples file -> max VmHWM in MB
    awk -F'\t' '$3 > m { m = $3 } END { printf "%.1f", m / 1024 }' "$1"
}

# ---------------------------------------------------------------- main run
sk_sql "" "SET GLOBAL userstat = 1" >/dev/null 2>&1 || log "note: userstat unavailable; per-table row counts omitted"
log "load before: $(uptime)"
put load_before "$(uptime | sed 's/.*load average: //')"
put events "$BENCH_EVENTS"
put partitions "$BENCH_PARTITIONS"

new_run main
MAIN_DB=$R_DB
main_ledger=$R_DIR/ledger
log "main: producing $BENCH_EVENTS events ($BENCH_GAMES games, $BENCH_USERS users, $BENCH_PARTITIONS partitions)"
t=$(now_ms)
produce "$BENCH_SEED" "$BENCH_EVENTS" "$main_ledger"
put produce_s "$(calc "($(now_ms) - $t) / 1000")"
read -r ins0 upd0 com0 fs0 < <(db_status)
start_daemon --
cpu_ready=$(daemon_cpu "$D_PID")
db_cpu0=$(svc_cpu "${MARIADB_PID:-}") kafka_cpu0=$(svc_cpu "${KAFKA_PID:-}")
log "main: daemon ready; draining"
wait_results "$BENCH_EVENTS"
t_done=$(now_ms)
cpu_done=$(daemon_cpu "$D_PID")
db_cpu1=$(svc_cpu "${MARIADB_PID:-}") kafka_cpu1=$(svc_cpu "${KAFKA_PID:-}")
hwm_done=$(proc_hwm "$D_PID")
read -r ins1 upd1 com1 fs1 < <(db_status)
drain_shape main "$BENCH_EVENTS"
stop_daemon
read_results 0 "$BENCH_EVENTS" "$R_DIR/results.tsv"
read -r _ _ _ _ _ first_ms last_ms < <(latency_stats "$R_DIR/results.tsv")
n=$BENCH_EVENTS
put main_eps_first_last "$(calc "$n / (($last_ms - $first_ms) / 1000)")"
put main_eps_ready_last "$(calc "$n / (($last_ms - $D_T_READY) / 1000)")"
put main_secs "$(calc "($last_ms - $D_T_READY) / 1000")"
put main_wait_ready_s "$(calc "($D_T_READY - $D_T_LAUNCH) / 1000")"
put main_cpu_s "$(calc "$cpu_done - $cpu_ready")"
put main_cpu_s_per_m "$(calc "($cpu_done - $cpu_ready) * 1000000 / $n")"
put main_cpu_util "$(calc "($cpu_done - $cpu_ready) / (($t_done - $D_T_READY) / 1000)")"
put main_rss_peak_mb "$(awk -v a="$(peak_rss_mb "$R_DIR/samples.tsv")" -v b="$hwm_done" 'BEGIN { b /= 1024; printf "%.1f", (a > b ? a : b) }')"
if [[ -n $db_cpu0 && -n $db_cpu1 ]]; then
    put main_db_cpu_s_per_m "$(calc "($db_cpu1 - $db_cpu0) * 1000000 / $n")"
    put main_db_cpu_util "$(calc "($db_cpu1 - $db_cpu0) / (($t_done - $D_T_READY) / 1000)")"
fi
if [[ -n $kafka_cpu0 && -n $kafka_cpu1 ]]; then
    put main_kafka_cpu_s_per_m "$(calc "($kafka_cpu1 - $kafka_cpu0) * 1000000 / $n")"
    put main_kafka_cpu_util "$(calc "($kafka_cpu1 - $kafka_cpu0) / (($t_done - $D_T_READY) / 1000)")"
fi
put main_handler_write "$((ins1 - ins0))"
put main_handler_update "$((upd1 - upd0))"
put main_handler_ops "$((ins1 - ins0 + upd1 - upd0))"
put main_commits "$((com1 - com0))"
put main_fsyncs "$((fs1 - fs0))"
gp=$(table_changed "$R_DB" game_players)
go=$(table_changed "$R_DB" game_offsets)
put main_gp_rows "${gp:-}"
put main_batches "${go:-}"
put main_gp_final_rows "$(sk_sql "$R_DB" 'SELECT COUNT(*) FROM game_players')"
[[ -n $gp ]] && put main_gp_rows_per_s "$(calc "$gp / (($last_ms - $D_T_READY) / 1000)")"
log "main: $(fmt "$(get main_eps_ready_last)") events/s; verifying"
verify "$main_ledger" "$n"
put main_verified yes
log "main: verified (one result per input, database == ledger)"

# ------------------------------------------------- the same, one partition
# Per-game batching should keep the pool as busy with one partition as
# with several: the same stream (same seed) into topics of one partition
# and a fresh database, drained and checked the same way.
if ((BENCH_ONE)) && ((BENCH_PARTITIONS != 1)); then
    new_run one 1
    log "one partition: producing the same $BENCH_EVENTS events into one partition"
    produce "$BENCH_SEED" "$BENCH_EVENTS" "$R_DIR/ledger"
    read -r ins0 upd0 com0 fs0 < <(db_status)
    start_daemon --
    cpu_ready=$(daemon_cpu "$D_PID")
    db_cpu0=$(svc_cpu "${MARIADB_PID:-}") kafka_cpu0=$(svc_cpu "${KAFKA_PID:-}")
    wait_results "$BENCH_EVENTS"
    cpu_done=$(daemon_cpu "$D_PID")
    db_cpu1=$(svc_cpu "${MARIADB_PID:-}") kafka_cpu1=$(svc_cpu "${KAFKA_PID:-}")
    read -r ins1 upd1 com1 fs1 < <(db_status)
    drain_shape one "$BENCH_EVENTS"
    stop_daemon
    read_results 0 "$BENCH_EVENTS" "$R_DIR/results.tsv"
    read -r _ _ _ _ _ _ last_ms < <(latency_stats "$R_DIR/results.tsv")
    put one_eps_ready_last "$(calc "$BENCH_EVENTS / (($last_ms - $D_T_READY) / 1000)")"
    # the server's work per event, beside the main run's (main_*)
    put one_cpu_s_per_m "$(calc "($cpu_done - $cpu_ready) * 1000000 / $BENCH_EVENTS")"
    [[ -n $db_cpu0 && -n $db_cpu1 ]] && put one_db_cpu_s_per_m "$(calc "($db_cpu1 - $db_cpu0) * 1000000 / $BENCH_EVENTS")"
    [[ -n $kafka_cpu0 && -n $kafka_cpu1 ]] && put one_kafka_cpu_s_per_m "$(calc "($kafka_cpu1 - $kafka_cpu0) * 1000000 / $BENCH_EVENTS")"
    put one_handler_ops "$((ins1 - ins0 + upd1 - upd0))"
    put one_commits "$((com1 - com0))"
    put one_gp_rows "$(table_changed "$R_DB" game_players)"
    put one_batches "$(table_changed "$R_DB" game_offsets)"
    put one_vs_main "$(calc "$(get one_eps_ready_last) / $(get main_eps_ready_last)")"
    log "one partition: $(fmt "$(get one_eps_ready_last)") events/s; verifying"
    verify "$R_DIR/ledger" "$BENCH_EVENTS"
    put one_verified yes
    log "one partition: verified (one result per input, database == ledger)"
fi

# ------------------------------------------------------------- latency runs
# half_speed KEY: the run's daemon fed $lat_n events at $rate/s (ledger.1,
# results.1.tsv in R_DIR).  Puts KEY (p50 p95 p99 max ms) and KEY_n, the same
# for the events sent after the first 2 s (KEY_steady, KEY_steady_n), and
# the p99 of each second of sending (KEY_p99_per_s).
half_speed() {
    local key=$1 c p50 p95 p99 mx mpid idle iow steal ins0 upd0 com0 ins1 upd1 com1 gp0 go0 gp1 go1
    local cpu dc
    read -r ins0 upd0 com0 _ < <(db_status)
    gp0=$(table_changed "$R_DB" game_players) go0=$(table_changed "$R_DB" game_offsets)
    cpu_snap "$D_PID" "$R_DIR/cpu0.daemon"
    [[ -n ${MARIADB_PID:-} && -r /proc/$MARIADB_PID/stat ]] && cpu_snap "$MARIADB_PID" "$R_DIR/cpu0.db"
    machine_sampler "$R_DIR/machine.tsv" &
    mpid=$!
    produce $((BENCH_SEED + 1)) "$lat_n" "$R_DIR/ledger.1" --rate "$rate" --world-seed "$BENCH_SEED"
    wait_results "$lat_n"
    kill "$mpid" 2>/dev/null || true
    wait "$mpid" 2>/dev/null || true
    cpu=$(cpu_since "$D_PID" "$R_DIR/cpu0.daemon") dc=$(cpu_since "${MARIADB_PID:-}" "$R_DIR/cpu0.db")
    read -r ins1 upd1 com1 _ < <(db_status)
    gp1=$(table_changed "$R_DB" game_players) go1=$(table_changed "$R_DB" game_offsets)
    # what the same events cost at this rate, to set beside the main run's
    put "${key}_cpu_s_per_m" "$(calc "${cpu:-0} * 1000000 / $lat_n")"
    [[ -n $dc ]] && put "${key}_db_cpu_s_per_m" "$(calc "$dc * 1000000 / $lat_n")"
    put "${key}_handler_ops" "$((ins1 - ins0 + upd1 - upd0))"
    put "${key}_commits" "$((com1 - com0))"
    [[ -n $gp0 && -n $gp1 ]] && put "${key}_gp_rows" "$((gp1 - gp0))"
    [[ -n $go0 && -n $go1 ]] && put "${key}_batches" "$((go1 - go0))"
    read_results 0 "$lat_n" "$R_DIR/results.1.tsv"
    read -r c p50 p95 p99 mx _ _ < <(latency_stats "$R_DIR/results.1.tsv")
    put "${key}_n" "$c"
    put "$key" "$p50 $p95 $p99 $mx"
    read -r c p50 p95 p99 mx _ _ < <(latency_stats "$R_DIR/results.1.tsv" 2000)
    put "${key}_steady_n" "$c"
    put "${key}_steady" "$p50 $p95 $p99 $mx"
    put "${key}_p99_per_s" "$(latency_per_second "$R_DIR/results.1.tsv")"
    { read -r idle || true; read -r iow || true; read -r steal || true; } \
        < <(machine_per_second "$R_DIR/machine.tsv" "$R_DIR/results.1.tsv")
    put "${key}_idle_per_s" "$idle"
    put "${key}_iowait_per_s" "$iow"
    put "${key}_steal_per_s" "$steal"
}

# bare_client KEY LEDGER DB: the ledger's score changes committed by plain
# client connections, as many as the daemon's pool (tests/tools/sqlpace), at the rate of the run KEY,
# in transactions of the daemon's mean batch in that run (one game's events
# folded into its rows, one autocommit upsert each), on DB (whose users and
# rows exist; it is not verified after this).  Puts KEY_bare "p50 p99
# statements late rows_per_statement" (ms): the database's own share of a
# transaction's time at that load, beside the daemon's.
bare_client() {
    local key=$1 ledger=$2 db=$3 k n b out
    n=$(get "${key}_n") b=$(get "${key}_batches")
    [[ -n $n && -n $b && $b -gt 0 && -n ${SCOREKEEPER_DB_SOCKET:-} ]] || return 0
    k=$(awk -v n="$n" -v b="$b" 'BEGIN { k = int(n / b + 0.5); print (k < 1 ? 1 : k) }')
    sk_sql "$db" "SELECT username, id FROM users" >"$R_DIR/bare.users"
    awk -F'\t' -v K="$k" -v M="$M" '
        FILENAME == ARGV[1] { id[$1] = $2; next }
        function flush(g,   i, key, p, line, sep) {
            line = "INSERT INTO game_players (game_id,user_id,score) VALUES "; sep = ""
            for (i = 1; i <= norder[g]; i++) {
                key = order[g, i]; split(key, p, SUBSEP)
                line = line sep "(" p[1] "," p[2] "," sprintf("%.0f", isset[key] ? val[key] + M : val[key]) ")"
                sep = ","; delete val[key]; delete isset[key]
            }
            print line " ON DUPLICATE KEY UPDATE score = IF(VALUES(score) >= " M / 2 ", VALUES(score) - " M ", score + VALUES(score))"
            norder[g] = 0; cnt[g] = 0; rows += i - 1; stmts++
        }
        $3 == "score" && ($5 in id) {
            g = $4; key = g SUBSEP id[$5]
            if (!(key in val)) { order[g, ++norder[g]] = key; val[key] = 0 }
            if ($6 == "set") { val[key] = $7; isset[key] = 1 } else val[key] += $7
            if (++cnt[g] >= K) flush(g)
        }
        END { for (g in cnt) if (cnt[g]) flush(g); printf "%.1f\n", rows / (stmts ? stmts : 1) > "/dev/stderr" }
    ' "$R_DIR/bare.users" "$ledger" >"$R_DIR/bare.sql" 2>"$R_DIR/bare.rows"
    local stmts rate_tx pool
    pool=$("$SK_BIN" --help 2>/dev/null | sed -n 's/^ *db\.pool_size .*default \([0-9]*\)).*/\1/p' | head -1)
    pool=${pool:-4}
    stmts=$(wc -l <"$R_DIR/bare.sql")
    rate_tx=$(calc "$(get "${key}_rate") / $k")
    log "bare client: $stmts upserts of ~$k events each at $rate_tx/s over $pool connections"
    read -r n late _ < <("$SK_TOOLS/sqlpace" -S "$SCOREKEEPER_DB_SOCKET" -u root -D "$db" -r "$rate_tx" -c "$pool" \
        "$R_DIR/bare.sql" "$R_DIR/bare.us") || { log "bare client failed"; return 0; }
    out=$(LC_ALL=C sort -g "$R_DIR/bare.us" | awk '{ v[NR] = $1 / 1000 }
        function p(q,  i) { i = int(q * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; return v[i] }
        END { printf "%.1f %.1f", p(0.50), p(0.99) }')
    put "${key}_bare" "$out $n $late $(cat "$R_DIR/bare.rows")"
}

# A daemon started on the platform's database: the main run's, where its
# users and rows exist (new topics and group), as after a restart or a
# deploy.  Then, apart, the cold start: the same half-speed stream into a
# fresh database, where every user and row is new.
if ((BENCH_LAT)); then
    rate=${BENCH_LAT_RATE:-$(awk -v r="$(get main_eps_ready_last)" 'BEGIN { printf "%d", r / 2 }')}
    ((rate >= 1)) || rate=1
    lat_n=${BENCH_LAT_EVENTS:-$(awk -v r="$rate" 'BEGIN { n = r * 20; if (n < 2000) n = 2000; if (n > 1000000) n = 1000000; printf "%d", n }')}
    put lat_half_rate "$rate"
    new_run latency "" "$MAIN_DB"
    start_daemon --
    log "latency: $lat_n events at $rate/s (half the full-speed rate)"
    half_speed lat_half
    # where the time went, as the daemon saw it: p50 p99 (ms) of each event's
    # age at its result, its time inside the daemon, its wait for a
    # transaction, and of the transactions
    read -r a50 a99 e50 e99 w50 w99 t50 t99 o50 o99 < <(daemon_quantiles scorekeeper_event_age_seconds \
        scorekeeper_event_seconds scorekeeper_event_wait_seconds scorekeeper_db_transaction_seconds \
        scorekeeper_event_own_seconds)
    put lat_half_daemon "age $a50 $a99 inside $e50 $e99 wait $w50 $w99 txn $t50 $t99 own $o50 $o99"
    log "latency: $lat_n events unthrottled"
    produce $((BENCH_SEED + 2)) "$lat_n" "$R_DIR/ledger.2" --world-seed "$BENCH_SEED"
    wait_results $((2 * lat_n))
    read_results "$lat_n" "$lat_n" "$R_DIR/results.2.tsv"
    read -r c p50 p95 p99 mx f l < <(latency_stats "$R_DIR/results.2.tsv")
    put lat_full_n "$c"
    put lat_full "$p50 $p95 $p99 $mx"
    put lat_full_eps "$(calc "$lat_n / (($l - $f) / 1000)")"
    stop_daemon
    cat "$R_DIR/ledger.1" "$R_DIR/ledger.2" >"$R_DIR/ledger"
    cat "$main_ledger" "$R_DIR/ledger" >"$R_DIR/ledger.db"
    verify "$R_DIR/ledger" $((2 * lat_n)) "$R_DIR/ledger.db"
    log "latency: verified"
    ((BENCH_BARE)) && bare_client lat_half "$R_DIR/ledger.1" "$MAIN_DB"
    if ((BENCH_LAT_COLD)); then
        new_run cold
        start_daemon --
        log "cold start: $lat_n events at $rate/s into a fresh database"
        half_speed lat_cold
        stop_daemon
        verify "$R_DIR/ledger.1" "$lat_n"
        log "cold start: verified"
    fi
fi

# ------------------------------------------------------------------ ceiling
# gen_ceiling_sql LEDGER K FILE: the ledger's score changes as rows; events of
# one game are folded in consecutive chunks of K (K=1: one row per event, no
# folding; K=avg daemon batch: about the row upserts the daemon did), rows
# packed into 1000-row INSERT ... ON DUPLICATE KEY UPDATE statements, one
# transaction each.  "set" needs no separate statement: on a row that may
# already exist, a set value v is sent as v+M and the update branch takes
# IF(VALUES(score) >= M/2, VALUES(score) - M, score + VALUES(score)); a row
# that cannot exist yet is simply inserted with its value.  Prints the row count.
gen_ceiling_sql() {
    local ledger=$1 k=$2 file=$3
    awk -F'\t' -v K="$k" -v M="$M" -v out="$file" '
    function flush(g,   i, key, n) {
        n = cnt[g]
        for (i = 1; i <= norder[g]; i++) {
            key = order[g, i]
            if (isset[key] && (key in seen)) row(key, val[key] + M)
            else row(key, val[key])
            seen[key] = 1
            delete val[key]; delete isset[key]
        }
        norder[g] = 0; cnt[g] = 0
    }
    function row(key, v,   p) {
        split(key, p, SUBSEP)
        if (nrow % 1000 == 0) {
            if (nrow) printf "%s;\nCOMMIT;\n", tail > out
            printf "START TRANSACTION;\nINSERT INTO game_players (game_id,user_id,score) VALUES " > out
            sep = ""
        }
        printf "%s(%s,%s,%.0f)", sep, p[1], p[2], v > out
        sep = ","
        nrow++
    }
    BEGIN { tail = " ON DUPLICATE KEY UPDATE score = IF(VALUES(score) >= " M / 2 ", VALUES(score) - " M ", score + VALUES(score))" }
    $3 == "score" {
        g = $4; u = substr($5, 2); key = g SUBSEP u
        if (!((g, u) in val)) { order[g, ++norder[g]] = key; val[key] = 0 }
        if ($6 == "set") { val[key] = $7; isset[key] = 1 } else val[key] += $7
        if (++cnt[g] >= K) flush(g)
    }
    END {
        for (g in cnt) if (cnt[g]) flush(g)
        if (nrow) printf "%s;\nCOMMIT;\n", tail > out
        print nrow
    }' "$ledger"
}

# ceiling_db LEDGER: fresh tables with every user and game of the ledger
# (users get id = the number in their name, so the rows need no lookup).
ceiling_db() {
    local ledger=$1 db
    db="b_ceiling_$(_sk_rand)"
    sk_track_db "$db"
    sk_sql "" "CREATE DATABASE \`$db\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
    "$SK_BIN" -o "db.url=mariadb://root@localhost/$db?socket=$SCOREKEEPER_DB_SOCKET" \
        -o "kafka.bootstrap.servers=$KAFKA_BROKERS" -o sql.dir=sql migrate >/dev/null 2>&1 ||
        tests/tools/db-migrate.sh "$db" 2>/dev/null || die "migrate $db"
    awk -F'\t' '$3 == "score" { u[substr($5, 2)] = 1; g[$4] = 1 }
        END {
            n = 0
            for (x in u) { printf "%s(%s,\"b%s\")", (n % 1000 ? "," : (n ? ";\nINSERT INTO users (id,username) VALUES " : "INSERT INTO users (id,username) VALUES ")), x, x; n++ }
            print ";"; n = 0
            for (x in g) { printf "%s(%s,\"game %s\")", (n % 1000 ? "," : (n ? ";\nINSERT INTO games (id,name) VALUES " : "INSERT INTO games (id,name) VALUES ")), x, x; n++ }
            print ";"
        }' "$ledger" >"$R_DIR/setup.sql"
    printf '%s\n' "$db"
}

# ceiling_run NAME LEDGER K: prints "rows seconds setup_seconds"
ceiling_run() {
    local name=$1 ledger=$2 k=$3 db rows t0 t1 t2
    db=$(ceiling_db "$ledger")
    rows=$(gen_ceiling_sql "$ledger" "$k" "$R_DIR/$name.sql")
    t0=$(now_ms)
    mariadb "${SK_DB_ADMIN[@]}" "$db" <"$R_DIR/setup.sql"
    read -r _ _ c0 f0 < <(db_status)
    local dc0 dc1
    dc0=$(svc_cpu "${MARIADB_PID:-}")
    t1=$(now_ms)
    mariadb "${SK_DB_ADMIN[@]}" "$db" <"$R_DIR/$name.sql"
    t2=$(now_ms)
    dc1=$(svc_cpu "${MARIADB_PID:-}")
    [[ -n $dc0 && -n $dc1 ]] && put "ceil_${name}_db_cpu_util" "$(calc "($dc1 - $dc0) / (($t2 - $t1) / 1000)")"
    read -r _ _ c1 f1 < <(db_status)
    put "ceil_${name}_commits" "$((c1 - c0))"
    put "ceil_${name}_fsyncs" "$((f1 - f0))"
    verify_totals "$ledger" "$db"
    sk_sql "" "DROP DATABASE \`$db\`" >/dev/null
    rm -f "$R_DIR/$name.sql"
    echo "$rows $(calc "($t2 - $t1) / 1000") $(calc "($t1 - $t0) / 1000")"
}

if ((BENCH_CEILING)); then
    R_NAME=ceiling R_DIR=$RUNS/ceiling
    mkdir -p "$R_DIR"
    log "ceiling: one row per event, 1000-row upserts, one transaction each"
    read -r rows secs setup < <(ceiling_run events "$main_ledger" 1)
    put ceil_events_rows "$rows"
    put ceil_events_s "$secs"
    put ceil_setup_s "$setup"
    put ceil_events_eps "$(calc "$n / $secs")"
    put ceil_events_rows_per_s "$(calc "$rows / $secs")"
    batches=$(get main_batches)
    if [[ -n $batches && $batches -gt 0 ]]; then
        k=$(awk -v n="$n" -v b="$batches" 'BEGIN { k = int(n / b + 0.5); print (k < 1 ? 1 : k) }')
    else
        k=$(awk -v n="$n" -v g="$BENCH_GAMES" 'BEGIN { k = int(n / g / 10); print (k < 1 ? 1 : k) }')
    fi
    log "ceiling: folded per game in chunks of $k events (the daemon's mean batch)"
    read -r rows secs setup < <(ceiling_run folded "$main_ledger" "$k")
    put ceil_fold_k "$k"
    put ceil_fold_rows "$rows"
    put ceil_fold_s "$secs"
    put ceil_fold_eps "$(calc "$n / $secs")"
    put ceil_fold_rows_per_s "$(calc "$rows / $secs")"
    put ratio_events "$(calc "$(get main_eps_ready_last) / $(get ceil_events_eps)")"
    put ratio_events_fold "$(calc "$(get main_eps_ready_last) / $(get ceil_fold_eps)")"
    if [[ -n $(get one_eps_ready_last) ]]; then
        put ratio_one "$(calc "$(get one_eps_ready_last) / $(get ceil_events_eps)")"
        put ratio_one_fold "$(calc "$(get one_eps_ready_last) / $(get ceil_fold_eps)")"
    fi
    gp=$(get main_gp_rows)
    [[ -n $gp ]] && put ratio_rows "$(calc "$(get main_gp_rows_per_s) / $(get ceil_fold_rows_per_s)")"
fi

# -------------------------------------------------------------------- sweep
# sweep_point LABEL -o k=v...: pre-produced stream (throughput), then a fixed
# moderate rate on the same daemon (p99), then the totals check.
SWEEP=$OUT/sweep.tsv
sweep_point() {
    local label=$1 be le po ledger tput p99
    shift
    new_run "sw_$label"
    ledger=$R_DIR/ledger
    produce $((BENCH_SEED + 10)) "$BENCH_SWEEP_EVENTS" "$ledger.1"
    start_daemon -- "$@"
    wait_results "$BENCH_SWEEP_EVENTS"
    produce $((BENCH_SEED + 11)) "$BENCH_SWEEP_LAT_EVENTS" "$ledger.2" --rate "$BENCH_SWEEP_RATE"
    wait_results $((BENCH_SWEEP_EVENTS + BENCH_SWEEP_LAT_EVENTS))
    stop_daemon
    read_results 0 "$BENCH_SWEEP_EVENTS" "$R_DIR/results.1.tsv"
    read_results "$BENCH_SWEEP_EVENTS" "$BENCH_SWEEP_LAT_EVENTS" "$R_DIR/results.2.tsv"
    read -r _ _ _ _ _ _ l < <(latency_stats "$R_DIR/results.1.tsv")
    tput=$(calc "$BENCH_SWEEP_EVENTS / (($l - $D_T_READY) / 1000)")
    read -r _ _ _ p99 _ _ _ < <(latency_stats "$R_DIR/results.2.tsv")
    cat "$ledger.1" "$ledger.2" >"$ledger"
    verify_totals "$ledger" "$R_DB"
    be=2000 le=5 po=4  # the defaults
    local a
    for a in "$@"; do
        case $a in
        batch.max_events=*) be=${a#*=} ;;
        batch.linger_ms=*) le=${a#*=} ;;
        db.pool_size=*) po=${a#*=} ;;
        esac
    done
    printf '%s\t%s\t%s\t%s\t%.0f\t%s\t%s\n' "$label" "$be" "$le" "$po" "$tput" "$p99" \
        "$(peak_rss_mb "$R_DIR/samples.tsv")" >>"$SWEEP"
    log "sweep $label: max_events=$be linger_ms=$le pool=$po: $(fmt "$tput") events/s, p99 $p99 ms"
    rm -f "$ledger".* "$R_DIR"/results.*
}

if ((BENCH_SWEEP)); then
    : >"$SWEEP"
    for v in $BENCH_SWEEP_BATCH; do sweep_point "batch$v" -o "batch.max_events=$v"; done
    # the batch axis runs at the default linger (5 ms); the linger axis skips it
    for v in $BENCH_SWEEP_LINGER; do [[ $v == 5 ]] || sweep_point "linger$v" -o "batch.linger_ms=$v"; done
    for v in $BENCH_SWEEP_POOL; do [[ $v == 4 ]] || sweep_point "pool$v" -o "db.pool_size=$v"; done
    # the best of each axis combined (by throughput), when that is not the default
    best() { awk -F'\t' -v c="$1" -v pre="$2" 'index($1, pre) == 1 && $5 > m { m = $5; v = $c } END { print v }' "$SWEEP"; }
    bb=$(best 2 batch) bl=$(best 3 linger) bp=$(best 4 pool)
    bl=${bl:-5} bp=${bp:-4}
    # an axis whose best is below the default point does not count
    dflt=$(awk -F'\t' '$1 == "batch2000" { print $5 }' "$SWEEP")
    [[ -n $(awk -F'\t' -v d="$dflt" 'index($1, "linger") == 1 && $5 > d' "$SWEEP") ]] || bl=5
    [[ -n $(awk -F'\t' -v d="$dflt" 'index($1, "pool") == 1 && $5 > d' "$SWEEP") ]] || bp=4
    if [[ -n $bb && ! ($bb == 2000 && $bl == 5 && $bp == 4) ]]; then
        sweep_point "best" -o "batch.max_events=$bb" -o "batch.linger_ms=$bl" -o "db.pool_size=$bp"
    fi
    if command -v gnuplot >/dev/null; then
        awk -F'\t' 'index($1, "batch") == 1 { print $2, $5, $6 }' "$SWEEP" | sort -n >"$OUT/batch.dat"
        gnuplot <<GP || log "warning: gnuplot failed"
set terminal png size 900,540 noenhanced
set output '$OUT/batch.png'
set title "scorekeeper: batch.max_events sweep ($BENCH_SWEEP_EVENTS events; p99 at $BENCH_SWEEP_RATE events/s)"
set xlabel 'batch.max_events'
set logscale x
set ylabel 'throughput (events/s)'
set y2label 'p99 latency (ms)'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid
set key top left
plot '$OUT/batch.dat' using 1:2 with linespoints lw 2 pt 7 title 'throughput (events/s)' axes x1y1, \
     '$OUT/batch.dat' using 1:3 with linespoints lw 2 pt 5 title 'p99 latency (ms)' axes x1y2
GP
    fi
fi

# ---------------------------------------------------------------------- mem
# A big backlog waits in Kafka while the database is blocked (an admin session
# holds LOCK TABLES game_players WRITE for BENCH_MEM_BLOCK_S seconds): the
# daemon reads until pipeline.max_inflight_events is reached and must not grow
# past that; then the lock goes and it drains.
if ((BENCH_MEM)); then
    new_run mem
    log "mem: producing $BENCH_MEM_EVENTS events"
    produce $((BENCH_SEED + 20)) "$BENCH_MEM_EVENTS" "$R_DIR/ledger"
    mariadb "${SK_DB_ADMIN[@]}" "$R_DB" -e "LOCK TABLES game_players WRITE; SELECT SLEEP($BENCH_MEM_BLOCK_S); UNLOCK TABLES;" >/dev/null 2>&1 &
    LOCK_PID=$!
    sleep 1
    start_daemon --
    log "mem: database locked for ${BENCH_MEM_BLOCK_S}s, then draining"
    wait "$LOCK_PID" || true
    LOCK_PID=
    put mem_rss_blocked_mb "$(peak_rss_mb "$R_DIR/samples.tsv")"
    if ((BENCH_MEM_DRAIN_S > 0)); then
        sleep "$BENCH_MEM_DRAIN_S"
    else
        wait_results "$BENCH_MEM_EVENTS"
    fi
    hwm=$(proc_hwm "$D_PID")
    put mem_results_at_stop "$(results_count)"
    stop_daemon
    put mem_events "$BENCH_MEM_EVENTS"
    put mem_rss_peak_mb "$(awk -v a="$(peak_rss_mb "$R_DIR/samples.tsv")" -v b="$hwm" 'BEGIN { b /= 1024; printf "%.1f", (a > b ? a : b) }')"
    ((BENCH_MEM_DRAIN_S > 0)) || verify_totals "$R_DIR/ledger" "$R_DB"
    awk -F'\t' 'NR == 1 { t0 = $1 } { printf "%.2f\t%.1f\n", ($1 - t0) / 1000, $2 / 1024 }' "$R_DIR/samples.tsv" >"$OUT/mem-rss.tsv"
    log "mem: peak RSS $(get mem_rss_peak_mb) MB"
fi

# ------------------------------------------------------------------ profile
if ((BENCH_PROFILE)) && command -v valgrind >/dev/null; then
    new_run profile
    log "profile: callgrind, $BENCH_PROFILE_EVENTS events"
    cg=$OUT/callgrind.out.sk
    start_daemon valgrind --tool=callgrind --callgrind-out-file="$cg" -- 
    callgrind_control -z "$D_PID" >/dev/null 2>&1 || log "warning: callgrind_control -z failed; counts include start-up"
    produce $((BENCH_SEED + 30)) "$BENCH_PROFILE_EVENTS" "$R_DIR/ledger"
    wait_results "$BENCH_PROFILE_EVENTS"
    callgrind_control -d "$D_PID" >/dev/null 2>&1 || true
    stop_daemon
    verify_totals "$R_DIR/ledger" "$R_DB"
    # the dump after zeroing is the steady-state part; pick the largest dump
    ir=0 file=
    for f in "$cg" "$cg".*; do
        [[ -f $f ]] || continue
        v=$(awk '/^summary:/ { print $2 }' "$f")
        if [[ -n $v ]] && ((v > ir)); then ir=$v file=$f; fi
    done
    if [[ -n $file ]]; then
        put prof_events "$BENCH_PROFILE_EVENTS"
        put prof_ir "$ir"
        put prof_ir_per_event "$(calc "$ir / $BENCH_PROFILE_EVENTS")"
        {
            echo "callgrind of build/scorekeeper: $BENCH_PROFILE_EVENTS score events, counters zeroed at ready"
            echo "(callgrind_control -z), so start-up is excluded; all threads summed."
            echo "Total Ir: $ir  =>  $(fmt "$(get prof_ir_per_event)") instructions per event"
            echo
            echo "=== top 15 functions by inclusive cost ==="
            callgrind_annotate --inclusive=yes "$file" 2>/dev/null | sed -n '/^Ir/,$p' | sed -n '4,$p' |
                grep -v '^ *$' | head -n 15 || true
            echo
            echo "=== top 15 by inclusive cost below the event loop (call-chain roots, sd-event"
            echo "    dispatch frames and anonymous addresses left out) ==="
            callgrind_annotate --inclusive=yes "$file" 2>/dev/null | sed -n '/^Ir/,$p' | sed -n '4,$p' |
                sed -E "s#$root/##; s# \\[[^]]*\\]\$##" | awk '!seen[$0]++' |
                grep -vE '^ *$|PROGRAM TOTALS|:main$|below main|libc_start|:sd_event_|sk_daemon_run|:run$|\?\?\?:0x|^-|^Ir' |
                head -n 15 || true
            echo
            echo "=== top 20 functions by self cost ==="
            callgrind_annotate --auto=no --threshold=100 --inclusive=no "$file" 2>/dev/null |
                grep -E '^ *[0-9,]+ \(' | grep -vE 'PROGRAM TOTALS|:main |below main|libc_start|sk_daemon_run|:run |clone.S|start_thread|ld-linux' |
                head -n 20 || true
        } >"$OUT/profile.txt"
        cp "$file" "$OUT/callgrind.out"
        rm -f "$cg" "$cg".*
        log "profile: $(fmt "$(get prof_ir_per_event)") instructions per event"
    fi
fi

log "load after: $(uptime)"
put load_after "$(uptime | sed 's/.*load average: //')"

# ------------------------------------------------------------------- report
tests/bench/report.sh "$OUT" >"$OUT/results.md"
log "wrote $OUT/results.md"
cat "$OUT/results.md"
