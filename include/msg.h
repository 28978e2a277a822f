/* msg — one consumed Kafka message on its way from input to result.
 *
 * Owns a copy of everything the result needs (key, echoed headers, the
 * parsed event) so the librdkafka message is destroyed right after it is
 * consumed.  Lives until its result event is delivered. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "part.h"
#include "result.h"

struct sk_hdr {
    const char *name;
    const void *value;
    size_t len;
};

struct sk_msg {
    struct sk_msg *next;  /* in its group's queue, then in its batch */
    struct sk_part *part; /* holds a ref */
    int64_t offset;
    uint64_t consumed_usec; /* CLOCK_MONOTONIC when it was consumed (set by the consumer) */
    uint64_t txn_usec;      /* how long the transaction that applied it took (0: none) */
    int64_t created_ms;     /* its Kafka timestamp (ms since the epoch), -1: none */
    const char *key;
    size_t key_len;
    const struct sk_hdr *hdrs; /* headers echoed into the result */
    size_t n_hdrs;
    size_t bytes;         /* payload bytes held at raw, for batch.max_bytes */
    /* the payload as consumed, byte for byte: a rejected event is copied to
     * the dead-letter topic unchanged (NULL with raw_null for a tombstone) */
    const void *raw;
    bool raw_null;
    /* the payload's size as consumed: more than bytes when only its first
     * bytes were kept (one over the size limit, rejected from its length:
     * its dead-letter copy says it is cut) */
    size_t raw_size;
    size_t size;   /* of the message's one allocation */
    size_t charge; /* the memory the consumer counts for it while in flight (sk_msg_charge) */
    struct sk_event ev;   /* valid when status is not yet rejected */
    bool parsed;
    /* outcome */
    enum sk_status status;
    enum sk_reject reject;
    char *reject_msg;
    char *reject_event_id; /* event_id of a payload that failed to parse, if it had a valid one */
    int64_t user_id;
    int64_t score;
    /* the result payload, kept until delivered so it can be re-sent */
    char *result;
    size_t result_len;
    /* outputs not yet delivered (SK_OUT_*), and those still to be produced */
    uint8_t todo;
    uint8_t unsent;
    /* per output (index: SK_OUT_* - 1), how far it was cut to fit the
     * producer's or the broker's size limit: 0 whole, 1 cut, 2 the least */
    uint8_t cut[2];
    bool in_resend;
};

enum { SK_OUT_RESULT = 1, SK_OUT_DEAD_LETTER = 2 };

struct sk_msg *sk_msg_new(struct sk_part *part, int64_t offset);
/* A message with copies of its payload (NULL: a tombstone), key and the
 * headers to echo, all in the message's one allocation: fewer, larger
 * blocks than one per field, because malloc is a large share of the work
 * per event and many small blocks fragment the heap. */
struct sk_msg *sk_msg_new_copy(struct sk_part *part, int64_t offset, const void *payload,
                               size_t len, const void *key, size_t key_len,
                               const struct sk_hdr *hdrs, size_t n_hdrs);
void sk_msg_free(struct sk_msg *m);
/* The memory m holds once parsed or rejected, and the most its result will
 * take: what backpressure counts for it (pipeline.max_inflight_bytes). */
size_t sk_msg_charge(const struct sk_msg *m);
/* Mark rejected with a code and message (copied). */
void sk_msg_reject(struct sk_msg *m, enum sk_reject code, const char *message);
/* Build m->result from the outcome (no larger than sk_msg_charge allowed
 * for it, unless a later rejection brought a long message).  -ENOMEM on
 * failure. */
int sk_msg_build_result(struct sk_msg *m);
