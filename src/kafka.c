/* kafka — client configuration and queue wake-ups, see include/kafka.h. */
#include "kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Set one librdkafka property; 0, or -EINVAL with a message in err naming
 * the setting as written (name: kafka.<key>, NULL for our own defaults). */
static int set_named(rd_kafka_conf_t *c, const char *k, const char *v, const char *name,
                     const char *origin, char *err, size_t errlen)
{
    char e[256];
    if (rd_kafka_conf_set(c, k, v, e, sizeof e) == RD_KAFKA_CONF_OK)
        return 0;
    bool secret = sk_config_key_is_secret(k);
    snprintf(err, errlen, "invalid setting \"kafka.%s\" = \"%s\" (from %s): %s", name ? name : k,
             secret ? "********" : v, origin, e);
    return -EINVAL;
}

static int set(rd_kafka_conf_t *c, const char *k, const char *v, const char *origin, char *err,
               size_t errlen)
{
    return set_named(c, k, v, NULL, origin, err, errlen);
}

/* Is this kafka.<property> (for both clients) meaningless to this client?
 * librdkafka would only warn, but a clean log matters more to on-call. */
static bool other_clients(const char *k, bool consumer)
{
    if (!consumer)
        return !strncmp(k, "group.", 6) || !strncmp(k, "auto.offset", 11) ||
               !strncmp(k, "partition.assignment", 20) || !strncmp(k, "session.timeout", 15) ||
               !strncmp(k, "max.poll", 8) || !strncmp(k, "heartbeat", 9);
    return !strncmp(k, "linger", 6) || !strncmp(k, "acks", 4) ||
           !strncmp(k, "enable.idempotence", 18) || !strncmp(k, "compression", 11) ||
           !strncmp(k, "batch.", 6) || !strncmp(k, "queue.buffering", 15) ||
           !strncmp(k, "message.timeout", 15);
}

/* The passthrough settings: those for both clients first, so that
 * kafka.consumer.X and kafka.producer.X win over kafka.X. */
static int set_passthrough(rd_kafka_conf_t *c, const struct sk_config *cfg, bool consumer,
                           char *err, size_t errlen)
{
    enum sk_kafka_client own = consumer ? SK_KAFKA_CONSUMER : SK_KAFKA_PRODUCER;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < cfg->n_kafka; i++) {
            const struct sk_kv *kv = &cfg->kafka[i];
            const char *prop;
            enum sk_kafka_client who = sk_config_kafka_client(kv->key, &prop);
            if (pass == 0 ? who != SK_KAFKA_BOTH || other_clients(prop, consumer) : who != own)
                continue;
            if (set_named(c, prop, kv->value, kv->key, kv->origin, err, errlen) < 0)
                return -EINVAL;
        }
    return 0;
}

rd_kafka_conf_t *sk_kafka_conf(const struct sk_config *cfg, bool consumer, char *err, size_t errlen)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const char *def = "built-in default";
    /* log.queue: librdkafka's log lines come through our loop (see
     * rd_kafka_set_log_queue in the daemon), never from its own threads,
     * so the logger needs no locking. */
    if (set(c, "log.queue", "true", def, err, errlen) < 0 ||
        set(c, "bootstrap.servers", cfg->kafka_brokers ? cfg->kafka_brokers : "", def, err, errlen) < 0 ||
        set(c, "client.id", consumer ? "scorekeeper-consumer" : "scorekeeper-producer", def, err, errlen) < 0)
        goto fail;
    /* A broker that stops answering without refusing (packets dropped) is
     * given up within the same bound as a silent database statement
     * (db.query_timeout_ms' default) rather than librdkafka's 60 s, and a
     * connect whose SYNs are dropped is tried afresh after 10 s rather
     * than 30 s, so the clients come back soon after the path does. */
    if (set(c, "socket.timeout.ms", "30000", def, err, errlen) < 0 ||
        set(c, "socket.connection.setup.timeout.ms", "10000", def, err, errlen) < 0 ||
        set(c, "socket.keepalive.enable", "true", def, err, errlen) < 0)
        goto fail;
    if (consumer) {
        /* Offsets are stored and committed by us, only for events whose
         * results were delivered. */
        if (set(c, "group.id", cfg->group_id, def, err, errlen) < 0 ||
            set(c, "enable.auto.commit", "false", def, err, errlen) < 0 ||
            set(c, "enable.auto.offset.store", "false", def, err, errlen) < 0 ||
            set(c, "auto.offset.reset", "earliest", def, err, errlen) < 0 ||
            /* librdkafka's default, said here because applying only
             * committed input is a promise (config_kafka.c guards it) */
            set(c, "isolation.level", "read_committed", def, err, errlen) < 0 ||
            /* Cooperative rebalancing moves only the partitions that change
             * owner, but librdkafka before 2.3.0 aborts when a consumer that
             * joined without ever being assigned is destroyed
             * (librdkafka#4312): older ones get the eager assignors. */
            set(c, "partition.assignment.strategy",
                rd_kafka_version() >= 0x020300ff ? "cooperative-sticky" : "range,roundrobin", def,
                err, errlen) < 0 ||
            /* consumer lag per partition, for /metrics */
            set(c, "statistics.interval.ms", "5000", def, err, errlen) < 0 ||
            /* Prefetch is bounded memory too.  Each partition is read from
             * a queue of its own (consumer.c, own_queue), so the bound is
             * per partition, and fetches stay small because a compressed
             * batch inflates to several times its size.  The bound is in
             * bytes only: librdkafka before 2.3 stops fetching a partition
             * whose queue holds queued.min.messages and looks again only at
             * its next wake-up, so a count bound below what one response
             * brings would run the pipeline dry between fetches. */
            set(c, "queued.max.messages.kbytes", "512", def, err, errlen) < 0 ||
            set(c, "max.partition.fetch.bytes", "131072", def, err, errlen) < 0 ||
            set(c, "fetch.max.bytes", "2097152", def, err, errlen) < 0 ||
            set(c, "queued.min.messages", "10000000", def, err, errlen) < 0 ||
            /* librdkafka before 2.3 looks again at a partition it stopped
             * fetching (its queue full, or resumed) only when its fetcher
             * wakes up, which the long poll on the other partitions does:
             * a short wait brings a held partition back soon after it is
             * read again. */
            set(c, "fetch.wait.max.ms", "20", def, err, errlen) < 0)
            goto fail;
    } else {
        /* Results at least once and in order per key: idempotence gives
         * both without duplicates from internal retries. */
        if (set(c, "enable.idempotence", "true", def, err, errlen) < 0 ||
            set(c, "linger.ms", "5", def, err, errlen) < 0 ||
            set(c, "queue.buffering.max.messages", "1000000", def, err, errlen) < 0)
            goto fail;
    }
    if (set_passthrough(c, cfg, consumer, err, errlen) < 0)
        goto fail;
    return c;
fail:
    rd_kafka_conf_destroy(c);
    return NULL;
}

int sk_kafka_queue_pipe(rd_kafka_queue_t *q, int fds[2])
{
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
    rd_kafka_queue_io_event_enable(q, fds[1], "1", 1);
    return 0;
}

void sk_kafka_pipe_drain(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

void sk_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    enum sk_log_level l = level <= 3   ? SK_LOG_ERR
                          : level == 4 ? SK_LOG_WARNING
                          : level == 5 ? SK_LOG_NOTICE
                          : level == 6 ? SK_LOG_INFO
                                       : SK_LOG_DEBUG;
    sk_logc(l, NULL, "librdkafka %s: %s", fac, buf);
}

/* One of the client's settings, or what to print when it has none. */
static const char *conf_value(rd_kafka_t *rk, const char *key, char *buf, size_t n)
{
    size_t len = n;
    if (rd_kafka_conf_get(rd_kafka_conf(rk), key, buf, &len) != RD_KAFKA_CONF_OK || !*buf)
        snprintf(buf, n, "(unset)");
    return buf;
}

int sk_kafka_error(rd_kafka_t *rk, int err, const char *reason, char *why, size_t whylen)
{
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[400];
        rd_kafka_fatal_error(rk, buf, sizeof buf);
        snprintf(why, whylen, "Kafka fatal error: %s", buf);
        return -EIO;
    }
    /* The credentials are the cluster's, not one broker's: every broker
     * refuses them alike, and librdkafka would try again forever while
     * the daemon never becomes ready.  The reason names the broker; the
     * password is in no setting librdkafka prints. */
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
        char mech[64], user[128];
        snprintf(why, whylen,
                 "Kafka authentication failed (SASL mechanism %s, user %s): %s; check "
                 "kafka.sasl.mechanisms, kafka.sasl.username and the password "
                 "(kafka.sasl.password_file or the credential kafka.sasl.password)",
                 conf_value(rk, "sasl.mechanisms", mech, sizeof mech),
                 conf_value(rk, "sasl.username", user, sizeof user), reason);
        return -EACCES;
    }
    log_warning("Kafka: %s: %s; librdkafka tries again by itself",
                rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    return 0;
}

rd_kafka_conf_t *sk_kafka_conf_client(const struct sk_config *cfg, bool consumer, void *opaque,
                                      void (*on_error)(rd_kafka_t *, int, const char *, void *))
{
    char err[512];
    rd_kafka_conf_t *c = sk_kafka_conf(cfg, consumer, err, sizeof err);
    if (!c) {
        log_error("%s", err);
        return NULL;
    }
    rd_kafka_conf_set_opaque(c, opaque);
    rd_kafka_conf_set_error_cb(c, on_error);
    rd_kafka_conf_set_log_cb(c, sk_kafka_log);
    return c;
}

rd_kafka_t *sk_kafka_new(rd_kafka_conf_t *conf, bool consumer)
{
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(consumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf, err,
                                  sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(conf); /* not taken over on failure */
        log_error("cannot create Kafka %s: %s", consumer ? "consumer" : "producer", err);
        return NULL;
    }
    if (consumer)
        rd_kafka_poll_set_consumer(rk); /* the main queue is the consumer queue from now on */
    rd_kafka_set_log_queue(rk, NULL);
    return rk;
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    (void)s;
    (void)revents;
    const struct sk_kafka_wake *w = ud;
    sk_kafka_pipe_drain(fd);
    w->fn(w->ud);
    return 0;
}

int sk_kafka_watch(sd_event *loop, rd_kafka_queue_t *q, const char *what, int pipe[2],
                   sd_event_source **io, struct sk_kafka_wake *wake)
{
    int r = sk_kafka_queue_pipe(q, pipe);
    if (r >= 0)
        r = sd_event_add_io(loop, io, pipe[0], EPOLLIN, on_wake, wake);
    if (r < 0)
        log_error("cannot watch the %s's queue: %s", what, strerror(-r));
    return r;
}

bool sk_kafka_topic_name_ok(const char *v)
{
    size_t len = strlen(v);
    return len && len <= 249 &&
           strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}
