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

/* A topic the producer cannot deliver to for a reason that retrying will
 * not cure (authorization, a topic that does not exist, an output that
 * fits no size limit): its outputs wait, parked, and are tried again now
 * and then, so that the operator's fix is picked up. */
struct stuck {
    uint64_t since; /* monotonic usec of the first refusal, 0 when delivering */
    rd_kafka_resp_err_t err;
};

struct sk_output {
    sd_event *loop;
    const struct sk_config *cfg;
    struct sk_stats *st;
    struct sk_output_ops ops;
    void *ud;
    rd_kafka_t *producer;
    rd_kafka_topic_t *rkt[2]; /* results, dead letters (index: SK_OUT_* - 1); made at start */
    rd_kafka_queue_t *pq;
    int pipe[2];
    sd_event_source *io;
    struct sk_kafka_wake wake; /* io's: serve delivery reports */
    size_t max_bytes;      /* the producer's message.max.bytes */
    struct sk_msg *resend; /* outputs waiting to be (re)produced at the next poll */
    struct sk_msg *parked; /* outputs refused for good so far, tried again at park_retry */
    uint64_t park_retry;
    struct stuck stuck[2];
};

/* How often parked outputs are tried again. */
#define PARK_RETRY_USEC 5000000ull

static uint64_t now_usec(const struct sk_output *o)
{
    uint64_t t = 0;
    sd_event_now(o->loop, CLOCK_MONOTONIC, &t);
    return t;
}

static const char *const out_names[2] = {"result", "dead-letter copy"};

static int out_index(int which) { return which == SK_OUT_DEAD_LETTER ? 1 : 0; }

enum sk_out_fault sk_output_classify(int err)
{
    switch ((rd_kafka_resp_err_t)err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return SK_OUT_TOO_LARGE;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return SK_OUT_REFUSED;
    default:
        return SK_OUT_TRANSIENT; /* queue full, timeouts, brokers away: send it again */
    }
}

static void add_echoed(rd_kafka_headers_t *h, const struct sk_msg *m)
{
    for (size_t i = 0; i < m->n_hdrs; i++)
        rd_kafka_header_add(h, m->hdrs[i].name, -1, m->hdrs[i].value, (ssize_t)m->hdrs[i].len);
}

/* The dead-letter copy: the input bytes unchanged, with where they came
 * from and why they were rejected in headers.  Cut to fit, it says so and
 * how large the input was. */
static rd_kafka_headers_t *dead_letter_headers(const struct sk_msg *m, bool echo)
{
    char part[16], off[24], size[24];
    snprintf(part, sizeof part, "%d", (int)m->part->partition);
    snprintf(off, sizeof off, "%lld", (long long)m->offset);
    snprintf(size, sizeof size, "%zu", m->raw_size);
    const char *msg = m->reject_msg ? m->reject_msg : sk_reject_code(m->reject);
    rd_kafka_headers_t *h = rd_kafka_headers_new(7 + m->n_hdrs);
    rd_kafka_header_add(h, "sk-source-topic", -1, m->part->topic, -1);
    rd_kafka_header_add(h, "sk-source-partition", -1, part, -1);
    rd_kafka_header_add(h, "sk-source-offset", -1, off, -1);
    rd_kafka_header_add(h, "sk-error-code", -1, sk_reject_code(m->reject), -1);
    rd_kafka_header_add(h, "sk-error-message", -1, msg, -1);
    if (m->cut[1] || m->bytes < m->raw_size) { /* cut here, or when consumed (msg.h) */
        rd_kafka_header_add(h, "sk-truncated", -1, "true", -1);
        rd_kafka_header_add(h, "sk-original-size", -1, size, -1);
    }
    if (echo)
        add_echoed(h, m);
    return h;
}

/* Bytes of the dead-letter copy's payload that fit the producer's limit
 * beside its key and headers (0 when only the headers fit). */
#define RECORD_OVERHEAD 1024 /* the record's own framing, with room to spare */
static size_t dead_letter_fit(const struct sk_output *o, const struct sk_msg *m)
{
    size_t used = m->key_len + RECORD_OVERHEAD + 512; /* our headers */
    for (size_t i = 0; i < m->n_hdrs; i++)
        used += strlen(m->hdrs[i].name) + m->hdrs[i].len;
    return o->max_bytes > used ? o->max_bytes - used : 0;
}

/* One output of m to the producer; the librdkafka error when it refuses it
 * at once. */
static rd_kafka_resp_err_t produce_one(struct sk_output *o, struct sk_msg *m, int which)
{
    int i = out_index(which);
    rd_kafka_headers_t *h = NULL;
    const void *val = m->result;
    size_t len = m->result_len;
    if (which == SK_OUT_DEAD_LETTER) {
        /* cut 1: the payload cut to fit; cut 2: headers of ours only */
        h = dead_letter_headers(m, m->cut[i] < 2);
        val = m->raw;
        len = m->raw_null ? 0 : m->bytes;
        if (m->cut[i] >= 2)
            len = 0;
        else if (m->cut[i] == 1) {
            size_t fit = dead_letter_fit(o, m);
            len = len > fit ? fit : len;
        }
    } else if (m->n_hdrs && !m->cut[i]) {
        /* cut 1: the result without the input's echoed headers */
        h = rd_kafka_headers_new(m->n_hdrs);
        add_echoed(h, m);
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        o->producer, RD_KAFKA_V_RKT(o->rkt[i]), RD_KAFKA_V_KEY(m->key, m->key_len),
        RD_KAFKA_V_VALUE((void *)(uintptr_t)val, len), RD_KAFKA_V_MSGFLAGS(0),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(m), RD_KAFKA_V_END);
    if (e && h)
        rd_kafka_headers_destroy(h); /* not taken over on failure */
    return e;
}

static void push(struct sk_msg **list, struct sk_msg *m)
{
    if (m->in_resend)
        return;
    m->in_resend = true;
    m->next = *list;
    *list = m;
}

static struct sk_log_ctx msg_ctx(const struct sk_msg *m)
{
    struct sk_log_ctx x = SK_LOG_CTX_NONE;
    x.topic = m->part->topic;
    x.partition = m->part->partition;
    x.offset = m->offset;
    return x;
}

/* A topic refuses our outputs for good: said once, when it starts. */
static void set_stuck(struct sk_output *o, int i, rd_kafka_resp_err_t err)
{
    struct stuck *s = &o->stuck[i];
    if (!s->since || s->err != err)
        log_error("delivery to %s refused: %s; its %ss wait and are tried again every %llu s, "
                  "and the daemon is not ready until it works",
                  rd_kafka_topic_name(o->rkt[i]), rd_kafka_err2str(err), out_names[i],
                  PARK_RETRY_USEC / 1000000ull);
    if (!s->since)
        s->since = now_usec(o);
    s->err = err;
}

static void clear_stuck(struct sk_output *o, int i)
{
    if (!o->stuck[i].since)
        return;
    log_notice("delivery to %s works again", rd_kafka_topic_name(o->rkt[i]));
    o->stuck[i] = (struct stuck){0};
}

/* An output of m failed, at production or in its delivery report: send it
 * again, cut it to fit, or park it, by what the error means. */
static void output_failed(struct sk_output *o, struct sk_msg *m, int which, rd_kafka_resp_err_t err)
{
    int i = out_index(which);
    m->unsent |= (uint8_t)which;
    enum sk_out_fault f = sk_output_classify(err);
    if (f == SK_OUT_TOO_LARGE && m->cut[i] < (which == SK_OUT_DEAD_LETTER ? 2 : 1)) {
        m->cut[i]++;
        o->st->outputs_cut[i]++;
        struct sk_log_ctx x = msg_ctx(m);
        sk_logc(SK_LOG_WARNING, &x, "%s of %s [%d] at %lld is too large for %s (%s): sending it %s",
                out_names[i], m->part->topic, (int)m->part->partition, (long long)m->offset,
                rd_kafka_topic_name(o->rkt[i]), rd_kafka_err2str(err),
                which == SK_OUT_RESULT ? "without the echoed headers"
                : m->cut[i] == 1       ? "cut to fit, with the header sk-truncated"
                                       : "as headers only, with the header sk-truncated");
        push(&o->resend, m);
        return;
    }
    if (f != SK_OUT_TRANSIENT) {
        set_stuck(o, i, err);
        push(&o->parked, m);
        return;
    }
    push(&o->resend, m);
}

/* Produce every output of m not yet handed to the producer. */
static void produce_unsent(struct sk_output *o, struct sk_msg *m)
{
    for (int which = SK_OUT_RESULT; which <= SK_OUT_DEAD_LETTER; which <<= 1) {
        if (!(m->unsent & which))
            continue;
        m->unsent &= (uint8_t)~which;
        rd_kafka_resp_err_t e = produce_one(o, m, which);
        if (e)
            output_failed(o, m, which, e);
    }
}

/* How long the event took: inside the daemon, and since its Kafka
 * timestamp (CreateTime: when the game server produced it, by its clock;
 * LogAppendTime: when the broker stored it).  A timestamp ahead of our
 * clock counts as 0. */
static void observe_event(struct sk_output *o, const struct sk_msg *m)
{
    uint64_t now = now_usec(o);
    sk_hist_observe(&o->st->event_seconds, sk_seconds_between(m->consumed_usec, now));
    /* the daemon's own share, apart from the database's */
    uint64_t own_from = m->consumed_usec + m->txn_usec;
    sk_hist_observe(&o->st->own_seconds, sk_seconds_between(own_from < now ? own_from : now, now));
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
    if (m->status == SK_ST_REJECTED) {
        o->st->k_rejected[k]++;
        o->st->rejected_by[(unsigned)m->reject < SK_E__COUNT ? m->reject : SK_OK]++;
    } else if (m->status == SK_ST_DUPLICATE)
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

/* Produce what waits on a list again; what fails again goes back on a list. */
static void flush(struct sk_output *o, struct sk_msg **list)
{
    struct sk_msg *l = *list;
    *list = NULL;
    while (l) {
        struct sk_msg *m = l;
        l = m->next;
        m->next = NULL;
        m->in_resend = false;
        produce_unsent(o, m);
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rm, void *opaque)
{
    (void)rk;
    struct sk_output *o = opaque;
    struct sk_msg *m = rm->_private;
    int which = rm->rkt == o->rkt[1] ? SK_OUT_DEAD_LETTER : SK_OUT_RESULT;
    int i = out_index(which);
    if (rm->err) {
        o->st->result_errors++;
        if (sk_output_classify(rm->err) == SK_OUT_TRANSIENT) {
            struct sk_log_ctx x = msg_ctx(m);
            sk_logc(SK_LOG_WARNING, &x, "delivery to %s failed: %s; sending it again",
                    rd_kafka_topic_name(rm->rkt), rd_kafka_err2str(rm->err));
        }
        output_failed(o, m, which, rm->err);
        return;
    }
    clear_stuck(o, i);
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
    flush(o, &o->resend);
    if (o->parked && now_usec(o) >= o->park_retry) {
        o->park_retry = now_usec(o) + PARK_RETRY_USEC;
        flush(o, &o->parked);
    }
}

uint64_t sk_output_stuck(const struct sk_output *o, char *why, size_t whylen)
{
    uint64_t since = 0;
    for (int i = 0; i < 2; i++) {
        const struct stuck *s = &o->stuck[i];
        if (!s->since || (since && since <= s->since))
            continue;
        since = s->since;
        snprintf(why, whylen, "delivery to %s refused: %s", rd_kafka_topic_name(o->rkt[i]),
                 rd_kafka_err2str(s->err));
    }
    return since;
}

static void on_wake(void *ud) { sk_output_poll(ud); }

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct sk_output *o = opaque;
    char why[768];
    int r = sk_kafka_error(rk, err, reason, why, sizeof why);
    if (r < 0)
        o->ops.fatal(o->ud, r, why);
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
    o->rkt[0] = rd_kafka_topic_new(o->producer, o->cfg->topic_results, NULL);
    o->rkt[1] = rd_kafka_topic_new(o->producer, o->cfg->topic_dead_letter, NULL);
    if (!o->rkt[0] || !o->rkt[1]) {
        log_error("cannot create Kafka topic handles: %s", rd_kafka_err2str(rd_kafka_last_error()));
        return -EINVAL;
    }
    char v[32];
    size_t vlen = sizeof v;
    o->max_bytes = 1000000; /* librdkafka's default, should the property not be read */
    if (rd_kafka_conf_get(rd_kafka_conf(o->producer), "message.max.bytes", v, &vlen) ==
        RD_KAFKA_CONF_OK)
        o->max_bytes = strtoul(v, NULL, 10);
    o->pq = rd_kafka_queue_get_main(o->producer);
    return sk_kafka_watch(o->loop, o->pq, "producer", o->pipe, &o->io, &o->wake);
}

int sk_output_new(sd_event *loop, const struct sk_config *cfg, struct sk_stats *st,
                  const struct sk_output_ops *ops, void *ud, struct sk_output **out)
{
    struct sk_output *o = malloc(sizeof *o);
    if (!o)
        return -ENOMEM;
    *o = (struct sk_output){.loop = loop, .cfg = cfg, .st = st, .ops = *ops, .ud = ud,
                            .pipe = {-1, -1}};
    o->wake = (struct sk_kafka_wake){.fn = on_wake, .ud = o};
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
    for (int i = 0; i < 2; i++)
        if (o->rkt[i])
            rd_kafka_topic_destroy(o->rkt[i]);
    if (o->producer)
        rd_kafka_destroy(o->producer);
    /* Only now, with the producer gone, does nothing refer to the messages
     * (results are produced without a copy). */
    for (struct sk_msg **list = &o->resend; list; list = list == &o->resend ? &o->parked : NULL)
        while (*list) {
            struct sk_msg *m = *list;
            *list = m->next;
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
