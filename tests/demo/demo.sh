#!/usr/bin/env bash
# make demo: install what is missing, build, start a private Kafka broker and
# MariaDB server, migrate, run the daemon, play a scripted quiz through Kafka,
# delete a player who leaves, print the leaderboard from MariaDB and a few
# result events, stop it all.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Installing missing packages (make deps)"
tests/tools/deps.sh
say "Building"
make -s -j2 build/scorekeeper build/tools/mktopic

started_stack=0
if [ -z "${KAFKA_BROKERS:-}" ] || [ -z "${SCOREKEEPER_DB_URL:-}" ]; then
    if ! tests/stack/stack-check.sh >/dev/null 2>&1; then
        say "Starting a private Kafka broker and MariaDB server (make stack-up)"
        tests/stack/stack-up.sh
        started_stack=1
    fi
    # shellcheck disable=SC1091
    . build/stack.env
fi

demo=build/demo
rm -rf "$demo"
mkdir -p "$demo"
run_id="demo$(date +%s)$$"
users_topic="demo.users.$run_id"
scores_topic="demo.scores.$run_id"
results_topic="demo.results.$run_id"
group="scorekeeper-$run_id"
daemon_pid=

cleanup() {
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    if [ "$started_stack" = 1 ]; then
        say "Stopping the private stack (make stack-down)"
        tests/stack/stack-down.sh
    fi
}
trap cleanup EXIT

# The demo's own database, created fresh each run, so that the leaderboard
# is this quiz's alone even on a stack that other runs use.
db=demo
read -r -a admin <<<"$SCOREKEEPER_DB_ADMIN"
runtime_user=${SCOREKEEPER_DB_URL#mariadb://}
runtime_user=${runtime_user%%@*}
db_hostport=${SCOREKEEPER_DB_URL#*@}
db_hostport=${db_hostport%%/*}
mariadb "${admin[@]}" -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db CHARACTER SET utf8mb4"
say "Migrating the schema (scorekeeper migrate)"
build/scorekeeper -o db.url="mariadb://root@localhost/$db?socket=${SCOREKEEPER_DB_SOCKET}" \
    -o kafka.bootstrap.servers="$KAFKA_BROKERS" -o sql.dir="$top/sql" migrate
# after the migrations: the grants name tables
sed -e "s/\`scorekeeper\`\\./\`$db\`./g" -e "s/'scorekeeper'@/'$runtime_user'@/g" sql/grants.sql |
    mariadb "${admin[@]}"

say "Creating the topics (3 partitions each)"
for t in "$users_topic" "$scores_topic" "$results_topic"; do
    build/tools/mktopic -b "$KAFKA_BROKERS" "$t" 3
done

say "Starting the daemon"
build/scorekeeper \
    -o db.url="mariadb://$runtime_user@$db_hostport/$db" -o db.password_file="$SCOREKEEPER_DB_PASSWORD_FILE" \
    -o kafka.bootstrap.servers="$KAFKA_BROKERS" -o kafka.group.id="$group" \
    -o topic.users="$users_topic" -o topic.scores="$scores_topic" \
    -o topic.results="$results_topic" -o batch.linger_ms=50 \
    >"$demo/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 300); do
    grep -q 'ready:' "$demo/daemon.log" && break
    kill -0 "$daemon_pid" 2>/dev/null || { cat "$demo/daemon.log"; echo "daemon exited"; exit 1; }
    sleep 0.1
done
grep -q 'ready:' "$demo/daemon.log" || { cat "$demo/daemon.log"; echo "daemon not ready in 30 s"; exit 1; }
echo "daemon pid $daemon_pid is ready (log: $demo/daemon.log)"

say "Playing a quiz: 5 players, 3 games, 4 rounds"
players=(alice bob chloé dmitri "eve 🎲")
nicks=("Alice" "Bobby" "Chloé" "Dima" "Eve")
: >"$demo/users.txt"
for i in "${!players[@]}"; do
    printf '%s\t{"event_id":"join-%d","username":"%s","nickname":"%s"}\n' \
        "${players[$i]}" "$i" "${players[$i]}" "${nicks[$i]}" >>"$demo/users.txt"
done
kcat -b "$KAFKA_BROKERS" -P -t "$users_topic" -K $'\t' -l "$demo/users.txt"

games=(101 102 103)
names=("Friday quiz" "Science night" "Movie trivia")
: >"$demo/scores.txt"
seq_no=0
RANDOM=42 # the same quiz every time
for round in 1 2 3 4; do
    for g in "${!games[@]}"; do
        for p in "${players[@]}"; do
            # not everyone plays every game
            if [ $(((RANDOM + g) % 5)) -eq 0 ]; then continue; fi
            pts=$(((RANDOM % 6) * 100))
            seq_no=$((seq_no + 1))
            printf '%s\t{"event_id":"r%d-%d","game_id":%d,"game_name":"%s","username":"%s","delta":%d}\n' \
                "${games[$g]}" "$round" "$seq_no" "${games[$g]}" "${names[$g]}" "$p" "$pts" >>"$demo/scores.txt"
        done
    done
done
# A late correction and a malformed event: the daemon rejects the bad one
# with a reason, and everything around it still applies.
printf '102\t{"event_id":"fix-1","game_id":102,"username":"bob","set":1000}\n' >>"$demo/scores.txt"
printf '103\t{"event_id":"oops","game_id":103,"username":"alice","delta":"lots"}\n' >>"$demo/scores.txt"
kcat -b "$KAFKA_BROKERS" -P -t "$scores_topic" -K $'\t' -H correlation-id=demo -l "$demo/scores.txt"
total=$(($(wc -l <"$demo/users.txt") + $(wc -l <"$demo/scores.txt")))
echo "published $total events"

say "Waiting for $total result events"
timeout 60 kcat -b "$KAFKA_BROKERS" -C -t "$results_topic" -o beginning -c "$total" -q -f '%s\n' \
    >"$demo/results.jsonl" || true
echo "received $(wc -l <"$demo/results.jsonl") of $total results"

# A player deletes their account: a tombstone (a null payload) keyed by the
# username deletes the user and every score of theirs, in one transaction.
leaver=dmitri
say "$leaver leaves: a tombstone keyed \"$leaver\" on $users_topic"
printf '%s\t\n' "$leaver" | kcat -b "$KAFKA_BROKERS" -P -t "$users_topic" -K $'\t' -Z
total=$((total + 1))
timeout 60 kcat -b "$KAFKA_BROKERS" -C -t "$results_topic" -o beginning -c "$total" -q -f '%s\n' \
    >"$demo/results.jsonl" || true
got=$(wc -l <"$demo/results.jsonl")
echo "received $got of $total results"
grep -m1 '"deleted"' "$demo/results.jsonl" || true

say "Leaderboard (from MariaDB)"
mariadb "${admin[@]}" --default-character-set=utf8mb4 "$db" --table -e "
  SELECT g.name AS game, RANK() OVER (PARTITION BY g.id ORDER BY gp.score DESC) AS place,
         COALESCE(u.nickname, u.username) AS player, gp.score
    FROM game_players gp JOIN games g ON g.id = gp.game_id JOIN users u ON u.id = gp.user_id
   ORDER BY g.id, place, player"

# The same totals computed from what was published, without the daemon:
# deltas add, a set replaces, the malformed event counts for nothing, and
# the player who left has no scores.
expected=$(cut -f2 "$demo/scores.txt" | jq -r --arg gone "$leaver" 'select((.delta|type) != "string" and .username != $gone) |
    [.game_id, .username, (if has("set") then "set" else "delta" end), (.set // .delta)] | @tsv' |
    awk -F'\t' '{k=$1"\t"$2; if ($3=="set") t[k]=$4; else t[k]+=$4} END {for (k in t) print k"\t"t[k]}' |
    LC_ALL=C sort)
actual=$(mariadb "${admin[@]}" --default-character-set=utf8mb4 -N -B "$db" -e "
  SELECT gp.game_id, u.username, gp.score FROM game_players gp JOIN users u ON u.id = gp.user_id" |
    LC_ALL=C sort)
if [ "$expected" = "$actual" ]; then
    echo "leaderboard verified: it equals the totals computed from the published events"
    verified=1
else
    echo "LEADERBOARD MISMATCH:"
    diff <(echo "$expected") <(echo "$actual") || true
    verified=0
fi

left=$(mariadb "${admin[@]}" -N -B "$db" -e "SELECT COUNT(*) FROM users WHERE username = '$leaver'")
if [ "$left" = 0 ]; then
    echo "$leaver is gone from users, and with them their scores"
else
    echo "$leaver IS STILL IN users"
    verified=0
fi

say "A few result events (from $results_topic)"
grep -m3 '"applied"' "$demo/results.jsonl" || true
grep -m1 '"rejected"' "$demo/results.jsonl" || true

say "Stopping the daemon (SIGTERM)"
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
tail -n 2 "$demo/daemon.log"
echo "daemon exited with $rc"
[ "$got" -eq "$total" ] && [ "$rc" -eq 0 ] && [ "$verified" = 1 ]
