/* consumer — the Kafka consumer: the group membership and rebalances, the
 * assigned partitions and their own queues, reading and parsing messages,
 * holding a partition that has too much in flight (backpressure, see
 * flow.h), and committing each partition's done prefix of offsets.
 *
 * Owns the consumer handle, its queues and wake-up pipe, the list of
 * assigned partitions (struct sk_part) and the count of messages in
 * flight.  A consumed message (struct sk_msg) is the consumer's until it is
 * handed back: done (its results were delivered: its offset may be
 * committed) or released (let go without a result: it is consumed again
 * after a restart or by the partition's next owner).  What it reads goes
 * upward through the callbacks; it calls no other module.
 *
 * A score partition's events flow only once its offsets are checked
 * against the end of its log (part.h, sk_part_check): its first message
 * waits for the marks read at assignment; a partition whose highest mark
 * lies beyond its high watermark is refused (logged as an error, nothing
 * of it flows, it stays assigned) until sk_consumer_recheck finds its
 * marks reset. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "msg.h"
#include "part.h"
#include "stats.h"

struct sk_consumer;

struct sk_consumer_ops {
    /* A valid event for group key (a game, or 0 for the users group). */
    void (*event)(void *ud, struct sk_msg *m, int64_t key);
    /* An invalid event: rejected, its result is due now. */
    void (*rejected)(void *ud, struct sk_msg *m);
    /* A partition was assigned (before its first message), or a refused
     * one is to be checked again: read its marks (score partitions). */
    void (*assigned)(void *ud, struct sk_part *p);
    /* A partition is revoked or lost: whatever of it waits to be batched
     * must be released now.  Batches already running finish. */
    void (*revoked)(void *ud, struct sk_part *p);
    /* A burst of messages was read: batches may be due. */
    void (*consumed)(void *ud);
    /* The group assigned us, or a broker answered about our topics. */
    void (*answered)(void *ud);
    /* The consumer has left the group (after sk_consumer_close). */
    void (*closed)(void *ud);
    /* Nothing sane is left: err is -ENOMEM, or sk_kafka_error's. */
    void (*fatal)(void *ud, int err, const char *why);
};

/* Creates the consumer and subscribes to both input topics.  -EINVAL when
 * the configuration is refused (logged), another -errno otherwise. */
int sk_consumer_new(sd_event *loop, const struct sk_config *cfg, struct sk_stats *st,
                    const struct sk_consumer_ops *ops, void *ud, struct sk_consumer **out);
/* After the loop: leaves the group if still in it (the rebalance callbacks
 * run from here) and destroys the handle.  Messages may still be handed
 * back until sk_consumer_free. */
void sk_consumer_stop(struct sk_consumer *c);
/* Stops, then frees the partitions; each one still referred to by a
 * message goes with the last of them (sk_msg_free). */
void sk_consumer_free(struct sk_consumer *c);

/* Every output of m was delivered: its offset is done. */
void sk_consumer_done(struct sk_consumer *c, struct sk_msg *m);
/* m is let go without a result. */
void sk_consumer_release(struct sk_consumer *c, struct sk_msg *m);

/* Read what the queues hold (the loop's poll tick; also keeps us in the
 * group while partitions are held). */
void sk_consumer_poll(struct sk_consumer *c);
/* Commit every partition's done prefix not committed yet (asynchronous). */
void sk_consumer_commit(struct sk_consumer *c);
/* Drain: stop fetching on every assigned partition and on new ones. */
void sk_consumer_pause_all(struct sk_consumer *c);
/* Commit, then leave the group; `closed` runs once it has left. */
void sk_consumer_close(struct sk_consumer *c);

/* The read of p's marks ended (p->marks_read, p->top_mark set): its check
 * is decided on the next turn. */
void sk_consumer_marks_read(struct sk_consumer *c, struct sk_part *p);
/* Every refused partition is checked again (its marks read afresh);
 * returns how many. */
unsigned sk_consumer_recheck(struct sk_consumer *c);
/* Assigned partitions refused for reused offsets. */
unsigned sk_consumer_refused(const struct sk_consumer *c);

size_t sk_consumer_inflight(const struct sk_consumer *c);
const struct sk_part *sk_consumer_parts(const struct sk_consumer *c);
unsigned sk_consumer_held(const struct sk_consumer *c);
