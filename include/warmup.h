/* warmup — the reads that let transactions take the short path sooner:
 * the known users a starting daemon reads from `users` (preload.h), and
 * the applied offsets (marks) of each newly assigned score partition.
 *
 * A newly assigned score partition reads the marks that game_offsets holds
 * for it, so that its games' first batches can already take one round trip
 * (without a mark a batch reads first), and the highest of them, which the
 * consumer checks against the end of the partition's log (part.h): the
 * read sets the partition's marks_read and top_mark and says so through
 * marks_read, also when it failed (top_mark -1: nothing to check).  Only a hint, like every mark: the
 * one-round-trip path's game_offsets upsert verifies them in SQL, and a
 * mark set meanwhile by a commit of ours is newer than what the read saw,
 * so it is kept.  A read that returned every row of the partition also
 * tells which games have none.
 *
 * Part of the transaction module: it owns the reads it has started and
 * takes a free connection before any batch does (sk_warmup_run).  A read
 * that lost its connection, or that the server ended (max_statement_time),
 * is read again on the next free one; any other failure is logged and the
 * transactions learn the same things on the way. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "db.h"
#include "known.h"
#include "part.h"

struct sk_warmup;

/* again runs when a read ended and its connection is free again;
 * marks_read when a partition's marks read ended (it may run from inside
 * sk_warmup_marks). */
int sk_warmup_new(sd_event *loop, const struct sk_config *cfg, struct sk_db *db,
                  struct sk_known *known, void (*again)(void *ud),
                  void (*marks_read)(void *ud, struct sk_part *p), void *ud,
                  struct sk_warmup **out);
void sk_warmup_free(struct sk_warmup *w);
/* Starts the reads that are due, one per free connection; false when the
 * connections ran out first (nothing else should take one now). */
bool sk_warmup_run(struct sk_warmup *w);
/* A score partition was assigned (or is to be checked again): read its
 * marks. */
void sk_warmup_marks(struct sk_warmup *w, struct sk_part *p);
/* The partition is revoked: its read, due or running, no longer applies. */
void sk_warmup_forget(struct sk_warmup *w, const struct sk_part *p);
size_t sk_warmup_preloaded(const struct sk_warmup *w);
