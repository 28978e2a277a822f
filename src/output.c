/* output — results and dead letters, see include/output.h. */
#include "output.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"

struct sk_output {
    sd_event *loop;
    const struct sk_config *cfg;
    struct sk_stats *st;
    struct sk_output_ops ops;
    void *ud;
    rd_kafka_t *producer;
    rd_kafka_topic_t *rkt_results, *rkt_dead_letter; /* made at start */
    rd_kafka_queue_t *pq;
    int pipe[2];
    sd_event_source *io;
    struct sk_msg *resend; /* outputs waiting to be (re)produced */
};

static uint64_t now_usec(const struct sk_output *o)
{
    uint64_t t = 0;
    sd_event_now(o->loop, CLOCK_MONOTONIC, &t);
    return t;
}

static rd_kafka_headers_t *echo_headers(const struct sk_msg *m)
{
    if (!m->n_hdrs)
        return NULL;
    rd_kafka_headers_t *h = rd_kafka_headers_new(m->n_hdrs);
    for (size_t i = 0; i < m->n_hdrs; i++)
        rd_kafka_header_add(h, m->hdrs[i].name, -1, m->hdrs[i].value, (ssize_t)m->hdrs[i].len);
    return h;
}

/* The dead-letter copy: the input bytes unchanged, with where they came
 * from and why they were rejected in headers. */
static rd_kafka_headers_t *dead_letter_headers(const struct sk_msg *m)
{
    char part[16], off[24];
    snprintf(part, sizeof part, "%d", (int)m->part->partition);
    snprintf(off, sizeof off, "%lld", (long long)m->offset);
    const char *msg = m->reject_msg ? m->reject_msg : sk_reject_code(m->reject);
    rd_kafka_headers_t *h = rd_kafka_headers_new(5 + m->n_hdrs);
    rd_kafka_header_add(h, "sk-source-topic", -1, m->part->topic, -1);
    rd_kafka_header_add(h, "sk-source-partition", -1, part, -1);
    rd_kafka_header_add(h, "sk-source-offset", -1, off, -1);
    rd_kafka_header_add(h, "sk-error-code", -1, sk_reject_code(m->reject), -1);
    rd_kafka_header_add(h, "sk-error-message", -1, msg, -1);
    for (size_t i = 0; i < m->n_hdrs; i++)
        rd_kafka_header_add(h, m->hdrs[i].name, -1, m->hdrs[i].value, (ssize_t)m->hdrs[i].len);
    return h;
}

static int produce_one(struct sk_output *o, struct sk_msg *m, int which)
{
    bool dlq = which == SK_OUT_DEAD_LETTER;
    rd_kafka_headers_t *h = dlq ? dead_letter_headers(m) : echo_headers(m);
    const void *val = dlq ? m->raw : m->result;
    size_t len = dlq ? (m->raw_null ? 0 : m->bytes) : m->result_len;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        o->producer, RD_KAFKA_V_RKT(dlq ? o->rkt_dead_letter : o->rkt_results),
        RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE((void *)(uintptr_t)val, len),
        RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(m), RD_KAFKA_V_END);
    if (e) {
        if (h)
            rd_kafka_headers_destroy(h); /* not taken over on failure */
        return -ENOBUFS;
    }
    return 0;
}

static void wait_resend(struct sk_output *o, struct sk_msg *m)
{
    if (m->in_resend)
        return;
    m->in_resend = true;
    m->next = o->resend;
    o->resend = m;
}

/* Produce every output of m not yet handed to the producer; whatever cannot
 * be queued now waits for the next delivery reports. */
static void produce_unsent(struct sk_output *o, struct sk_msg *m)
{
    for (int which = SK_OUT_RESULT; which <= SK_OUT_DEAD_LETTER; which <<= 1)
        if ((m->unsent & which) && produce_one(o, m, which) == 0)
            m->unsent &= (uint8_t)~which;
    if (m->unsent)
        wait_resend(o, m);
}

/* How long the event took: inside the daemon, and since its Kafka
 * timestamp (CreateTime: when the game server produced it, by its clock;
 * LogAppendTime: when the broker stored it).  A timestamp ahead of our
 * clock counts as 0. */
static void observe_event(struct sk_output *o, const struct sk_msg *m)
{
    sk_hist_observe(&o->st->event_seconds, sk_seconds_between(m->consumed_usec, now_usec(o)));
    if (m->created_ms < 0)
        return;
    uint64_t real = 0; /* the loop's time of this wake-up, as for CLOCK_MONOTONIC */
    sd_event_now(o->loop, CLOCK_REALTIME, &real);
    int64_t age_ms = (int64_t)(real / 1000) - m->created_ms;
    sk_hist_observe(&o->st->age_seconds, age_ms > 0 ? (double)age_ms / 1e3 : 0.0);
}

int sk_output_emit(struct sk_output *o, struct sk_msg *m)
{
    if (sk_msg_build_result(m) < 0)
        return -ENOMEM;
    unsigned k = m->part->kind == SK_EV_SCORE ? SK_EV_SCORE : SK_EV_USER;
    if (m->status == SK_ST_REJECTED)
        o->st->k_rejected[k]++;
    else if (m->status == SK_ST_DUPLICATE)
        o->st->k_duplicates[k]++;
    else
        o->st->k_applied[k]++;
    observe_event(o, m);
    m->todo = SK_OUT_RESULT;
    if (m->status == SK_ST_REJECTED)
        m->todo |= SK_OUT_DEAD_LETTER;
    m->unsent = m->todo;
    produce_unsent(o, m);
    return 0;
}

static void flush_resend(struct sk_output *o)
{
    struct sk_msg *list = o->resend;
    o->resend = NULL;
    while (list) {
        struct sk_msg *m = list;
        list = m->next;
        m->in_resend = false;
        produce_unsent(o, m);
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rm, void *opaque)
{
    (void)rk;
    struct sk_output *o = opaque;
    struct sk_msg *m = rm->_private;
    int which = rm->rkt == o->rkt_dead_letter ? SK_OUT_DEAD_LETTER : SK_OUT_RESULT;
    if (rm->err) {
        o->st->result_errors++;
        struct sk_log_ctx x = SK_LOG_CTX_NONE;
        x.topic = m->part->topic;
        x.partition = m->part->partition;
        x.offset = m->offset;
        sk_logc(SK_LOG_WARNING, &x, "delivery to %s failed: %s; sending it again",
                rd_kafka_topic_name(rm->rkt), rd_kafka_err2str(rm->err));
        m->unsent |= (uint8_t)which;
        wait_resend(o, m);
        return;
    }
    if (which == SK_OUT_RESULT)
        o->st->results++;
    else
        o->st->dead_letters++;
    m->todo &= (uint8_t)~which;
    if (!m->todo)
        o->ops.delivered(o->ud, m);
}

void sk_output_poll(struct sk_output *o)
{
    while (rd_kafka_poll(o->producer, 0) > 0)
        ;
    flush_resend(o);
}

static int on_producer_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    (void)s;
    (void)revents;
    sk_kafka_pipe_drain(fd);
    sk_output_poll(ud);
    return 0;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct sk_output *o = opaque;
    char why[512];
    if (sk_kafka_error(rk, err, reason, why, sizeof why))
        o->ops.fatal(o->ud, why);
}

static rd_kafka_t *new_producer(struct sk_output *o)
{
    rd_kafka_conf_t *pc = sk_kafka_conf_client(o->cfg, false, o, on_error);
    if (pc)
        rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    return pc ? sk_kafka_new(pc, false) : NULL;
}

/* The producer, its topic handles and its wake-up; -errno (logged). */
static int start(struct sk_output *o)
{
    if (!(o->producer = new_producer(o)))
        return -EINVAL;
    /* Topic handles made now start the metadata lookups for the outputs
     * while the consumer joins its group: the first results do not wait
     * for them. */
    o->rkt_results = rd_kafka_topic_new(o->producer, o->cfg->topic_results, NULL);
    o->rkt_dead_letter = rd_kafka_topic_new(o->producer, o->cfg->topic_dead_letter, NULL);
    if (!o->rkt_results || !o->rkt_dead_letter) {
        log_error("cannot create Kafka topic handles: %s", rd_kafka_err2str(rd_kafka_last_error()));
        return -EINVAL;
    }
    o->pq = rd_kafka_queue_get_main(o->producer);
    return sk_kafka_watch(o->loop, o->pq, "producer", o->pipe, &o->io, on_producer_io, o);
}

int sk_output_new(sd_event *loop, const struct sk_config *cfg, struct sk_stats *st,
                  const struct sk_output_ops *ops, void *ud, struct sk_output **out)
{
    struct sk_output *o = malloc(sizeof *o);
    if (!o)
        return -ENOMEM;
    *o = (struct sk_output){.loop = loop, .cfg = cfg, .st = st, .ops = *ops, .ud = ud,
                            .pipe = {-1, -1}};
    int r = start(o);
    if (r < 0)
        sk_output_free(o, NULL, NULL);
    else
        *out = o;
    return r;
}

void sk_output_free(struct sk_output *o, sk_drop_fn drop, void *ud)
{
    if (!o)
        return;
    o->io = sd_event_source_disable_unref(o->io);
    if (o->producer) {
        /* Whatever is still queued was already given up on (the loop is
         * over): a short flush, then purge without waiting.  The purge
         * reports the dropped messages as failed, which only puts them on
         * the resend list. */
        rd_kafka_flush(o->producer, 0);
        rd_kafka_purge(o->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        while (rd_kafka_poll(o->producer, 0) > 0)
            ;
    }
    if (o->pq)
        rd_kafka_queue_destroy(o->pq);
    if (o->rkt_results)
        rd_kafka_topic_destroy(o->rkt_results);
    if (o->rkt_dead_letter)
        rd_kafka_topic_destroy(o->rkt_dead_letter);
    if (o->producer)
        rd_kafka_destroy(o->producer);
    /* Only now, with the producer gone, does nothing refer to the messages
     * (results are produced without a copy). */
    while (o->resend) {
        struct sk_msg *m = o->resend;
        o->resend = m->next;
        m->next = NULL;
        m->in_resend = false;
        if (drop)
            drop(ud, m);
    }
    for (int i = 0; i < 2; i++)
        if (o->pipe[i] >= 0)
            close(o->pipe[i]);
    free(o);
}
