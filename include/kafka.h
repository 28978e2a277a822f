/* kafka — librdkafka client construction from our settings, and the bridge
 * from a librdkafka queue to a pipe the event loop can watch.
 *
 * rd_kafka_queue_io_event_enable() writes one byte to the pipe when a queue
 * goes from empty to non-empty, and only then: whoever is woken must drain
 * the queue completely (or come back soon) or it never fires again. */
#pragma once
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "config.h"

/* Build a client configuration: our defaults first, then the kafka.*
 * passthrough settings for both clients (less those meaningless to this
 * one), then the kafka.consumer.* or kafka.producer.* ones.  On error (unknown property, bad value) returns NULL
 * with a message naming the key, value (masked if secret) and origin. */
rd_kafka_conf_t *sk_kafka_conf(const struct sk_config *cfg, bool consumer, char *err, size_t errlen);

/* A non-blocking pipe whose read end becomes readable when q has events.
 * Returns 0, or -errno of pipe2(). */
int sk_kafka_queue_pipe(rd_kafka_queue_t *q, int fds[2]);
/* Empty the pipe (read end) after a wake-up. */
void sk_kafka_pipe_drain(int fd);

/* librdkafka's log lines into ours, at the matching level. */
void sk_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
/* An error callback's error: a negative errno (the reason in why) when the
 * client cannot go on: -EACCES when the brokers refused its credentials
 * (SASL authentication), -EIO for librdkafka's fatal errors.  0 for the
 * rest, from which librdkafka recovers by itself (brokers down, a TLS
 * handshake refused, ...), logged here as a warning. */
int sk_kafka_error(rd_kafka_t *rk, int err, const char *reason, char *why, size_t whylen);

/* sk_kafka_conf with our log callback, the client's error callback and
 * opaque set; NULL (the reason logged) when the settings are refused. */
rd_kafka_conf_t *sk_kafka_conf_client(const struct sk_config *cfg, bool consumer, void *opaque,
                                      void (*on_error)(rd_kafka_t *, int, const char *, void *));
/* Creates the client from conf, which it takes over whatever happens;
 * NULL (the reason logged) on failure.  Log lines go to the client's main
 * queue, served by whoever polls it. */
rd_kafka_t *sk_kafka_new(rd_kafka_conf_t *conf, bool consumer);
/* Who is woken when a watched queue has events (sk_kafka_watch). */
struct sk_kafka_wake {
    void (*fn)(void *ud);
    void *ud;
};
/* The loop watches q through a new pipe (pipe[0] read by io, pipe[1]
 * written by librdkafka): each wake-up empties the pipe and calls wake,
 * which must outlive io.  -errno (logged, naming what) on failure. */
int sk_kafka_watch(sd_event *loop, rd_kafka_queue_t *q, const char *what, int pipe[2],
                   sd_event_source **io, struct sk_kafka_wake *wake);

/* Is v a name Kafka accepts for a topic (1..249 of [a-zA-Z0-9._-])? */
bool sk_kafka_topic_name_ok(const char *v);
