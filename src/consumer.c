/* consumer — partitions, rebalances, reading and offsets, see
 * include/consumer.h.
 *
 * Backpressure holds a partition (its own queue is no longer read) rather
 * than pausing it in Kafka: librdkafka keeps the prefetch it has and stops
 * fetching once the partition's queue holds queued.max.messages.kbytes,
 * whereas a pause drops that prefetch, to be fetched again after the
 * resume, and librdkafka 2.0 looks at a resumed partition only at its
 * fetcher's next wake-up.  The consumer queue itself is still polled (the
 * poll tick), so the group keeps us.  Kafka pauses are for the drain. */
#include "consumer.h"

#include <cJSON.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "flow.h"
#include "kafka.h"
#include "log.h"

/* Messages handled per wake-up before yielding to the loop's other sources
 * (fairness, not a limit), in all and of one partition per turn. */
#define CONSUME_BURST 2000
#define PART_BURST 500
/* Input headers echoed into a result, at most. */
#define ECHO_MAX 8

struct sk_consumer {
    sd_event *loop;
    const struct sk_config *cfg;
    struct sk_stats *st;
    struct sk_consumer_ops ops;
    void *ud;
    rd_kafka_t *rk;
    rd_kafka_queue_t *cq;
    int pipe[2];
    sd_event_source *io, *defer;
    struct sk_kafka_wake wake; /* io's: read the queues */
    struct sk_part *parts; /* assigned partitions */
    size_t n_active;       /* of them, those that delivered messages (share the window) */
    size_t inflight;       /* messages out: consumed, not yet done or released */
    size_t inflight_bytes; /* what they hold, as charged (sk_msg_charge) */
    size_t dead_letter_max; /* the most payload bytes a dead-letter copy can carry */
    bool paused;           /* draining: every partition paused in Kafka */
    bool closing;          /* left the group, waiting for librdkafka to confirm */
    bool failed;           /* fatal error reported: read nothing more */
};

static uint64_t now_usec(const struct sk_consumer *c)
{
    uint64_t t = 0;
    sd_event_now(c->loop, CLOCK_MONOTONIC, &t);
    return t;
}

static void fatal(struct sk_consumer *c, int err, const char *why)
{
    c->failed = true;
    c->ops.fatal(c->ud, err, why);
}

static struct sk_part *part_find(const struct sk_consumer *c, const char *topic, int32_t partition)
{
    for (struct sk_part *p = c->parts; p; p = p->next)
        if (p->partition == partition && !strcmp(p->topic, topic))
            return p;
    return NULL;
}

/* ---- offsets --------------------------------------------------------- */

void sk_consumer_commit(struct sk_consumer *c)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    for (struct sk_part *p = c->parts; p; p = p->next) {
        if (p->next_commit < 0 || p->next_commit <= p->committed)
            continue;
        if (!l)
            l = rd_kafka_topic_partition_list_new(4);
        rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = p->next_commit;
        p->committed = p->next_commit;
    }
    if (!l)
        return;
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, l, 1 /* async */);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_warning("offset commit failed: %s; retrying at the next interval", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
}

static void on_offset_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    struct sk_consumer *c = opaque;
    if (!err || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    log_warning("offset commit failed: %s; retrying at the next interval", rd_kafka_err2str(err));
    /* Forget what we believed committed so the next interval sends it again. */
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        struct sk_part *p = part_find(c, offsets->elems[i].topic, offsets->elems[i].partition);
        if (p)
            p->committed = -1;
    }
}

/* ---- backpressure ---------------------------------------------------- */

static size_t share(const struct sk_consumer *c)
{
    return sk_flow_share(c->cfg->max_inflight_events, c->n_active);
}

static size_t share_bytes(const struct sk_consumer *c)
{
    return sk_flow_share(c->cfg->max_inflight_bytes, c->n_active);
}

/* Holds (stops reading) or releases a partition; logged as paused/resumed,
 * the words operators and the metrics know. */
static void hold(struct sk_consumer *c, struct sk_part *p, bool held)
{
    p->held = held;
    struct sk_log_ctx x = SK_LOG_CTX_NONE;
    x.topic = p->topic;
    x.partition = p->partition;
    sk_logc(SK_LOG_INFO, &x,
            "%s %s [%d]: %zu events in flight over %zu offsets (limit %zu per partition), "
            "holding %zu bytes (limit %zu per partition)",
            held ? "paused" : "resumed", p->topic, (int)p->partition, sk_part_live(p),
            sk_part_span(p), share(c), p->bytes, share_bytes(c));
    /* What waits in its queue raised no wake-up: read it on the next turn. */
    if (!held)
        sd_event_source_set_enabled(c->defer, SD_EVENT_ON);
}

void sk_consumer_release(struct sk_consumer *c, struct sk_msg *m)
{
    struct sk_part *p = m->part;
    if (p)
        p->bytes -= m->charge;
    c->inflight_bytes -= m->charge;
    c->st->inflight_bytes = c->inflight_bytes;
    bool was_held = p && p->held && !p->revoked; /* revoked: may be freed below */
    sk_msg_free(m);
    c->inflight--;
    if (was_held && !c->paused && sk_flow_low(sk_part_live(p), sk_part_span(p), share(c)) &&
        sk_flow_low_bytes(p->bytes, share_bytes(c)))
        hold(c, p, false);
}

void sk_consumer_done(struct sk_consumer *c, struct sk_msg *m)
{
    sk_part_done(m->part, m->offset);
    sk_consumer_release(c, m);
}

/* ---- reading --------------------------------------------------------- */

/* Is this input header one of results.echo_headers (so callers can match
 * results to their requests)?  The list is short; a scan is cheapest. */
static bool echoed_header(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == n && !strncasecmp(p, name, n))
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

/* The input's headers named in results.echo_headers (at most ECHO_MAX),
 * pointing into rm: valid until it is destroyed. */
static size_t echoed_headers(const char *list, rd_kafka_message_t *rm, struct sk_hdr *out)
{
    rd_kafka_headers_t *h = NULL;
    if (!list || !*list || rd_kafka_message_headers(rm, &h) || !h)
        return 0;
    size_t n = 0, cnt = rd_kafka_header_cnt(h);
    for (size_t i = 0; i < cnt && n < ECHO_MAX; i++) {
        const char *name;
        const void *val;
        size_t len;
        if (rd_kafka_header_get_all(h, i, &name, &val, &len))
            break;
        if (echoed_header(list, name))
            out[n++] = (struct sk_hdr){.name = name, .value = val, .len = len};
    }
    return n;
}

/* The memory m holds is counted in flight, its partition's and ours. */
static void charge(struct sk_consumer *c, struct sk_part *p, struct sk_msg *m)
{
    m->charge = sk_msg_charge(m);
    p->bytes += m->charge;
    c->inflight_bytes += m->charge;
    c->st->inflight_bytes = c->inflight_bytes;
}

/* p: the partition whose own queue rm came from; NULL for the consumer
 * queue, which may carry any partition's messages. */
static void on_message(struct sk_consumer *c, rd_kafka_message_t *rm, struct sk_part *p)
{
    const char *topic = rd_kafka_topic_name(rm->rkt);
    if (!p)
        p = part_find(c, topic, rm->partition);
    if (!p) {
        log_debug("message from unassigned %s [%d] at %lld ignored", topic, (int)rm->partition,
                  (long long)rm->offset);
        return;
    }
    /* A payload over the size limit is rejected from its length alone
     * (sk_event_parse reads none of it), and of it only what its
     * dead-letter copy can carry is kept: a message of any size costs at
     * most that. */
    size_t keep = rm->len;
    if (rm->payload && rm->len > c->cfg->limits.max_message_bytes && keep > c->dead_letter_max)
        keep = c->dead_letter_max;
    struct sk_hdr hdrs[ECHO_MAX];
    size_t n_hdrs = echoed_headers(c->cfg->echo_headers, rm, hdrs);
    struct sk_msg *m = sk_msg_new_copy(p, rm->offset, rm->payload, keep, rm->key,
                                       rm->key ? rm->key_len : 0, hdrs, n_hdrs);
    if (!m || sk_part_track(p, rm->offset) < 0) {
        sk_msg_free(m);
        fatal(c, -ENOMEM, "out of memory consuming a message; stopping so that it is consumed again");
        return;
    }
    if (rm->payload)
        m->raw_size = rm->len;
    m->consumed_usec = now_usec(c);
    rd_kafka_timestamp_type_t tstype;
    m->created_ms = rd_kafka_message_timestamp(rm, &tstype);
    if (!p->active) {
        p->active = true;
        c->n_active++;
    }
    c->st->k_consumed[p->kind == SK_EV_SCORE ? SK_EV_SCORE : SK_EV_USER]++;
    struct sk_parse_error perr = {0};
    enum sk_reject r = sk_event_parse(p->kind, rm->payload, rm->len, rm->key,
                                      rm->key ? rm->key_len : 0, &c->cfg->limits, &m->ev, &perr);
    if (r != SK_OK) {
        sk_msg_reject(m, r, perr.message);
        if (perr.event_id[0])
            m->reject_event_id = strdup(perr.event_id);
    } else {
        m->parsed = true;
    }
    charge(c, p, m);
    if (!p->held && (sk_flow_full(sk_part_live(p), sk_part_span(p), c->inflight,
                                  c->cfg->max_inflight_events, share(c)) ||
                     sk_flow_full_bytes(p->bytes, c->inflight_bytes, c->cfg->max_inflight_bytes,
                                        share_bytes(c))))
        hold(c, p, true);
    c->inflight++;
    if (r != SK_OK) {
        if (sk_log_enabled(SK_LOG_DEBUG)) {
            struct sk_log_ctx x = SK_LOG_CTX_NONE;
            x.topic = p->topic;
            x.partition = p->partition;
            x.offset = rm->offset;
            sk_logc(SK_LOG_DEBUG, &x, "rejected: %s: %s", sk_reject_code(r), perr.message);
        }
        c->ops.rejected(c->ud, m);
        return;
    }
    c->ops.event(c->ud, m, p->kind == SK_EV_SCORE ? m->ev.game_id : 0);
}

static void handle_message(struct sk_consumer *c, rd_kafka_message_t *rm, struct sk_part *p)
{
    if (rm->err) {
        /* A broker saying a topic does not exist (yet) has answered: the
         * daemon is ready and consumes the topic once it exists. */
        if (rm->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            rm->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
            c->ops.answered(c->ud);
        if (rm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warning("consumer: %s", rd_kafka_message_errstr(rm));
    } else {
        on_message(c, rm, p);
    }
    rd_kafka_message_destroy(rm);
}

/* ---- reused offsets ----------------------------------------------------- */

/* The partition's events would all be reported duplicate: nothing of it
 * flows until an operator resets its marks and the daemon checks it again
 * (sk_consumer_recheck).  It stays assigned (its queue is not read, the
 * consumer queue still is), so that no other instance takes it. */
static void refuse(struct sk_part *p, int64_t hi)
{
    p->check = SK_PART_REFUSED;
    struct sk_log_ctx x = SK_LOG_CTX_NONE;
    x.topic = p->topic;
    x.partition = p->partition;
    sk_logc(SK_LOG_ERR, &x,
            "refusing %s [%d]: game_offsets holds marks up to offset %lld, beyond the end of the "
            "partition's log (high watermark %lld): its offsets were used again (the topic "
            "deleted and recreated, consumers moved to a copy of it, or its log truncated by an "
            "unclean leader election), and its events would be reported duplicate without being "
            "applied.  None of them is applied until the marks are reset, as an administrator: "
            "scorekeeper -o db.url=ADMIN_URL reset-marks --topic %s --partition %d; then reload "
            "(SIGHUP) or restart the daemon",
            p->topic, (int)p->partition, (long long)p->top_mark, (long long)hi, p->topic,
            (int)p->partition);
}

/* May a score partition's events flow?  Not when the highest mark
 * game_offsets holds for it lies beyond the end of its log.  Decided once
 * its marks were read and, if it has marks, once its first message is in
 * hand: the fetch that brought it also refreshed the high watermark that
 * librdkafka caches (one cached at an earlier assignment may be older than
 * marks other instances wrote since).  Until then its events wait; on a
 * yes the first message is handled. */
static void check_part(struct sk_consumer *c, struct sk_part *p)
{
    if (!p->marks_read)
        return;
    if (p->top_mark >= 0) {
        if (!p->first)
            return;
        int64_t hi = p->first->offset + 1; /* the log reaches past its first message */
        if (p->top_mark > hi) {
            int64_t lo, cached;
            if (rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &lo, &cached) ||
                cached < 0)
                return; /* not known (the last fetch failed): at the next poll */
            if (cached > hi)
                hi = cached;
        }
        if (p->top_mark > hi) {
            refuse(p, hi);
            return;
        }
    }
    p->check = SK_PART_CHECKED;
    rd_kafka_message_t *rm = p->first;
    p->first = NULL;
    if (rm)
        handle_message(c, rm, p);
}

void sk_consumer_marks_read(struct sk_consumer *c, struct sk_part *p)
{
    (void)p;
    /* decided on the next turn, where messages are read */
    sd_event_source_set_enabled(c->defer, SD_EVENT_ON);
}

/* ---- marks ------------------------------------------------------------ */

/* Each assigned score partition's share of pipeline.game_marks. */
static size_t marks_share(const struct sk_consumer *c)
{
    size_t n = 0;
    for (const struct sk_part *p = c->parts; p; p = p->next)
        n += p->kind == SK_EV_SCORE;
    return c->cfg->game_marks / (n ? n : 1);
}

/* Partitions came or went: the bound of every map follows. */
static void share_marks(struct sk_consumer *c)
{
    size_t max = marks_share(c);
    for (struct sk_part *p = c->parts; p; p = p->next)
        if (p->marks)
            sk_marks_set_max(p->marks, max);
}

unsigned sk_consumer_recheck(struct sk_consumer *c)
{
    unsigned n = 0;
    for (struct sk_part *p = c->parts; p; p = p->next) {
        if (p->check != SK_PART_REFUSED)
            continue;
        /* nothing of it is in flight: its marks are read afresh */
        struct sk_marks *m = sk_marks_new(marks_share(c));
        if (!m) {
            log_warning("cannot check %s [%d] again (out of memory); it stays refused", p->topic,
                        (int)p->partition);
            continue;
        }
        sk_marks_free(p->marks);
        p->marks = m;
        p->check = SK_PART_CHECKING;
        p->marks_read = false;
        p->top_mark = -1;
        log_notice("checking %s [%d] again: reading its marks", p->topic, (int)p->partition);
        c->ops.assigned(c->ud, p);
        n++;
    }
    return n;
}

unsigned sk_consumer_refused(const struct sk_consumer *c)
{
    unsigned n = 0;
    for (const struct sk_part *p = c->parts; p; p = p->next)
        n += p->check == SK_PART_REFUSED;
    return n;
}

/* Reads up to `burst` messages of a partition's own queue, stopping early
 * when the partition is held, or is being checked (its first message is
 * kept aside) or refused.  True if more may wait. */
static bool drain_part(struct sk_consumer *c, struct sk_part *p, int burst)
{
    for (int i = 0; i < burst && !c->failed; i++) {
        if (p->held)
            return false;
        if (p->check == SK_PART_CHECKING)
            check_part(c, p);
        if (p->check != SK_PART_CHECKED && p->first)
            return false;
        rd_kafka_message_t *rm = rd_kafka_consume_queue(p->queue, 0);
        if (!rm)
            return false;
        if (p->check != SK_PART_CHECKED && !rm->err) {
            p->first = rm;
            continue;
        }
        handle_message(c, rm, p);
    }
    return !c->failed;
}

void sk_consumer_poll(struct sk_consumer *c)
{
    if (c->failed)
        return;
    /* The consumer queue: group events (served as callbacks inside the
     * poll), errors, and the messages of a partition without a queue of its
     * own.  Polling it is also what keeps us in the group. */
    bool more = true;
    for (int i = 0; i < CONSUME_BURST && !c->failed; i++) {
        rd_kafka_message_t *rm = rd_kafka_consumer_poll(c->rk, 0);
        if (!rm) {
            more = false;
            break;
        }
        handle_message(c, rm, NULL);
    }
    /* Every partition in turn, a burst each, so that one with a deep
     * backlog does not starve the others. */
    for (struct sk_part *p = c->parts; p; p = p->next)
        if (p->queue && drain_part(c, p, PART_BURST))
            more = true;
    /* More may be waiting: come back after the loop's other sources ran
     * (the pipe would not wake us again while a queue stays non-empty). */
    sd_event_source_set_enabled(c->defer, more && !c->failed ? SD_EVENT_ON : SD_EVENT_OFF);
    c->ops.consumed(c->ud);
    if (c->closing && rd_kafka_consumer_closed(c->rk)) {
        c->closing = false;
        c->ops.closed(c->ud);
    }
}

static int on_defer(sd_event_source *s, void *ud)
{
    (void)s;
    sk_consumer_poll(ud);
    return 0;
}

static void on_wake(void *ud) { sk_consumer_poll(ud); }

/* ---- assignment ------------------------------------------------------ */

/* Each assigned partition gets a queue of its own instead of feeding the
 * consumer queue, set up before the assignment starts its fetcher (which
 * leaves a forward made by the application alone): librdkafka bounds its
 * prefetch per queue, so with a queue each only the partition that is held
 * stops fetching.  All queues wake the loop through the consumer's pipe. */
static void own_queue(struct sk_consumer *c, struct sk_part *p)
{
    rd_kafka_queue_t *q = rd_kafka_queue_get_partition(c->rk, p->topic, p->partition);
    if (!q) {
        /* its messages then come through the consumer queue, where they
         * cannot wait for the check */
        p->check = SK_PART_CHECKED;
        log_warning("no queue of its own for %s [%d]; reading it from the consumer queue, without "
                    "checking its offsets against the end of its log",
                    p->topic, (int)p->partition);
        return;
    }
    rd_kafka_queue_forward(q, NULL);
    rd_kafka_queue_io_event_enable(q, c->pipe[1], "1", 1);
    p->queue = q;
}

static void drop_queue(struct sk_part *p)
{
    if (p->first) { /* never tracked: consumed again by its next owner */
        rd_kafka_message_destroy(p->first);
        p->first = NULL;
    }
    if (!p->queue)
        return;
    rd_kafka_queue_io_event_enable(p->queue, -1, NULL, 0);
    rd_kafka_queue_destroy(p->queue);
    p->queue = NULL;
}

/* The partition is no longer ours: it goes with its last message. */
static void forget_part(struct sk_consumer *c, struct sk_part *p)
{
    if (p->active)
        c->n_active--;
    drop_queue(p);
    p->revoked = true;
    p->refs++;
    sk_part_unref(p); /* frees it now if nothing refers to it */
}

static void assign_parts(struct sk_consumer *c, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                   bool coop)
{
    for (int i = 0; i < parts->cnt; i++) {
        const char *t = parts->elems[i].topic;
        enum sk_event_kind kind = !strcmp(t, c->cfg->topic_scores) ? SK_EV_SCORE : SK_EV_USER;
        struct sk_part *p = sk_part_new(t, parts->elems[i].partition, kind, c->cfg->game_marks);
        if (!p) {
            fatal(c, -ENOMEM, "out of memory on partition assignment");
            break;
        }
        p->next = c->parts;
        c->parts = p;
        own_queue(c, p);
        log_info("assigned %s [%d]", t, (int)parts->elems[i].partition);
        share_marks(c); /* before its marks are read (below) */
        c->ops.assigned(c->ud, p);
    }
    rd_kafka_error_t *e = NULL;
    if (coop)
        e = rd_kafka_incremental_assign(rk, parts);
    else
        rd_kafka_assign(rk, parts);
    if (e) {
        log_error("incremental assign failed: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    if (c->paused)
        rd_kafka_pause_partitions(rk, parts);
    c->ops.answered(c->ud);
}

static void revoke_parts(struct sk_consumer *c, rd_kafka_t *rk, rd_kafka_resp_err_t err,
                   rd_kafka_topic_partition_list_t *parts, bool coop)
{
    bool lost = rd_kafka_assignment_lost(rk);
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && !lost)
        sk_consumer_commit(c);
    for (int i = 0; i < parts->cnt; i++) {
        struct sk_part **pp = &c->parts;
        while (*pp && ((*pp)->partition != parts->elems[i].partition ||
                       strcmp((*pp)->topic, parts->elems[i].topic)))
            pp = &(*pp)->next;
        struct sk_part *p = *pp;
        if (!p)
            continue;
        *pp = p->next;
        /* Queued events of the partition go back to Kafka: the next owner
         * consumes them from the committed offset. */
        c->ops.revoked(c->ud, p);
        log_info("%s %s [%d] (%zu events still in flight)", lost ? "lost" : "revoked", p->topic,
                 (int)p->partition, sk_part_live(p));
        forget_part(c, p);
    }
    share_marks(c);
    if (coop) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e) {
            log_error("incremental unassign failed: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    bool coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        assign_parts(opaque, rk, parts, coop);
    else
        revoke_parts(opaque, rk, err, parts, coop);
}

/* ---- drain and close ------------------------------------------------- */

void sk_consumer_pause_all(struct sk_consumer *c)
{
    c->paused = true;
    if (!c->parts)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (struct sk_part *p = c->parts; p; p = p->next)
        rd_kafka_topic_partition_list_add(l, p->topic, p->partition);
    rd_kafka_resp_err_t e = rd_kafka_pause_partitions(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        log_warning("cannot pause partitions: %s; draining anyway", rd_kafka_err2str(e));
    for (struct sk_part *p = c->parts; p; p = p->next)
        p->held = true;
}

void sk_consumer_close(struct sk_consumer *c)
{
    sk_consumer_commit(c);
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(c->rk, c->cq);
    if (e) {
        log_warning("consumer close: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    c->closing = true;
    sk_consumer_poll(c);
}

/* ---- statistics ------------------------------------------------------ */

/* librdkafka's statistics: keep each assigned partition's consumer lag.
 * Served from the consumer queue, on the loop's thread. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    struct sk_consumer *c = opaque;
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(root, "topics");
    for (struct sk_part *p = c->parts; p; p = p->next) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(topics, p->topic);
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(t, "partitions");
        char key[16];
        snprintf(key, sizeof key, "%d", (int)p->partition);
        const cJSON *lag = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(ps, key), "consumer_lag");
        p->lag = cJSON_IsNumber(lag) ? (int64_t)lag->valuedouble : -1;
    }
    cJSON_Delete(root);
    return 0; /* librdkafka frees json */
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    char why[768];
    int r = sk_kafka_error(rk, err, reason, why, sizeof why);
    if (r < 0)
        fatal(opaque, r, why);
}

size_t sk_consumer_inflight(const struct sk_consumer *c) { return c->inflight; }

const struct sk_part *sk_consumer_parts(const struct sk_consumer *c) { return c->parts; }

unsigned sk_consumer_held(const struct sk_consumer *c)
{
    unsigned n = 0;
    for (const struct sk_part *p = c->parts; p; p = p->next)
        n += p->held;
    return n;
}

/* ---- life ------------------------------------------------------------ */

static int subscribe(struct sk_consumer *c)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(topics, c->cfg->topic_users, RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, c->cfg->topic_scores, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        log_error("cannot subscribe to %s, %s: %s", c->cfg->topic_users, c->cfg->topic_scores,
                  rd_kafka_err2str(e));
        return -EINVAL;
    }
    return 0;
}

static rd_kafka_t *new_consumer(struct sk_consumer *c)
{
    rd_kafka_conf_t *cc = sk_kafka_conf_client(c->cfg, true, c, on_error);
    if (!cc)
        return NULL;
    rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(cc, on_offset_commit);
    rd_kafka_conf_set_stats_cb(cc, on_stats);
    return sk_kafka_new(cc, true);
}

/* The producer's message.max.bytes: the most of a payload its dead-letter
 * copy can carry (output.c cuts it to fit beside its headers). */
static size_t dead_letter_max(const struct sk_config *cfg)
{
    char err[512], v[32];
    size_t vlen = sizeof v, max = 1000000; /* librdkafka's default */
    rd_kafka_conf_t *pc = sk_kafka_conf(cfg, false, err, sizeof err);
    if (pc && rd_kafka_conf_get(pc, "message.max.bytes", v, &vlen) == RD_KAFKA_CONF_OK)
        max = strtoul(v, NULL, 10);
    if (pc)
        rd_kafka_conf_destroy(pc); /* else the producer refuses the same settings, and says why */
    return max;
}

int sk_consumer_new(sd_event *loop, const struct sk_config *cfg, struct sk_stats *st,
                    const struct sk_consumer_ops *ops, void *ud, struct sk_consumer **out)
{
    struct sk_consumer *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = (struct sk_consumer){.loop = loop, .cfg = cfg, .st = st, .ops = *ops, .ud = ud,
                              .pipe = {-1, -1}};
    c->wake = (struct sk_kafka_wake){.fn = on_wake, .ud = c};
    c->dead_letter_max = dead_letter_max(cfg);
    int r = -EINVAL;
    c->rk = new_consumer(c);
    if (!c->rk)
        goto fail;
    c->cq = rd_kafka_queue_get_consumer(c->rk);
    if ((r = sk_kafka_watch(loop, c->cq, "consumer", c->pipe, &c->io, &c->wake)) < 0)
        goto fail;
    if ((r = sd_event_add_defer(loop, &c->defer, on_defer, c)) < 0) {
        log_error("cannot add the consumer's deferred reads: %s", strerror(-r));
        goto fail;
    }
    sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
    if ((r = subscribe(c)) < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    sk_consumer_free(c);
    return r;
}

void sk_consumer_stop(struct sk_consumer *c)
{
    if (!c || !c->rk)
        return;
    c->paused = true; /* messages released from here on must not resume partitions */
    if (!rd_kafka_consumer_closed(c->rk))
        rd_kafka_consumer_close(c->rk); /* the loop is over: nothing else to stall */
    c->io = sd_event_source_disable_unref(c->io);
    c->defer = sd_event_source_disable_unref(c->defer);
    for (struct sk_part *p = c->parts; p; p = p->next)
        drop_queue(p);
    if (c->cq)
        rd_kafka_queue_destroy(c->cq);
    c->cq = NULL;
    rd_kafka_destroy(c->rk);
    c->rk = NULL;
}

void sk_consumer_free(struct sk_consumer *c)
{
    if (!c)
        return;
    sk_consumer_stop(c);
    c->io = sd_event_source_disable_unref(c->io);
    c->defer = sd_event_source_disable_unref(c->defer);
    while (c->parts) {
        struct sk_part *p = c->parts;
        c->parts = p->next;
        forget_part(c, p);
    }
    for (int i = 0; i < 2; i++)
        if (c->pipe[i] >= 0)
            close(c->pipe[i]);
    free(c);
}
