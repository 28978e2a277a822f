#!/usr/bin/env bash
# A starting daemon reads the newest users from `users` (pipeline.
# known_users_preload, in chunks of 10,000), so that a restart on a populated
# database does not send every username to INSERT IGNORE again (InnoDB
# inserts and rolls back an existing row, which burns an auto-increment
# value: that is how this test sees whether a name was sent).  Users older
# than the preload are still learned from the transactions, and events for
# both kinds land on the right ids.
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/daemon.sh"

sk_daemon_setup knownusers 1
# 25,000 users p1..p25000 (ids 1..25000) created from outside
sk_sql "$D_DB" "INSERT INTO users (username) SELECT CONCAT('p', seq) FROM seq_1_to_25000"
tap_is "25,000 users to start with" "$(sk_sql "$D_DB" 'SELECT COUNT(*), MAX(id) FROM users')" "25000	25000"

autoinc() {
    sk_sql "" "SELECT AUTO_INCREMENT FROM information_schema.TABLES
               WHERE TABLE_SCHEMA = '$D_DB' AND TABLE_NAME = 'users'"
}
sk_daemon_start -o pipeline.known_users_preload=22000 || sk_bail "daemon did not start"
url=$(sk_metrics_url)
metric() { curl -fsS "$url/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
tap_check "the log says how many users it read" sk_wait_log "knew 22000 users from the database"
tap_is "gauge: 22,000 read at start" "$(metric scorekeeper_known_users_preloaded)" 22000
tap_is "gauge: 22,000 known" "$(metric scorekeeper_known_users)" 22000

send() { sk_send_batch 7 "$@"; }

ai=$(autoinc)
# p25000 is the newest user, p3001 the oldest one read (the 22,000th)
send "e1 delta 5 p25000" "e2 delta 7 p3001" "e3 delta 1 p25000"
tap_is "events of users read at start apply" "$got" "e1 applied 5
e2 applied 7
e3 applied 6"
tap_is "on the right ids" "$(sk_sql "$D_DB" 'SELECT user_id, score FROM game_players ORDER BY user_id')" \
    "3001	7
25000	6"
tap_is "no INSERT IGNORE was sent for them (auto-increment unchanged)" "$(autoinc)" "$ai"

# p3000 is older than what was read: learned from its transaction
send "e4 delta 3 p3000"
tap_is "a user older than the preload applies too" "$got" "e4 applied 3"
tap_is "on its id" "$(sk_sql "$D_DB" 'SELECT user_id FROM game_players WHERE score = 3')" 3000
tap_check "its name went to INSERT IGNORE (auto-increment moved: the check above can fail)" \
    test "$(autoinc)" -gt "$ai"
tap_is "then known" "$(metric scorekeeper_known_users)" 22001
sk_daemon_stop
tap_is "exit 0 after SIGTERM" "$D_RC" 0

# pipeline.known_users_preload = 0 reads nothing; the preload is held to
# half of pipeline.known_users
sk_daemon_start -o pipeline.known_users_preload=0 || sk_bail "daemon did not restart"
url=$(sk_metrics_url)
tap_is "preload off: nothing known at start" "$(metric scorekeeper_known_users)" 0
tap_check "and no line about it" bash -c "! grep -q 'knew .* users' '$D_LOG'"
sk_daemon_stop
sk_daemon_start -o pipeline.known_users=3000 || sk_bail "daemon did not restart"
url=$(sk_metrics_url)
tap_check "at most half of pipeline.known_users" sk_wait_log "knew 1500 users from the database"
tap_is "gauge: 1,500 known" "$(metric scorekeeper_known_users)" 1500
sk_daemon_stop
tap_is "exit 0" "$D_RC" 0

# A read that fails on its connection (here: it waits on a table lock and
# its session is killed from outside) is read again on another one.
# Default preload: all 25,000 users.
sk_locker "$D_DB" "LOCK TABLES users WRITE; SELECT 1;"
tap_is "an outside session holds a write lock on users" "$SK_LOCKED" 1
sk_daemon_start || sk_bail "daemon did not restart"
url=$(sk_metrics_url)
waiter=
for _ in $(seq 1 100); do
    waiter=$(sk_sql "" "SELECT id FROM information_schema.processlist WHERE user = '$SK_DB_USER'
                        AND db = '$D_DB' AND state LIKE 'Waiting for table%' LIMIT 1")
    [[ -n $waiter ]] && break
    sleep 0.1
done
tap_check "the preload waits for the lock" test -n "$waiter"
sk_sql "" "KILL CONNECTION $waiter" || true
tap_check "a lost read is logged and read again" \
    sk_wait_log "cannot read known users (0 read): "
tap_check "the log says it reads on another connection" grep -q "reading on another connection" "$D_LOG"
sk_locker_end "UNLOCK TABLES;"
tap_check "then it reads them all" sk_wait_log "knew 25000 users from the database"
tap_is "gauge: read at start" "$(metric scorekeeper_known_users_preloaded)" 25000
sk_daemon_stop
tap_is "exit 0" "$D_RC" 0

# Any other error ends the read; the users are then learned from the
# transactions.  Here the runtime user may not read \`users\` at all.
grants() {
    local h
    for h in 127.0.0.1 localhost; do
        printf "%s ON \`%s\`.%s %s '%s'@'%s';\n" "$1" "$D_DB" "$2" "$3" "$SK_DB_USER" "$h"
    done
}
sk_sql "" "$(grants SELECT '*' FROM | sed 's/^/REVOKE /')
           $(for t in games game_players game_offsets schema_migrations; do grants SELECT "$t" TO | sed 's/^/GRANT /'; done)"
sk_daemon_start || sk_bail "daemon did not restart"
url=$(sk_metrics_url)
tap_check "a refused read is logged once, with what is left to do" \
    sk_wait_log "the rest are learned from the transactions"
tap_check "with the server's reason" grep -q "cannot read known users (0 read): SELECT command denied" "$D_LOG"
tap_is "nothing read" "$(metric scorekeeper_known_users_preloaded)" 0
tap_is "logged once" "$(grep -c 'cannot read known users' "$D_LOG")" 1
sk_daemon_stop
tap_is "exit 0" "$D_RC" 0
tap_check "no sanitizer reports" sk_daemon_logs_clean
tap_done
