/* marks — how far this instance last committed each game of one input
 * partition: game id -> the game_offsets.next_offset its own last commit
 * wrote.
 *
 * With the mark in hand a score transaction needs no read before it writes
 * (apply's one-round-trip path): it checks in the same transaction that the
 * stored marks still equal these (so nobody else applied the game's events
 * in between) and adds the events' deltas in SQL.  A mark is only a hint:
 * forget it whenever its value is in doubt (a failed or ambiguous commit);
 * without one the transaction reads first, as it always could.
 *
 * Owned by the partition (struct sk_part): a revoked partition takes its
 * marks with it.  Bounded (pipeline.game_marks, shared among the score
 * partitions): when full, the games not committed for the longest are
 * forgotten, about half of the map at a time (two generations, see
 * src/marks.c); a game forgotten so is read first at its next transaction,
 * which sets its mark again.  Memory follows the games seen lately: at
 * most two tables of 16-byte slots, each at most half full when it is as
 * large as it gets (at most 64 bytes per game of the bound). */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct sk_marks;

/* A map of at most max_entries marks. */
struct sk_marks *sk_marks_new(size_t max_entries);
void sk_marks_free(struct sk_marks *m);
/* A new bound (the partitions' share changed), applied from the next
 * mark that does not fit. */
void sk_marks_set_max(struct sk_marks *m, size_t max_entries);
/* How many marks a read at assignment may put into an empty map with none
 * of them dropped: a read that returned fewer returned all of them. */
size_t sk_marks_load_max(const struct sk_marks *m);
/* The game's mark, -1 when unknown; 0 when the map is complete and has
 * none for the game (the game has no game_offsets row: it is new). */
int64_t sk_marks_get(const struct sk_marks *m, int64_t game);
/* Every game of the partition that has a game_offsets row has its mark
 * here (read at assignment): games not in the map are new.  Until marks
 * are dropped (full); refused when some already were. */
void sk_marks_complete(struct sk_marks *m);
/* Remember next (>= 0) as the game's mark; a negative next forgets it. */
void sk_marks_set(struct sk_marks *m, int64_t game, int64_t next);
void sk_marks_forget(struct sk_marks *m, int64_t game);
/* Entries held (a game kept in both generations counts twice; at most the
 * bound). */
size_t sk_marks_count(const struct sk_marks *m);
