#!/bin/bash
# results-check.sh — check scorekeeper's result topic against its inputs.
#
# Usage:
#   tests/tools/results-check.sh -b BROKERS -t RESULTS_TOPIC [-l LEDGER] [-n N]
#                                [-i INPUT_TOPIC]... [-T SECONDS] [-k DIR] [-q]
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
#
# Checks (each failure makes the exit status 1):
#   * N results arrived before the timeout;
#   * exactly one result per input source: sources without a result are "missing",
#     sources with two or more are "duplicated", results naming an offset not
#     present in the input topics are "unknown";
#   * counts of status applied / duplicate / rejected;
#   * with a ledger: rejected == number of invalid events, and, for results that
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
inputs=()
while getopts "b:t:l:n:i:T:k:qh" opt; do
    case "$opt" in
    b) brokers=$OPTARG ;;
    t) rtopic=$OPTARG ;;
    l) ledger=$OPTARG ;;
    n) want=$OPTARG ;;
    i) inputs+=("$OPTARG") ;;
    T) timeout=$OPTARG ;;
    k) keep=$OPTARG ;;
    q) quiet=1 ;;
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
    [ "$got" -lt "$want" ] && [ "$SECONDS" -lt "$deadline" ] || break
    sleep 2
done

fail=0
if [ "$got" -lt "$want" ]; then
    echo "FAIL: only $got of $want results after ${timeout}s" >&2
    fail=1
elif [ "$got" -gt "$want" ]; then
    say "note: $got results, more than the $want expected"
fi

# Every input source, if the input topics are known.
: > "$work/sources.tsv"
for t in "${inputs[@]}"; do
    timeout 300 kcat -C -b "$brokers" -t "$t" -o beginning -e -q -f '%t\t%p\t%o\n' \
        >> "$work/sources.tsv" || { echo "results-check.sh: cannot read input topic $t" >&2; exit 2; }
done

# Source accounting: missing / duplicated / unknown, and status counts.
read -r n_src missing dup unknown applied duplicate rejected unparseable < <(
    awk -F'\t' -v have_src=${#inputs[@]} '
    FILENAME == ARGV[1] { src[$1 FS $2 FS $3] = 1; nsrc++; next }
    {
        st[$4]++
        if ($4 == "unparseable") next
        k = $1 FS $2 FS $3
        if (++seen[k] == 2) dup++
        if (have_src && !(k in src)) unknown++
    }
    END {
        for (k in src) if (!(k in seen)) missing++
        printf "%d %d %d %d %d %d %d %d\n", nsrc, missing, dup, unknown,
               st["applied"], st["duplicate"], st["rejected"], st["unparseable"]
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
if [ "$dup" -gt 0 ]; then
    echo "FAIL: $dup sources with more than one result, e.g.:" >&2
    cut -f1-3 "$work/results.tsv" | LC_ALL=C sort | uniq -d | head -5 | sed 's/^/  /' >&2
    fail=1
fi
[ "$unknown" -eq 0 ] || { echo "FAIL: $unknown results name sources not in the input topics" >&2; fail=1; }
[ "$unparseable" -eq 0 ] || { echo "FAIL: $unparseable results are not result JSON" >&2; fail=1; }

if [ -n "$ledger" ]; then
    invalid=$(awk -F'\t' '$3 == "invalid"' "$ledger" | wc -l)
    say "ledger: $(wc -l < "$ledger") events, $invalid invalid"
    if [ "$rejected" -ne "$invalid" ]; then
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

if [ "$fail" = 0 ]; then
    echo "results-check: OK ($got results, $applied applied, $duplicate duplicate, $rejected rejected)"
else
    echo "results-check: FAILED" >&2
fi
exit "$fail"
