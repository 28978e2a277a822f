/* apply — the SQL of one batch and what its answers mean.
 *
 * A score batch (one game) takes two round trips:
 *   1. create missing users (INSERT IGNORE, sorted by username, autocommit);
 *      START TRANSACTION; upsert the game row (its exclusive lock is the
 *      per-game mutex); read how far the game was applied in each partition
 *      (game_offsets) and each player's id and current score;
 *   2. upsert the players' final scores (sorted by user id) and the game's
 *      new applied offsets; COMMIT.
 * Events below the applied offset are reported as duplicates, never applied
 * twice.
 * Between them the events are folded in partition order in C, which gives
 * every event its exact running total and lets an event that would push a
 * score out of BIGINT be rejected alone.
 * A user batch takes one round trip: upsert nicknames, create the rest,
 * read ids, COMMIT.
 *
 * Pure: builds SQL text and consumes rows; the executor owns the I/O. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "sched.h"

struct sk_apply;

struct sk_apply *sk_apply_new(struct sk_batch *b);
void sk_apply_free(struct sk_apply *a);
/* SQL of the first round trip (resets state: safe to call on every retry). */
int sk_apply_first(struct sk_apply *a, struct sk_buf *sql);
/* A row of a result set of a round trip; stmt numbers the statements of
 * the round trip from 0. */
void sk_apply_row(struct sk_apply *a, unsigned stmt, char **row, unsigned long *lengths,
                  unsigned nfields);
/* After the first round trip: fold the events, then build the second round
 * trip into sql.  Returns 1 when there is a second round trip, 0 when the
 * batch is complete, -1 (message in err) when the answers do not add up. */
int sk_apply_second(struct sk_apply *a, struct sk_buf *sql, char *err, size_t errlen);
/* After the last round trip committed: write each msg's outcome. */
void sk_apply_outcome(struct sk_apply *a);
