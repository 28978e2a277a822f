#!/usr/bin/env bash
# events.unknown_fields (issue 20, item 6): a producer that adds a member.
# One batch of score and user events, some with members the contract does
# not define, around normal ones, goes through the broker with each setting:
#   reject (the default): exactly those are rejected unknown_field, naming
#     the member, with their dead-letter copies; the others apply;
#   ignore (set by a reload that includes a conf.d file): all of them apply,
#     with the same totals as without the extra members.
# With both, a member used twice, invalid UTF-8 inside an unknown member and
# a "schema_version" other than 1 are still rejected (duplicate_key,
# invalid_utf8, unsupported_version).  --check-config lists the files read.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

sk_daemon_setup uf 1
conf=$SK_TEST_TMP/instance.conf
mkdir -p "$SK_TEST_TMP/conf.d"
printf 'batch.linger_ms = 10\n' >"$conf"
sk_daemon_start --config "$conf" || sk_bail "daemon did not start"

# batch TAG GAME USER: the same mix of events under new ids, game and user;
# sets sent (the results so far) and got ("id status score|code" lines).
sent=0
batch() {
    local t=$1 g=$2 u=$3 f=$SK_TEST_TMP/batch.$1
    {
        printf '%s\t{"event_id":"%s-s1","game_id":%s,"username":"%s","delta":10}\n' "$g" "$t" "$g" "$u"
        printf '%s\t{"event_id":"%s-s2","game_id":%s,"username":"%s","delta":5,"client":{"app":"quiz","build":[1,2,{"os":null}]}}\n' "$g" "$t" "$g" "$u"
        printf '%s\t{"event_id":"%s-s3","game_id":%s,"username":"%s","delta":1}\n' "$g" "$t" "$g" "$u"
        printf '%s\t{"event_id":"%s-s4","game_id":%s,"username":"%s","delta":100,"x":1,"x":2}\n' "$g" "$t" "$g" "$u"
        printf '%s\t{"event_id":"%s-s5","game_id":%s,"username":"%s","delta":7,"note":"\\ud800"}\n' "$g" "$t" "$g" "$u"
        printf '%s\t{"trace":"abc","event_id":"%s-s6","game_id":%s,"username":"%s","set":50}\n' "$g" "$t" "$g" "$u"
        printf '%s\t{"event_id":"%s-s7","game_id":%s,"username":"%s","delta":1000,"schema_version":2}\n' "$g" "$t" "$g" "$u"
        printf '%s\t{"event_id":"%s-s8","game_id":%s,"username":"%s","delta":2,"schema_version":1}\n' "$g" "$t" "$g" "$u"
    } >"$f.scores"
    {
        printf '%s\t{"event_id":"%s-u1","username":"%s","nickname":"First"}\n' "$u" "$t" "$u"
        printf '%s\t{"event_id":"%s-u2","username":"%s","nickname":"Second","avatar":"https://example.com/a.png"}\n' "$u" "$t" "$u"
    } >"$f.users"
    sk_send "$T_SCORES" "$f.scores"
    sk_send "$T_USERS" "$f.users"
    sent=$((sent + 10))
    sk_results "$sent" 90 | tail -n 10 >"$f.results" || true
    # (an invalid string stops the scan before event_id is read: no id)
    got=$(jq -r '"\(.event_id // "-") \(.status) \(.score // .error.code // .nickname)"' "$f.results" | sort)
}

# ---- reject, the default ----
batch r 31 rita
tap_is "reject: the events with an unknown member are rejected, the others apply" "$got" \
    "- rejected invalid_utf8
r-s1 applied 10
r-s2 rejected unknown_field
r-s3 applied 11
r-s4 rejected duplicate_key
r-s6 rejected unknown_field
r-s7 rejected unsupported_version
r-s8 applied 13
r-u1 applied First
r-u2 rejected unknown_field"
tap_is "reject: the message names the member" \
    "$(jq -r 'select(.event_id == "r-s2" or .event_id == "r-u2") | .error.message' "$SK_TEST_TMP/batch.r.results" | sort)" \
    'unknown member "avatar" in a user event
unknown member "client" in a score event'
tap_is "reject: the stored score and nickname" "$(sk_score "$D_DB" 31 rita) $(sk_sql "$D_DB" "SELECT nickname FROM users WHERE username = 'rita'")" "13 First"
dlq=$(sk_consume "$T_DLQ" 6 60 -f '%h\n' 2>/dev/null | grep -o 'sk-error-code=[a-z0-9_]*' | sort | uniq -c | awk '{print $2 "=" $1}' | paste -sd' ')
tap_is "reject: each rejected input has its dead-letter copy and code" "$dlq" \
    "sk-error-code=duplicate_key=1 sk-error-code=invalid_utf8=1 sk-error-code=unknown_field=3 sk-error-code=unsupported_version=1"

# ---- ignore, by a reload: the instance's file now includes a conf.d ----
printf 'events.unknown_fields = ignore\n' >"$SK_TEST_TMP/conf.d/50-contract.conf"
printf 'this file is not read\n' >"$SK_TEST_TMP/conf.d/README"
printf 'batch.linger_ms = 10\ninclude = conf.d\n' >"$conf"
kill -HUP "$D_PID"
if sk_wait_log "reloaded settings: 1 changed"; then
    tap_ok "reload: events.unknown_fields changes without a restart"
else
    tap_fail "reload: events.unknown_fields changes without a restart" "$(grep -i reload "$D_LOG" | tail -n 3)"
fi
batch i 32 ivan
tap_is "ignore: the unknown members are skipped and the events apply" "$got" \
    "- rejected invalid_utf8
i-s1 applied 10
i-s2 applied 15
i-s3 applied 16
i-s4 rejected duplicate_key
i-s6 applied 50
i-s7 rejected unsupported_version
i-s8 applied 52
i-u1 applied First
i-u2 applied Second"
tap_is "ignore: the stored score and nickname" "$(sk_score "$D_DB" 32 ivan) $(sk_sql "$D_DB" "SELECT nickname FROM users WHERE username = 'ivan'")" "52 Second"
tap_is "ignore: only the events still invalid reach the dead-letter topic" \
    "$(sk_consume "$T_DLQ" 9 60 -f '%h\n' 2>/dev/null | tail -n 3 | grep -o 'sk-error-code=[a-z0-9_]*' | sort | paste -sd' ')" \
    "sk-error-code=duplicate_key sk-error-code=invalid_utf8 sk-error-code=unsupported_version"

# --check-config names every file it read, includes too
mapfile -t args < <(sk_daemon_args)
rc=0
out=$("$SK_DAEMON" --check-config --config "$conf" "${args[@]}" 2>&1) || rc=$?
tap_is "--check-config with an include: exit 0" "$rc" 0
tap_is "--check-config lists the files read" "$(grep '^  # read ' <<<"$out")" \
    "  # read $conf
  # read $SK_TEST_TMP/conf.d/50-contract.conf"
tap_check "--check-config shows the setting from the included file" grep -qx '  events.unknown_fields = ignore' <<<"$out"

sk_daemon_stop
tap_is "SIGTERM: clean exit 0" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
