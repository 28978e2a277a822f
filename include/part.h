/* part — one assigned input partition and the offsets of its events that
 * are still in flight.
 *
 * Events of a partition finish out of order (games run in parallel), but
 * Kafka offsets can only be committed as a prefix: the partition keeps a
 * FIFO of the offsets it handed out, each marked done when its result was
 * delivered, and the committable position is one past the longest done
 * prefix.  A partition object outlives its assignment while events still
 * refer to it (refs); after revocation its offsets are no longer committed. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "marks.h"

struct rd_kafka_queue_s;
struct rd_kafka_message_s;

/* A score partition's offsets must be its own: game_offsets is keyed by
 * topic name, so a topic deleted and recreated, consumers moved to a
 * mirrored copy or a log truncated by an unclean leader election start
 * offsets again below the marks, and every event would be reported
 * duplicate.  Its events wait until the check decides (consumer.c). */
enum sk_part_check {
    SK_PART_CHECKING, /* marks or the first message awaited: its events wait */
    SK_PART_CHECKED,  /* its events flow */
    SK_PART_REFUSED,  /* a mark lies beyond the end of its log: nothing flows */
};

struct sk_part {
    char *topic;
    int32_t partition;
    enum sk_event_kind kind;
    bool revoked;
    bool held;          /* its queue is not read (backpressure) or it is paused in Kafka (drain) */
    bool active;        /* has delivered at least one message (takes a share of the window) */
    unsigned refs;      /* events still in flight */
    size_t bytes;       /* the memory they hold, as the consumer charges it (flow.h) */
    /* ring of offsets in consumption order, with a done flag each */
    int64_t *offs;
    bool *done;
    size_t head, count, cap;
    int64_t next_commit; /* first offset not yet known done, -1 before any */
    int64_t committed;   /* what was last sent to Kafka as committed, -1 none */
    int64_t lag;         /* consumer lag from librdkafka's statistics, -1 unknown */
    struct sk_marks *marks; /* score partitions: games' applied offsets (NULL: none kept) */
    struct rd_kafka_queue_s *queue; /* its own message queue while assigned (owned by the consumer) */
    enum sk_part_check check;
    bool marks_read;   /* the warm-up read of its marks ended (warmup.c), or failed */
    int64_t top_mark;  /* then: the highest game_offsets mark of the partition, -1 none or unknown */
    struct rd_kafka_message_s *first; /* its first message, held while checking (consumer's) */
    struct sk_part *next;
};

/* A score partition keeps the marks of up to max_marks games (its share
 * of pipeline.game_marks; the consumer changes it as partitions come and
 * go); other partitions keep none. */
struct sk_part *sk_part_new(const char *topic, int32_t partition, enum sk_event_kind kind,
                            size_t max_marks);
void sk_part_unref(struct sk_part *p); /* frees when revoked and refs == 0 */
/* Record an offset handed to the pipeline (offsets only grow). -ENOMEM on failure. */
int sk_part_track(struct sk_part *p, int64_t offset);
/* Mark an offset done; advances next_commit over the done prefix. */
void sk_part_done(struct sk_part *p, int64_t offset);
/* Forget every tracked offset (revocation): nothing more will be committed. */
void sk_part_free(struct sk_part *p);
/* Events of the partition still in flight (live), and the span of its
 * ring: from the oldest offset not yet done to the newest consumed.  One
 * slow event keeps the span growing while live stays small. */
size_t sk_part_live(const struct sk_part *p);
size_t sk_part_span(const struct sk_part *p);
