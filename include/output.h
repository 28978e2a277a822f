/* output — the Kafka producer: every consumed event's result, and the
 * dead-letter copy of a rejected one, from production to delivery report.
 *
 * Owns the producer, its topic handles, its wake-up pipe and the list of
 * messages whose outputs could not be queued yet (producer queue full, or
 * a delivery that failed and is sent again).  Results are produced without
 * a copy: the payload is the message's own, which lives until its last
 * delivery report.  When every output of a message is delivered, the
 * `delivered` callback hands the message back to its owner (the consumer),
 * which marks its offset done.
 *
 * An output over a size limit is sent in a smaller form rather than never:
 * a result without the input's echoed headers; a dead-letter copy cut to
 * the producer's message.max.bytes (then, if the broker's limit is lower,
 * its headers alone), with the headers sk-truncated and sk-original-size.
 * An output a topic refuses for good (authorization, no such topic) waits
 * and is tried again every few seconds; meanwhile sk_output_stuck says
 * which topic and why, for readiness and the watchdog. */
#pragma once
#include <stddef.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "msg.h"
#include "sched.h"
#include "stats.h"

struct sk_output;

/* What a production or delivery error means for an output (pure). */
enum sk_out_fault {
    SK_OUT_TRANSIENT, /* queue full, timeouts, brokers away: send it again */
    SK_OUT_TOO_LARGE, /* over a size limit: send a smaller form, then as refused */
    SK_OUT_REFUSED,   /* authorization, unknown topic, ...: parked, tried again now and then */
};
enum sk_out_fault sk_output_classify(int err);

struct sk_output_ops {
    void (*delivered)(void *ud, struct sk_msg *m); /* every output of m is delivered */
    /* the producer cannot go on; err as sk_kafka_error returns it */
    void (*fatal)(void *ud, int err, const char *why);
};

/* -EINVAL (configuration refused, logged) or another -errno. */
int sk_output_new(sd_event *loop, const struct sk_config *cfg, struct sk_stats *st,
                  const struct sk_output_ops *ops, void *ud, struct sk_output **out);
/* A message is finished (applied, duplicate or rejected): count it, build
 * its result and produce it (and its dead-letter copy when rejected).
 * -ENOMEM when the result cannot be built: the message stays the caller's. */
int sk_output_emit(struct sk_output *o, struct sk_msg *m);
/* Serve delivery reports and send again what waits (the loop's poll tick
 * calls it; the producer's pipe wakes it too). */
void sk_output_poll(struct sk_output *o);
/* Since when (monotonic usec) a topic has refused our outputs for good,
 * and which and why in `why`; 0 when every topic takes them. */
uint64_t sk_output_stuck(const struct sk_output *o, char *why, size_t whylen);
/* Teardown, after the loop: a short flush, then what is still queued is
 * purged and its messages handed to drop (nothing will deliver them). */
void sk_output_free(struct sk_output *o, sk_drop_fn drop, void *ud);
