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
 * marks with it.  Bounded: when full the map is cleared and refills. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct sk_marks;

struct sk_marks *sk_marks_new(size_t max_entries);
void sk_marks_free(struct sk_marks *m);
/* The game's mark, -1 when unknown; 0 when the map is complete and has
 * none for the game (the game has no game_offsets row: it is new). */
int64_t sk_marks_get(const struct sk_marks *m, int64_t game);
/* Every game of the partition that has a game_offsets row has its mark
 * here (read at assignment): games not in the map are new.  Until the map
 * is cleared (full). */
void sk_marks_complete(struct sk_marks *m);
/* Remember next (>= 0) as the game's mark; silently forgets nothing else
 * unless the map is full (then it starts over). */
void sk_marks_set(struct sk_marks *m, int64_t game, int64_t next);
void sk_marks_forget(struct sk_marks *m, int64_t game);
size_t sk_marks_count(const struct sk_marks *m);
