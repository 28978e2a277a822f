/* sched — per-game batching: which events go to the database together, and
 * when.
 *
 * Events are queued per group (a game, or the single users group) in
 * partition order.  A group is flushed into a batch when it holds
 * batch.max_events events or batch.max_bytes bytes, or when its oldest
 * queued event has waited batch.linger_ms.  A group has at most one batch
 * at a time (waiting to run, running, or waiting out a retry): that is what
 * keeps one game on one connection and its events in order.  Ready batches
 * wait in a FIFO for a free connection; retried ones go to its front.
 *
 * Knows nothing of SQL or Kafka: msgs in, batches out. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

struct sk_group;

/* Why a batch was cut: logged at debug level, asserted by tests. */
enum sk_flush { SK_FLUSH_FULL = 1, SK_FLUSH_LINGER, SK_FLUSH_BACKLOG, SK_FLUSH_DRAIN };
const char *sk_flush_name(enum sk_flush f);

struct sk_batch {
    struct sk_group *group;
    enum sk_flush reason;
    int64_t key;            /* game id, or 0 for the users group */
    struct sk_msg *head;    /* events in partition order */
    unsigned n;
    size_t bytes;           /* their payload bytes */
    unsigned attempt;       /* failed attempts so far */
    bool solo;              /* run in a transaction of its own (poison hunt) */
    struct sk_batch *next;  /* in the ready FIFO */
};

struct sk_sched_limits {
    unsigned max_events;
    size_t max_bytes;
    uint64_t linger_usec;
};

struct sk_sched;
/* Takes back a queued message the scheduler lets go of (revocation, exit). */
typedef void (*sk_drop_fn)(void *ud, struct sk_msg *m);

struct sk_sched *sk_sched_new(void);
void sk_sched_free(struct sk_sched *s, sk_drop_fn drop, void *ud);
void sk_sched_set_limits(struct sk_sched *s, const struct sk_sched_limits *l);

/* Queue an event for group `key`.  -ENOMEM leaves the msg with the caller. */
int sk_sched_add(struct sk_sched *s, int64_t key, struct sk_msg *m, uint64_t now);
/* Move groups whose linger has expired to the ready FIFO. */
void sk_sched_expire(struct sk_sched *s, uint64_t now);
/* Earliest linger deadline of a queued group, UINT64_MAX when none. */
uint64_t sk_sched_next_deadline(const struct sk_sched *s);
/* Make every queued event due now (shutdown). */
void sk_sched_flush_all(struct sk_sched *s);

struct sk_batch *sk_sched_pop_ready(struct sk_sched *s);
/* The batch pop_ready would return next, left in place (NULL when none). */
struct sk_batch *sk_sched_peek_ready(const struct sk_sched *s);
/* Put a batch back at the front of the FIFO (retry after a fault). */
void sk_sched_push_front(struct sk_sched *s, struct sk_batch *b);
/* Poison isolation: keep the first half of b's events in b and give the
 * rest back to the group, ahead of newer events; b must be run again. */
void sk_sched_split(struct sk_sched *s, struct sk_batch *b);
/* The batch is finished (its msgs were taken by the caller); frees it and
 * lets its group form the next batch. */
void sk_sched_done(struct sk_sched *s, struct sk_batch *b, uint64_t now);
/* The batches of game `key` cut before `until` run in transactions of
 * their own (a game contended from outside must not stall others). */
void sk_sched_set_solo(struct sk_sched *s, int64_t key, uint64_t until);
/* Remove queued (not yet batched) events of a revoked partition. */
void sk_sched_drop_part(struct sk_sched *s, const struct sk_part *p, sk_drop_fn drop, void *ud);

size_t sk_sched_queued(const struct sk_sched *s);   /* events queued, not in a batch */
size_t sk_sched_ready(const struct sk_sched *s);    /* batches waiting for a connection */
size_t sk_sched_groups(const struct sk_sched *s);
