#!/usr/bin/env bash
# Static proof that the daemon never calls a blocking Connector/C function:
# every mysql_* call in src/ is either a non-blocking _start/_cont call, a
# pure accessor, or marked on its line with "no I/O" and a reason.  A new
# blocking call (mysql_real_query, mysql_real_connect, mysql_commit, ...)
# anywhere in src/ fails this test.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=0
t() { n=$((n + 1)); if "$@"; then echo "ok $n - $desc"; else echo "not ok $n - $desc"; fi; }

pure='mysql_(error|errno|sqlstate|get_socket|get_timeout_value|get_timeout_value_ms|options|init|num_fields|num_rows|fetch_lengths|field_count|more_results|get_server_info|thread_id|affected_rows|insert_id|warning_count)'
calls=$(grep -nE '\bmysql_[a-z_]+\s*\(' src/*.c | grep -vE '\bmysql_[a-z_]+_(start|cont)\s*\(' || true)
offenders=$(printf '%s\n' "$calls" | grep -vE "\\b${pure}\\s*\\(" | grep -v 'no I/O' | grep -v '^$' || true)
desc="no blocking Connector/C call in src/"
t test -z "$offenders"
[ -z "$offenders" ] || printf '# %s\n' "$offenders"

# The calls that must exist in their non-blocking form.
for f in real_connect real_query store_result next_result rollback close; do
    desc="mysql_${f} is used through mysql_${f}_start/_cont"
    t grep -qE "\\bmysql_${f}_start\\s*\\(" src/dbconn.c
done
# And never the blocking form, anywhere.
desc="no mysql_real_query/mysql_query/mysql_real_connect/mysql_commit/mysql_ping in blocking form"
t bash -c "! grep -nE '\\bmysql_(real_query|query|real_connect|commit|ping|select_db|store_result|next_result)\\s*\\(' src/*.c"
echo "1..$n"
