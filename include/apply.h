/* apply — the SQL of one transaction and what its answers mean.
 *
 * A transaction carries the batches of one or more games (score events),
 * or the one users batch.  Several games share a transaction to share its
 * COMMIT: a commit (an fsync) is the expensive part, and a game's batch is
 * often small.  Each game is still only ever in one transaction at a time
 * (the scheduler's rule), so the transactions of different connections
 * never wait on each other's game rows.
 *
 * Score transactions take two round trips on the read path (read before
 * writing):
 *   1. create missing users (INSERT IGNORE, sorted by username, autocommit,
 *      before the transaction so that no users row lock is held across it);
 *      START TRANSACTION; upsert the game rows (their exclusive locks are the
 *      per-game mutexes every writer goes through); read how far each game
 *      was applied per partition (game_offsets) and each player's id and
 *      current score;
 *   2. upsert the players' final scores (in key order) and the games' new
 *      applied offsets; COMMIT.
 * Between them the events are folded in partition order in C: every event
 * gets its exact running total, an event that would push a score out of
 * BIGINT is rejected alone, and an event below its game's applied offset is
 * a duplicate, never applied twice.
 * When this instance committed every game of the transaction last (its
 * partitions' marks, see marks.h) and no event lies below a mark, a score
 * transaction takes one round trip instead (src/apply_one_trip.c): the
 * marks are checked in SQL and the deltas added in SQL, with the new
 * scores returned.
 * A users transaction takes one round trip and is fenced the same way, by
 * user_offsets (the next offset applied per partition and user): lock the
 * users rows in byte order of the names (creating the missing ones), read
 * the marks, write each nickname only from an event at or above its mark,
 * move the marks, read ids, COMMIT; an event below its mark is a duplicate.
 *
 * Pure: builds SQL text and consumes rows; the executor owns the I/O. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "sched.h"

struct sk_apply;

/* bs: nb batches of one kind (a users batch is always alone).  When more
 * than one game shares the transaction, its lock-taking statements wait at
 * most 1 s for a lock (then fail with 1205): a game locked from outside must
 * not hold the other games of its transaction hostage; the executor then
 * runs them apart. */
struct sk_apply *sk_apply_new(struct sk_batch *const *bs, unsigned nb);
void sk_apply_free(struct sk_apply *a);
/* SQL of the first round trip (resets state: safe to call on every retry).
 * known (may be NULL): usernames known to exist, left out of the users
 * INSERT IGNORE.  Returns 0, or -ENOMEM. */
struct sk_known;
int sk_apply_first(struct sk_apply *a, struct sk_buf *sql, struct sk_known *known);
/* Each username of the transaction and its id (0: there is no such user,
 * e.g. deleted), for the caller's map of known users (call after a
 * commit). */
void sk_apply_users(const struct sk_apply *a,
                    void (*each)(void *ud, const char *name, size_t len, int64_t id), void *ud);
/* A row of a result set of a round trip; stmt numbers the statements of
 * the round trip from 0. */
void sk_apply_row(struct sk_apply *a, unsigned stmt, char **row, unsigned long *lengths,
                  unsigned nfields);
/* After the first round trip: fold the events, then build the second round
 * trip into sql.  Returns 1 when there is a second round trip, 2 when the
 * first only made users and the transaction follows (its answers come back
 * here as a first round trip's), 0 when the transaction is complete,
 * -EPROTO (message in err) when the answers do not add up, -ENOMEM
 * (message in err) when out of memory. */
int sk_apply_second(struct sk_apply *a, struct sk_buf *sql, char *err, size_t errlen);
/* After the last round trip committed: write each msg's outcome. */
void sk_apply_outcome(struct sk_apply *a);
/* After the commit: the users the transaction's tombstones deleted. */
unsigned sk_apply_deleted(const struct sk_apply *a);
/* Whether this attempt takes the one-round-trip path (sk_apply_first
 * decides). */
bool sk_apply_one_trip(const struct sk_apply *a);
/* On that path, the statement (counted as for rows) that checks the games'
 * applied offsets: a failure there means they moved (see
 * sk_policy_one_trip_guard).  -1 on the read path. */
int sk_apply_mark_check_stmt(const struct sk_apply *a);
/* Each (partition, game) of the transaction and, after a commit, the
 * next_offset it now has, for the partition's marks. */
void sk_apply_marks(const struct sk_apply *a,
                    void (*each)(void *ud, struct sk_part *part, int64_t game, int64_t next), void *ud);
