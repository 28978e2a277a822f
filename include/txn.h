/* txn — the transaction module: events queued per game (sched), the
 * transactions that apply their batches on pooled connections, and what a
 * failed one does next (txnpolicy.h).
 *
 * Owns the scheduler and its linger timer, every transaction (struct txn:
 * its batches, its connection, its SQL, its retry timer) with an explicit
 * state changed by one function, the map of known users and the warm-up
 * reads (warmup.h).  Whenever the pool has a free connection, a warm-up
 * read that is due takes it first, then ready batches: ready score batches
 * of several games share one transaction, up to batch.txn_max_events (one
 * COMMIT for all of them); the users batch and batches hunting a poison
 * event run alone.
 *
 * Lifecycle of one transaction, top to bottom:
 *   NEW      built from ready batches, holding a free connection
 *   FIRST    the first round trip runs (create users, lock the games, read)
 *   SECOND   the second round trip runs (write, COMMIT)
 *   ROLLBACK the answers did not add up: the open transaction is rolled back
 *   BACKOFF  failed; the connection is back in the pool; a timer runs
 *   DONE     committed (results due), or its batches given back to run again
 * A message leaves through `finished` (its outcome is known) or, on
 * revocation or exit, through `drop`. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "db.h"
#include "msg.h"
#include "stats.h"

enum sk_txn_state { SK_TXN_ST_NEW, SK_TXN_ST_FIRST, SK_TXN_ST_SECOND, SK_TXN_ST_ROLLBACK, SK_TXN_ST_BACKOFF,
                    SK_TXN_ST_DONE };
/* Whether a transaction may go from one state to the other (pure). */
bool sk_txn_transition_ok(enum sk_txn_state from, enum sk_txn_state to);
const char *sk_txn_state_name(enum sk_txn_state s);

struct sk_txns;

struct sk_txns_ops {
    void (*finished)(void *ud, struct sk_msg *m); /* its outcome is known: its result is due */
    void (*drop)(void *ud, struct sk_msg *m);     /* let go without an outcome */
    /* The read of a score partition's marks ended (warmup.h): its
     * marks_read and top_mark are set.  May run from sk_txns_assigned. */
    void (*marks_read)(void *ud, struct sk_part *p);
};

int sk_txns_new(sd_event *loop, const struct sk_config *cfg, struct sk_db *db, struct sk_stats *st,
                const struct sk_txns_ops *ops, void *ud, struct sk_txns **out);
/* After the loop: every message still held goes to drop. */
void sk_txns_free(struct sk_txns *t);

/* Queue an event for group key.  -ENOMEM leaves m with the caller. */
int sk_txns_add(struct sk_txns *t, int64_t key, struct sk_msg *m);
/* Run what is due on the free connections and arm the linger timer for
 * what waits (call when a connection became free, and after queueing a
 * burst of events). */
void sk_txns_kick(struct sk_txns *t);
/* Batching settings were reloaded; drain: every queued event is due now. */
void sk_txns_reload(struct sk_txns *t);
void sk_txns_drain(struct sk_txns *t);
/* A score partition was assigned (or a refused one is checked again: its
 * marks are read again); one was revoked (its queued events go to drop,
 * its running batches finish). */
void sk_txns_assigned(struct sk_txns *t, struct sk_part *p);
void sk_txns_revoked(struct sk_txns *t, const struct sk_part *p);

/* When the oldest attempt holding a connection took it (0: none holds
 * one), and a log line naming it (the watchdog's "wedged" report). */
uint64_t sk_txns_oldest(const struct sk_txns *t);
void sk_txns_log_wedged(const struct sk_txns *t, uint64_t now, unsigned limit_s);

size_t sk_txns_known_users(const struct sk_txns *t);
size_t sk_txns_preloaded(const struct sk_txns *t);
