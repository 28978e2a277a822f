/* kafka — client configuration and queue wake-ups, see include/kafka.h. */
#include "kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int set(rd_kafka_conf_t *c, const char *k, const char *v, const char *origin, char *err,
               size_t errlen)
{
    char e[256];
    if (rd_kafka_conf_set(c, k, v, e, sizeof e) == RD_KAFKA_CONF_OK)
        return 0;
    bool secret = sk_config_key_is_secret(k);
    /* The passthrough key is reported as the user wrote it: kafka.<prop>. */
    snprintf(err, errlen, "invalid setting \"kafka.%s\" = \"%s\" (from %s): %s", k,
             secret ? "********" : v, origin, e);
    return -1;
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
    if (consumer) {
        /* Offsets are stored and committed by us, only for events whose
         * results were delivered. */
        if (set(c, "group.id", cfg->group_id, def, err, errlen) < 0 ||
            set(c, "enable.auto.commit", "false", def, err, errlen) < 0 ||
            set(c, "enable.auto.offset.store", "false", def, err, errlen) < 0 ||
            set(c, "auto.offset.reset", "earliest", def, err, errlen) < 0 ||
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
             * a queue of its own (daemon.c, own_queue), so the bound is per
             * partition: 512 kB of payload queued, and fetches of at most
             * 128 kB per partition, which a compressed batch inflates to
             * several times that.  Measured on a 1M-event drain (4
             * partitions): 1 MB queued and 1 MB fetches peaked at 91.6 MiB
             * RSS, 1 MB and 256 kB at 65.6 MiB, these at 49.6 MiB, at the
             * same speed (94-100k events/s).  The bound is in bytes only:
             * librdkafka before 2.3 stops fetching a partition whose queue
             * holds queued.min.messages and looks again only at its next
             * wake-up; with a count bound below what one response brings,
             * the pipeline ran dry between fetches. */
            set(c, "queued.max.messages.kbytes", "512", def, err, errlen) < 0 ||
            set(c, "max.partition.fetch.bytes", "131072", def, err, errlen) < 0 ||
            set(c, "fetch.max.bytes", "2097152", def, err, errlen) < 0 ||
            set(c, "queued.min.messages", "10000000", def, err, errlen) < 0 ||
            /* librdkafka before 2.3 looks again at a partition it stopped
             * fetching (its queue full, or resumed) only when its fetcher
             * wakes up, which the answer to the long poll on the other
             * partitions does: 500 ms by default.  With 20 ms, a held
             * partition is fetched again soon after it is read again
             * (bench: about 1.6 times the throughput with a 20,000-event
             * window, before partitions had queues of their own). */
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
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        const struct sk_kv *kv = &cfg->kafka[i];
        /* Group settings mean nothing to the producer; librdkafka would only
         * warn, but a clean log matters more to on-call. */
        if (!consumer && (!strncmp(kv->key, "group.", 6) || !strncmp(kv->key, "auto.offset", 11) ||
                          !strncmp(kv->key, "partition.assignment", 20) ||
                          !strncmp(kv->key, "session.timeout", 15) ||
                          !strncmp(kv->key, "max.poll", 8) || !strncmp(kv->key, "heartbeat", 9)))
            continue;
        if (consumer && (!strncmp(kv->key, "linger", 6) || !strncmp(kv->key, "acks", 4) ||
                         !strncmp(kv->key, "enable.idempotence", 18) ||
                         !strncmp(kv->key, "compression", 11) || !strncmp(kv->key, "batch.", 6) ||
                         !strncmp(kv->key, "queue.buffering", 15) ||
                         !strncmp(kv->key, "message.timeout", 15)))
            continue;
        if (set(c, kv->key, kv->value, kv->origin, err, errlen) < 0)
            goto fail;
    }
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
