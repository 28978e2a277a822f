#!/bin/bash
# results-check.sh — check scorekeeper's result topic against its inputs.
#
# Usage:
#   tests/tools/results-check.sh -b BROKERS -t RESULTS_TOPIC [-l LEDGER] [-n N]
#                                [-i INPUT_TOPIC]... [-T SECONDS] [-k DIR] [-q]
#                                [-D] [-s SUMMARY_FILE]
#
#   -b BROKERS       bootstrap servers (default 127.0.0.1:9092)
#   -t TOPIC         the results topic (read from the beginning)
#   -l LEDGER        loadgen ledger: gives N (its line count), the input topics (its
#                    column 2) and the expected outcome of every event
#   -n N             number of results to wait for (default: ledger line count)
#   -i TOPIC         input topic (repeatable; default: the ledger's topics).  Only
#                    results whose source.topic is an input topic are counted, so a
#                    results topic shared with other runs is fine.  The input topics
#                    are read too, to list every source (topic, partition, offset).
#   -T SECONDS       give up waiting for N results after this long (default 120)
#   -k DIR           keep the work files (results.tsv, sources.tsv) in DIR
#   -q               print only the summary line
#   -D               re-consumption allowed (after crashes, kills, rebalances): a
#                    source may have more than one result, but only if the extra ones
#                    are harmless re-reports: "duplicate", the same "rejected" again,
#                    or "applied" again for a user event (idempotent upsert).  A score
#                    event with two "applied" results was applied twice: failure.  A
#                    source whose only results say "duplicate" (applied in an earlier
#                    life whose result was lost) is allowed and counted.  N (-n) then
#                    counts distinct sources, not result messages.  Needs -l to tell
#                    user topics (ledger kind "user") from score topics.
#   -s FILE          write the counts as KEY=VALUE lines to FILE (sources, results,
#                    missing, duplicated, unknown, unparseable, applied, duplicate,
#                    rejected, rejected_sources, applied_sources, dup_only,
#                    applied_twice, inconsistent, extra, invalid, wrong)
#
# Checks (each failure makes the exit status 1):
#   * N results arrived before the timeout;
#   * exactly one result per input source (with -D: at least one, and any further
#     ones harmless, see -D): sources without a result are "missing", sources with
#     two or more are "duplicated" (with -D: "applied_twice" or "inconsistent" when
#     harmful), results naming an offset not present in the input topics are
#     "unknown";
#   * counts of status applied / duplicate / rejected;
#   * with a ledger: rejected (-D: distinct rejected sources) == number of invalid
#     events, and, for results that
#     echo the correlation-id header (loadgen sends one unless --no-headers),
#     each event's outcome: invalid -> rejected with the ledger's code, valid ->
#     applied (or duplicate).
# Exit status: 0 all checks passed, 1 a check failed, 2 usage or tool error.
# Needs kcat and jq.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

brokers=127.0.0.1:9092 rtopic="" ledger="" want="" timeout=120 keep="" quiet=0
reconsume=0 summary=""
inputs=()
while getopts "b:t:l:n:i:T:k:qDs:h" opt; do
    case "$opt" in
    b) brokers=$OPTARG ;;
    t) rtopic=$OPTARG ;;
    l) ledger=$OPTARG ;;
    n) want=$OPTARG ;;
    i) inputs+=("$OPTARG") ;;
    T) timeout=$OPTARG ;;
    k) keep=$OPTARG ;;
    q) quiet=1 ;;
    D) reconsume=1 ;;
    s) summary=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] && [ -n "$rtopic" ] || usage
[ -z "$ledger" ] || [ -r "$ledger" ] || { echo "results-check.sh: cannot read $ledger" >&2; exit 2; }
if [ -z "$want" ]; then
    [ -n "$ledger" ] || { echo "results-check.sh: need -n N or -l LEDGER" >&2; exit 2; }
    want=$(wc -l < "$ledger")
fi
case "$want$timeout" in *[!0-9]*) echo "results-check.sh: -n and -T take integers" >&2; exit 2 ;; esac
if [ ${#inputs[@]} -eq 0 ] && [ -n "$ledger" ]; then
    mapfile -t inputs < <(cut -f2 "$ledger" | LC_ALL=C sort -u)
fi
if [ "$reconsume" = 1 ] && [ -z "$ledger" ]; then
    echo "results-check.sh: -D needs -l LEDGER (to know the user topics)" >&2
    exit 2
fi
user_topics=""
[ -z "$ledger" ] || user_topics=$(awk -F'\t' '$3 == "user" { print $2 }' "$ledger" | LC_ALL=C sort -u | tr '\n' ' ')

if [ -n "$keep" ]; then
    mkdir -p "$keep"
    work=$keep
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
say() { [ "$quiet" = 1 ] || echo "$@"; }

# One line per result: src_topic partition offset status code correlation-id
jq_results='
def hdr($n): (.headers // []) as $h
    | ([range(0; $h | length; 2) | select($h[.] == $n) | $h[. + 1]] | first) // "-";
(try (.payload | fromjson) catch null) as $r
| if ($r | type) == "object" and ($r.source | type) == "object" then
      [$r.source.topic, ($r.source.partition | tostring), ($r.source.offset | tostring),
       ($r.status // "-"), ($r.error.code // "-"), hdr("correlation-id")]
  else ["-", "-", "-", "unparseable", "-", hdr("correlation-id")] end
| @tsv'

topics_re=$(printf '%s\n' "${inputs[@]}")
deadline=$((SECONDS + timeout))
got=0
while :; do
    if timeout 300 kcat -C -b "$brokers" -t "$rtopic" -o beginning -e -q -J 2> "$work/kcat.err" \
        | jq -r "$jq_results" > "$work/all.tsv"; then :; else
        : > "$work/all.tsv" # topic may not exist yet
    fi
    if [ ${#inputs[@]} -gt 0 ]; then
        awk -F'\t' 'NR == FNR { t[$0] = 1; next } ($1 in t) || $4 == "unparseable"' \
            <(printf '%s\n' "$topics_re") "$work/all.tsv" > "$work/results.tsv"
    else
        cp "$work/all.tsv" "$work/results.tsv"
    fi
    got=$(wc -l < "$work/results.tsv")
    have=$got
    if [ "$reconsume" = 1 ]; then
        have=$(awk -F'\t' '$4 != "unparseable"' "$work/results.tsv" | cut -f1-3 | LC_ALL=C sort -u | wc -l)
    fi
    [ "$have" -lt "$want" ] && [ "$SECONDS" -lt "$deadline" ] || break
    sleep 2
done

fail=0
if [ "$have" -lt "$want" ]; then
    if [ "$reconsume" = 1 ]; then
        echo "FAIL: results for only $have of $want sources after ${timeout}s" >&2
    else
        echo "FAIL: only $got of $want results after ${timeout}s" >&2
    fi
    fail=1
elif [ "$reconsume" = 0 ] && [ "$got" -gt "$want" ]; then
    say "note: $got results, more than the $want expected"
fi

# Every input source, if the input topics are known.
: > "$work/sources.tsv"
for t in "${inputs[@]}"; do
    timeout 300 kcat -C -b "$brokers" -t "$t" -o beginning -e -q -f '%t\t%p\t%o\n' \
        >> "$work/sources.tsv" || { echo "results-check.sh: cannot read input topic $t" >&2; exit 2; }
done

# Source accounting: missing / duplicated / unknown, and status counts.
# Per source (-D): how many results of each status.  applied_twice: a score
# source with two "applied"; inconsistent: a source with both "rejected" and
# "applied"/"duplicate", or two rejections with different codes.
read -r n_src missing dup unknown applied duplicate rejected unparseable \
    rej_src app_src dup_only twice inconsistent distinct < <(
    awk -F'\t' -v have_src=${#inputs[@]} -v utopics="$user_topics" '
    BEGIN { n = split(utopics, a, " "); for (i = 1; i <= n; i++) ut[a[i]] = 1 }
    FILENAME == ARGV[1] { src[$1 FS $2 FS $3] = 1; nsrc++; next }
    {
        st[$4]++
        if ($4 == "unparseable") next
        k = $1 FS $2 FS $3
        if (++seen[k] == 2) dup++
        if (seen[k] == 1) distinct++
        if (have_src && !(k in src)) unknown++
        if ($4 == "applied") { if (++napp[k] == 2 && !($1 in ut)) twice++ }
        else if ($4 == "duplicate") ndup[k]++
        else if ($4 == "rejected") {
            if (!(k in rcode)) rcode[k] = $5
            else if (rcode[k] != $5) bad[k] = 1
        }
    }
    END {
        for (k in src) if (!(k in seen)) missing++
        for (k in seen) {
            if (k in rcode) { rej++; if ((k in napp) || (k in ndup)) bad[k] = 1 }
            else { app++; if (!(k in napp)) donly++ }
        }
        for (k in bad) incons++
        printf "%d %d %d %d %d %d %d %d %d %d %d %d %d %d\n", nsrc, missing, dup, unknown,
               st["applied"], st["duplicate"], st["rejected"], st["unparseable"],
               rej, app, donly, twice, incons, distinct
    }' "$work/sources.tsv" "$work/results.tsv")

say "results: $got (wanted $want)  applied $applied  duplicate $duplicate  rejected $rejected  unparseable $unparseable"
if [ ${#inputs[@]} -gt 0 ]; then
    say "sources: $n_src in ${inputs[*]}  missing $missing  duplicated $dup  unknown $unknown"
    if [ "$missing" -gt 0 ]; then
        echo "FAIL: $missing sources without a result, e.g.:" >&2
        awk -F'\t' 'NR == FNR { seen[$1 FS $2 FS $3] = 1; next } !(($1 FS $2 FS $3) in seen)' \
            "$work/results.tsv" "$work/sources.tsv" | head -5 | sed 's/^/  /' >&2
        fail=1
    fi
else
    say "sources: input topics unknown (give -i or -l): only duplicates checked"
fi
if [ "$reconsume" = 1 ]; then
    say "re-consumption: $dup sources with more than one result ($((got - unparseable - distinct)) extra results), $dup_only with only \"duplicate\""
    if [ "$twice" -gt 0 ]; then
        echo "FAIL: $twice score events have two \"applied\" results (applied twice), e.g.:" >&2
        awk -F'\t' '$4 == "applied"' "$work/results.tsv" | cut -f1-3 | LC_ALL=C sort | uniq -d | head -5 | sed 's/^/  /' >&2
        fail=1
    fi
    if [ "$inconsistent" -gt 0 ]; then
        echo "FAIL: $inconsistent sources have contradicting results (rejected and applied, or two codes)" >&2
        fail=1
    fi
elif [ "$dup" -gt 0 ]; then
    echo "FAIL: $dup sources with more than one result, e.g.:" >&2
    cut -f1-3 "$work/results.tsv" | LC_ALL=C sort | uniq -d | head -5 | sed 's/^/  /' >&2
    fail=1
fi
[ "$unknown" -eq 0 ] || { echo "FAIL: $unknown results name sources not in the input topics" >&2; fail=1; }
[ "$unparseable" -eq 0 ] || { echo "FAIL: $unparseable results are not result JSON" >&2; fail=1; }

if [ -n "$ledger" ]; then
    invalid=$(awk -F'\t' '$3 == "invalid"' "$ledger" | wc -l)
    say "ledger: $(wc -l < "$ledger") events, $invalid invalid"
    if [ "$reconsume" = 1 ]; then
        if [ "$rej_src" -ne "$invalid" ]; then
            echo "FAIL: $rej_src rejected sources, but the ledger has $invalid invalid events" >&2
            fail=1
        fi
    elif [ "$rejected" -ne "$invalid" ]; then
        echo "FAIL: $rejected rejected results, but the ledger has $invalid invalid events" >&2
        fail=1
    fi
    # Per-event outcome through the echoed correlation-id.
    read -r matched wrong < <(
        awk -F'\t' '
        FILENAME == ARGV[1] {
            if ($9 != "-") exp_[$9] = ($3 == "invalid") ? "rejected:" $6 : "ok"
            next
        }
        $6 != "-" && ($6 in exp_) {
            got_ = ($4 == "rejected") ? "rejected:" $5 : ($4 == "applied" || $4 == "duplicate") ? "ok" : $4
            n++
            if (got_ != exp_[$6]) {
                if (++bad <= 5) printf "  correlation-id %s: expected %s, got %s\n", $6, exp_[$6], got_ > "/dev/stderr"
            }
        }
        END { printf "%d %d\n", n, bad }' "$ledger" "$work/results.tsv")
    say "outcomes: $matched results matched to ledger events by correlation-id, $wrong wrong"
    if [ "$wrong" -gt 0 ]; then
        echo "FAIL: $wrong results disagree with the ledger" >&2
        fail=1
    fi
fi

if [ -n "$summary" ]; then
    {
        echo "sources=$n_src"; echo "results=$got"; echo "missing=${missing:-0}"
        echo "duplicated=$dup"; echo "unknown=$unknown"; echo "unparseable=$unparseable"
        echo "applied=$applied"; echo "duplicate=$duplicate"; echo "rejected=$rejected"
        echo "rejected_sources=$rej_src"; echo "applied_sources=$app_src"
        echo "dup_only=$dup_only"; echo "applied_twice=$twice"; echo "inconsistent=$inconsistent"
        echo "extra=$((got - unparseable - distinct))"
        echo "invalid=${invalid:-}"; echo "wrong=${wrong:-}"
    } > "$summary"
fi
if [ "$fail" = 0 ]; then
    echo "results-check: OK ($got results, $applied applied, $duplicate duplicate, $rejected rejected)"
else
    echo "results-check: FAILED" >&2
fi
exit "$fail"
