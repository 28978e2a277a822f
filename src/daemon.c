/* daemon — the event loop and the data path, see include/daemon.h.
 *
 * Data path of one event:
 *   consume -> track its offset in its partition -> parse/validate
 *     -> invalid: result "rejected" right away
 *     -> valid:   queued in its game's group (sched) -> batch -> transaction
 *                 on a pooled connection (apply) -> result "applied"
 *   -> result produced (idempotent producer) -> delivery report
 *   -> offset marked done -> committed once every earlier offset is done. */
#include "daemon.h"

#include <cJSON.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "apply.h"
#include "buf.h"
#include "db.h"
#include "kafka.h"
#include "known.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "part.h"
#include "preload.h"
#include "sched.h"

enum phase { PH_STARTING, PH_RUNNING, PH_DRAINING, PH_CLOSING, PH_DONE };

/* Batch of consumed messages handled per wake-up before yielding to the
 * other sources of the loop (fairness, not a limit). */
#define CONSUME_BURST 2000
#define PART_BURST 500 /* of one partition's messages per turn */

/* Counters, by event kind where it matters (index: enum sk_event_kind). */
struct stats {
    unsigned long long results, dead_letters, result_errors, batches, transactions, retries;
    unsigned long long one_trip, one_trip_redone; /* one-round-trip path: committed, run again */
    unsigned long long slow_transactions; /* committed after db.slow_transaction_ms or more */
    unsigned long long k_consumed[3], k_applied[3], k_rejected[3], k_duplicates[3];
    struct sk_hist batch_size;  /* events per committed batch */
    struct sk_hist txn_seconds; /* connection acquired -> COMMIT done, per committed transaction */
    /* per event: consumed -> its committed attempt took a connection (the
     * batch's linger and the wait for a connection or for the game) */
    struct sk_hist wait_seconds;
    struct sk_hist event_seconds; /* per event: consumed -> result handed to the producer */
    struct sk_hist age_seconds;   /* per event: Kafka timestamp -> result handed to the producer */
};

static const double batch_size_bounds[] = {1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000};
static const double txn_seconds_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,   0.25,   0.5,   1,    2.5,   5, 10};
/* Finer around the tens of milliseconds an event should take end to end. */
static const double event_seconds_bounds[] = {0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15,
                                              0.25,  0.5,  1,    2.5,  5,    10,   30};

struct exec;

struct daemon {
    sd_event *loop;
    struct sk_config *cfg;
    const struct sk_settings_src *src; /* read again on SIGHUP */
    struct exec *running_head, *running_tail; /* attempts on a connection, oldest first */
    bool wedged;
    enum phase phase;
    int exit_code;

    rd_kafka_t *consumer, *producer;
    rd_kafka_topic_t *rkt_results, *rkt_dead_letter; /* producer handles, made at start */
    rd_kafka_queue_t *cq, *pq;
    int cpipe[2], ppipe[2];
    sd_event_source *cio, *pio, *cdefer;
    sd_event_source *linger_timer, *commit_timer, *poll_timer, *status_timer, *watchdog_timer,
        *deadline_timer;
    uint64_t watchdog_usec;

    struct sk_db *db;
    struct sk_sched *sched;
    struct sk_part *parts; /* assigned partitions */
    size_t n_active;       /* of them, those that delivered messages (share the window) */
    size_t inflight;       /* messages alive: consumed, result not yet delivered */
    bool paused;
    bool kafka_answered; /* the group assigned us, or a broker answered about our topics */
    bool ready_sent;
    bool closing_consumer;
    struct sk_msg *resend; /* results waiting to be (re)produced */
    struct sk_metrics *metrics;
    struct sk_known *known; /* usernames known to exist: not sent to INSERT IGNORE again */
    unsigned long marks_loads; /* reads of partitions' marks started */
    struct sk_preload preload; /* known users read at start */
    struct stats st;
};

/* Retry state of a batch while it waits out a backoff. */
/* One database transaction: the batches of one or more games (or the users
 * batch), kept here while it runs and while it waits out a retry. */
#define TXN_MAX_BATCHES 256
#define ER_NO_REFERENCED_ROW_2_CODE 1452u /* foreign key: the user row is gone */
/* How long the games of a shared transaction that met a lock run apart. */
#define SOLO_SECONDS 30u
struct exec {
    struct daemon *d;
    struct sk_batch *bs[TXN_MAX_BATCHES];
    unsigned nb;
    unsigned nevents;
    struct sk_apply *a;
    struct sk_db_conn *c;
    struct sk_buf sql;
    sd_event_source *retry;
    uint64_t started;   /* when the current attempt got its connection */
    struct sk_db_error err; /* kept while a ROLLBACK runs */
    bool running;       /* in the daemon's running list */
    struct exec *rprev, *rnext;
};

static struct daemon *g_daemon; /* for the msg drop callback of sched */

static void kick(struct daemon *d);
static void check_drained(struct daemon *d);
static void rearm_linger(struct daemon *d);
static void on_db_closed(void *ud);
static void maybe_ready(struct daemon *d);

/* Both topics together. */
static unsigned long long both(const unsigned long long *per_kind)
{
    return per_kind[SK_EV_USER] + per_kind[SK_EV_SCORE];
}

static uint64_t now_usec(struct daemon *d)
{
    uint64_t t = 0;
    sd_event_now(d->loop, CLOCK_MONOTONIC, &t);
    return t;
}

/* Seconds from one monotonic time to a later one (0 if not later). */
static double seconds_between(uint64_t from, uint64_t to)
{
    return to > from ? (double)(to - from) / 1e6 : 0.0;
}

static void set_sched_limits(struct daemon *d)
{
    struct sk_sched_limits l = {
        .max_events = d->cfg->batch_max_events,
        .max_bytes = d->cfg->batch_max_bytes,
        .linger_usec = d->phase >= PH_DRAINING ? 0 : (uint64_t)d->cfg->batch_linger_ms * 1000u,
    };
    sk_sched_set_limits(d->sched, &l);
}

/* ---- partitions ------------------------------------------------------ */

static struct sk_part *part_find(struct daemon *d, const char *topic, int32_t partition)
{
    for (struct sk_part *p = d->parts; p; p = p->next)
        if (p->partition == partition && !strcmp(p->topic, topic))
            return p;
    return NULL;
}

static rd_kafka_topic_partition_list_t *assignment_list(struct daemon *d)
{
    int n = 0;
    for (struct sk_part *p = d->parts; p; p = p->next)
        n++;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n ? n : 1);
    for (struct sk_part *p = d->parts; p; p = p->next)
        rd_kafka_topic_partition_list_add(l, p->topic, p->partition);
    return l;
}

/* Drain: stop fetching on every assigned partition (new assignments are
 * paused as they come, see on_rebalance). */
static void pause_all(struct daemon *d)
{
    d->paused = true;
    if (!d->parts)
        return;
    rd_kafka_topic_partition_list_t *l = assignment_list(d);
    rd_kafka_resp_err_t e = rd_kafka_pause_partitions(d->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        log_warning("cannot pause partitions: %s; draining anyway", rd_kafka_err2str(e));
    for (struct sk_part *p = d->parts; p; p = p->next)
        p->paused = true;
}

static void commit_offsets(struct daemon *d, const struct sk_part *only)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    for (struct sk_part *p = d->parts; p; p = p->next) {
        if (only && p != only)
            continue;
        if (p->next_commit < 0 || p->next_commit <= p->committed)
            continue;
        if (!l)
            l = rd_kafka_topic_partition_list_new(4);
        rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = p->next_commit;
        p->committed = p->next_commit;
    }
    if (!l)
        return;
    rd_kafka_resp_err_t e = rd_kafka_commit(d->consumer, l, 1 /* async */);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_warning("offset commit failed: %s; retrying at the next interval", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
}

static void on_offset_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    struct daemon *d = opaque;
    if (!err || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    log_warning("offset commit failed: %s; retrying at the next interval", rd_kafka_err2str(err));
    /* Forget what we believed committed so the next interval sends it again. */
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        struct sk_part *p = part_find(d, offsets->elems[i].topic, offsets->elems[i].partition);
        if (p)
            p->committed = -1;
    }
}

/* ---- results --------------------------------------------------------- */

/* Backpressure is per partition: each may hold its share of
 * pipeline.max_inflight_events.  A partition whose games are slow (a locked
 * game, a database falling behind) is held alone, the others keep flowing,
 * and memory stays bounded whatever the backlog in Kafka.
 *
 * Holding a partition means no longer reading its own queue (see
 * on_rebalance), not pausing it in Kafka: librdkafka keeps the prefetch it
 * has and stops fetching once the partition's queue holds
 * queued.max.messages.kbytes.  Pausing would drop that prefetch, to be
 * fetched again after the resume; and librdkafka 2.0 looks at a resumed
 * partition only at its fetcher's next wake-up, up to a second later when
 * nothing else is being fetched (measured: the pipeline stood empty for
 * 0.5-1 s at a time, a quarter of a 1M-event drain).  The consumer queue
 * itself is still polled (the poll timer), so the group keeps us. */
static size_t part_limit(const struct daemon *d)
{
    /* Shared among the partitions that carry traffic: an idle partition
     * (say, a quiet users topic) does not hold back a share it never uses. */
    size_t n = d->n_active;
    size_t lim = d->cfg->max_inflight_events / (n ? n : 1);
    return lim ? lim : 1;
}

/* A partition is full at its share of live events, or when one slow event
 * (a game locked from outside) has held its committable prefix back for
 * SPAN_SHARES shares: the offset ring and the replay after a crash stay
 * bounded too.  Counting live events rather than the span keeps the
 * pipeline fed while a few old events finish: measured, the span alone let
 * in-flight fall to zero between pauses and left the database idle.  It
 * resumes at half of both: the work in hand overlaps with reading more. */
#define SPAN_SHARES 4
static bool part_full(const struct daemon *d, const struct sk_part *p)
{
    size_t lim = part_limit(d);
    /* The total is a hard cap too: shares are computed over the partitions
     * seen so far, and at start-up the first ones would each take it all. */
    return sk_part_live(p) >= lim || sk_part_span(p) >= SPAN_SHARES * lim ||
           d->inflight >= d->cfg->max_inflight_events;
}

static bool part_low(const struct daemon *d, const struct sk_part *p)
{
    size_t lim = part_limit(d);
    return sk_part_live(p) <= lim / 2 && sk_part_span(p) <= SPAN_SHARES * lim / 2;
}

/* Holds (stops reading) or releases a partition; logged as paused/resumed,
 * the words operators and the metrics know. */
static void hold_part(struct daemon *d, struct sk_part *p, bool hold)
{
    p->paused = hold;
    struct sk_log_ctx x = SK_LOG_CTX_NONE;
    x.topic = p->topic;
    x.partition = p->partition;
    sk_logc(SK_LOG_INFO, &x,
            "%s %s [%d]: %zu events in flight over %zu offsets (limit %zu per partition)",
            hold ? "paused" : "resumed", p->topic, (int)p->partition, sk_part_live(p),
            sk_part_span(p), part_limit(d));
    /* What waits in its queue raised no wake-up: read it on the next turn. */
    if (!hold)
        sd_event_source_set_enabled(d->cdefer, SD_EVENT_ON);
}

static void msg_gone(struct daemon *d, struct sk_msg *m)
{
    struct sk_part *p = m->part;
    bool was_paused = p && p->paused && !p->revoked; /* revoked: may be freed below */
    sk_msg_free(m);
    d->inflight--;
    if (was_paused && !d->paused && part_low(d, p))
        hold_part(d, p, false);
}

static void drop_msg(void *ud, struct sk_msg *m) { msg_gone(ud, m); }

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

static int produce_out(struct daemon *d, struct sk_msg *m, int which)
{
    bool dlq = which == SK_OUT_DEAD_LETTER;
    rd_kafka_headers_t *h = dlq ? dead_letter_headers(m) : echo_headers(m);
    const void *val = dlq ? m->raw : m->result;
    size_t len = dlq ? (m->raw_null ? 0 : m->bytes) : m->result_len;
    /* No copy: the payload is the message's own result (or raw input),
     * which lives until its delivery report. */
    rd_kafka_resp_err_t e = rd_kafka_producev(
        d->producer, RD_KAFKA_V_RKT(dlq ? d->rkt_dead_letter : d->rkt_results),
        RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE((void *)(uintptr_t)val, len),
        RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(m), RD_KAFKA_V_END);
    if (e) {
        if (h)
            rd_kafka_headers_destroy(h); /* not taken over on failure */
        return -1;
    }
    return 0;
}

/* Produce every output of m not yet handed to the producer; whatever cannot
 * be queued now (producer queue full) waits in d->resend and goes out after
 * the next delivery reports. */
static void produce_unsent(struct daemon *d, struct sk_msg *m)
{
    for (int which = SK_OUT_RESULT; which <= SK_OUT_DEAD_LETTER; which <<= 1)
        if ((m->unsent & which) && produce_out(d, m, which) == 0)
            m->unsent &= (uint8_t)~which;
    if (m->unsent && !m->in_resend) {
        m->in_resend = true;
        m->next = d->resend;
        d->resend = m;
    }
}

/* How long the event took: inside the daemon, and since its Kafka
 * timestamp (CreateTime: when the game server produced it, by its clock;
 * LogAppendTime: when the broker stored it).  A timestamp ahead of our
 * clock counts as 0. */
static void observe_event(struct daemon *d, const struct sk_msg *m)
{
    sk_hist_observe(&d->st.event_seconds, seconds_between(m->consumed_usec, now_usec(d)));
    if (m->created_ms < 0)
        return;
    uint64_t real = 0; /* the loop's time of this wake-up, as for CLOCK_MONOTONIC */
    sd_event_now(d->loop, CLOCK_REALTIME, &real);
    int64_t age_ms = (int64_t)(real / 1000) - m->created_ms;
    sk_hist_observe(&d->st.age_seconds, age_ms > 0 ? (double)age_ms / 1e3 : 0.0);
}

/* A message is finished: its result (and, if rejected, its dead-letter
 * copy) go to the producer.  Its offset is done once both are delivered. */
static void emit_result(struct daemon *d, struct sk_msg *m)
{
    unsigned k = m->part->kind == SK_EV_SCORE ? SK_EV_SCORE : SK_EV_USER;
    if (m->status == SK_ST_REJECTED)
        d->st.k_rejected[k]++;
    else if (m->status == SK_ST_DUPLICATE)
        d->st.k_duplicates[k]++;
    else
        d->st.k_applied[k]++;
    observe_event(d, m);
    if (sk_msg_build_result(m) < 0) {
        log_error("out of memory building a result; the event will be consumed again after restart");
        exit(EXIT_FAILURE); /* nothing sane left: let systemd restart us */
    }
    m->todo = SK_OUT_RESULT;
    if (m->status == SK_ST_REJECTED)
        m->todo |= SK_OUT_DEAD_LETTER;
    m->unsent = m->todo;
    produce_unsent(d, m);
}

static void flush_resend(struct daemon *d)
{
    struct sk_msg *list = d->resend;
    d->resend = NULL;
    while (list) {
        struct sk_msg *m = list;
        list = m->next;
        m->in_resend = false;
        produce_unsent(d, m);
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rm, void *opaque)
{
    (void)rk;
    struct daemon *d = opaque;
    struct sk_msg *m = rm->_private;
    int which = strcmp(rd_kafka_topic_name(rm->rkt), d->cfg->topic_dead_letter) ? SK_OUT_RESULT
                                                                               : SK_OUT_DEAD_LETTER;
    if (rm->err) {
        d->st.result_errors++;
        struct sk_log_ctx x = SK_LOG_CTX_NONE;
        x.topic = m->part->topic;
        x.partition = m->part->partition;
        x.offset = m->offset;
        sk_logc(SK_LOG_WARNING, &x, "delivery to %s failed: %s; sending it again",
                rd_kafka_topic_name(rm->rkt), rd_kafka_err2str(rm->err));
        m->unsent |= (uint8_t)which;
        if (!m->in_resend) {
            m->in_resend = true;
            m->next = d->resend;
            d->resend = m;
        }
        return;
    }
    if (which == SK_OUT_RESULT)
        d->st.results++;
    else
        d->st.dead_letters++;
    m->todo &= (uint8_t)~which;
    if (m->todo)
        return;
    sk_part_done(m->part, m->offset);
    msg_gone(d, m);
}

static void drain_producer(struct daemon *d)
{
    while (rd_kafka_poll(d->producer, 0) > 0)
        ;
    flush_resend(d);
    check_drained(d);
}

static int on_producer_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    (void)s;
    (void)revents;
    sk_kafka_pipe_drain(fd);
    drain_producer(ud);
    return 0;
}

/* ---- transactions ---------------------------------------------------- */

/* The attempts holding a connection, oldest first: the watchdog looks at
 * the head to tell a slow pipeline from a wedged one. */
static void running_add(struct daemon *d, struct exec *ex)
{
    ex->started = now_usec(d);
    ex->running = true;
    ex->rnext = NULL;
    ex->rprev = d->running_tail;
    if (d->running_tail)
        d->running_tail->rnext = ex;
    else
        d->running_head = ex;
    d->running_tail = ex;
}

static void running_del(struct daemon *d, struct exec *ex)
{
    if (!ex->running)
        return;
    if (ex->rprev)
        ex->rprev->rnext = ex->rnext;
    else
        d->running_head = ex->rnext;
    if (ex->rnext)
        ex->rnext->rprev = ex->rprev;
    else
        d->running_tail = ex->rprev;
    ex->rprev = ex->rnext = NULL;
    ex->running = false;
}

static void exec_free(struct exec *ex)
{
    if (!ex)
        return;
    running_del(ex->d, ex);
    sd_event_source_disable_unref(ex->retry);
    sk_apply_free(ex->a);
    sk_buf_free(&ex->sql);
    free(ex);
}

static struct sk_log_ctx batch_ctx(const struct sk_batch *b, const struct exec *ex, unsigned err)
{
    struct sk_log_ctx x = SK_LOG_CTX_NONE;
    x.game_id = b->key;
    x.db_errno = err;
    if (ex && ex->c)
        x.db_conn = sk_db_conn_id(ex->c);
    if (b->head) {
        x.topic = b->head->part->topic;
        x.partition = b->head->part->partition;
        x.offset = b->head->offset;
    }
    return x;
}

static const char *batch_name(const struct sk_batch *b, char *buf, size_t n)
{
    if (b->key)
        snprintf(buf, n, "game %lld", (long long)b->key);
    else
        snprintf(buf, n, "users");
    return buf;
}

/* "game 42" or "17 games" */
static const char *txn_name(const struct exec *ex, char *buf, size_t n)
{
    if (ex->nb == 1)
        return batch_name(ex->bs[0], buf, n);
    snprintf(buf, n, "%u games", ex->nb);
    return buf;
}

/* Give the transaction's batches back to the ready FIFO, first one first,
 * and free the transaction. */
static void txn_requeue(struct daemon *d, struct exec *ex)
{
    for (unsigned i = ex->nb; i-- > 0;)
        sk_sched_push_front(d->sched, ex->bs[i]);
    ex->nb = 0;
    exec_free(ex);
}

/* The transaction's events are done: committed (then its batch sizes and
 * its events' waits are counted, in the one walk over them), or the one
 * event the server refused.  Their results go out and the games take new
 * batches. */
static void txn_finish(struct daemon *d, struct exec *ex, bool committed)
{
    struct sk_msg *done = NULL, **tail = &done;
    uint64_t now = now_usec(d);
    for (unsigned i = 0; i < ex->nb; i++) {
        struct sk_batch *b = ex->bs[i];
        if (committed)
            sk_hist_observe(&d->st.batch_size, b->n);
        *tail = b->head;
        for (; *tail; tail = &(*tail)->next)
            if (committed)
                sk_hist_observe(&d->st.wait_seconds, seconds_between((*tail)->consumed_usec, ex->started));
        b->head = NULL;
        d->st.batches++;
        sk_sched_done(d->sched, b, now);
    }
    exec_free(ex);
    while (done) {
        struct sk_msg *next = done->next;
        done->next = NULL;
        emit_result(d, done);
        done = next;
    }
    rearm_linger(d);
    kick(d);
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    struct exec *ex = ud;
    struct daemon *d = ex->d;
    txn_requeue(d, ex);
    kick(d);
    return 0;
}

static uint64_t backoff_ms(struct daemon *d, unsigned attempt)
{
    uint64_t ms = d->cfg->db_retry_min_ms;
    for (unsigned i = 1; i < attempt && ms < d->cfg->db_retry_max_ms; i++)
        ms *= 2;
    if (ms > d->cfg->db_retry_max_ms)
        ms = d->cfg->db_retry_max_ms;
    /* jitter in [ms/2, ms] so that retries of colliding transactions spread out */
    return ms / 2 + (uint64_t)random() % (ms / 2 + 1);
}

static void forget_mark(void *ud, struct sk_part *part, int64_t game, int64_t next)
{
    (void)ud;
    (void)next;
    if (part->marks)
        sk_marks_forget(part->marks, game);
}

static void txn_failed(struct daemon *d, struct exec *ex, const struct sk_db_error *err)
{
    struct sk_batch *b = ex->bs[0];
    char name[48];
    txn_name(ex, name, sizeof name);
    struct sk_log_ctx x = batch_ctx(b, ex, err->code);
    running_del(d, ex);
    sk_db_release(ex->c);
    ex->c = NULL;
    /* The marks of the transaction's games are in doubt after any failure
     * (a commit whose answer was lost may or may not have happened). */
    if (ex->a)
        sk_apply_marks(ex->a, forget_mark, NULL);
    const char *why = ex->a && sk_apply_one_trip(ex->a) ? sk_policy_one_trip_guard(err->code, (int)err->stmt == sk_apply_mark_check_stmt(ex->a)) : NULL;
    if (why) {
        /* Without marks the attempt runs again at once on the read path. */
        sk_logc(SK_LOG_INFO, &x, "%s: %s; reading before writing (%s)", name, why, err->message);
        d->st.one_trip_redone++;
        txn_requeue(d, ex);
        kick(d);
        return;
    }
    unsigned attempt = 0;
    for (unsigned i = 0; i < ex->nb; i++)
        if (++ex->bs[i]->attempt > attempt)
            attempt = ex->bs[i]->attempt;
    d->st.retries++;

    if (err->code == ER_NO_REFERENCED_ROW_2_CODE && sk_known_count(d->known) > 0) {
        /* A remembered user id no longer exists (deleted from outside):
         * forget them all and run again, reading ids from the database. */
        sk_logc(SK_LOG_WARNING, &x, "%s: a known user is gone (%s); forgetting known users and "
                "retrying", name, err->message);
        sk_known_clear(d->known);
        txn_requeue(d, ex);
        kick(d);
        return;
    }
    switch (err->fault) {
    case SK_DB_DATA:
        if (ex->nb > 1) {
            /* Poison isolation, step 1: which game's batch is it?  Each
             * runs alone from now on. */
            sk_logc(SK_LOG_INFO, &x, "%s: transaction refused (%s); running its games one by one",
                    name, err->message);
            for (unsigned i = 0; i < ex->nb; i++)
                ex->bs[i]->solo = true;
            txn_requeue(d, ex);
            kick(d);
            return;
        }
        if (b->n > 1) {
            /* Step 2: halve the batch until the event the server refuses is
             * alone; the halves before it apply, in order. */
            sk_logc(SK_LOG_INFO, &x, "%s: batch of %u events refused (%s); splitting it", name, b->n,
                    err->message);
            sk_sched_split(d->sched, b);
            b->attempt = 0;
            txn_requeue(d, ex);
            kick(d);
            return;
        }
        sk_logc(SK_LOG_NOTICE, &x, "%s: event refused by the database: %s", name, err->message);
        {
            char msg[300];
            snprintf(msg, sizeof msg, "the database refused the event: %s", err->message);
            sk_msg_reject(b->head, SK_E_DB_REJECTED, msg);
        }
        txn_finish(d, ex, false);
        return;
    case SK_DB_CONN:
        sk_logc(SK_LOG_WARNING, &x, "%s: connection lost during a transaction of %u events (%s); "
                "retrying", name, ex->nevents, err->message);
        txn_requeue(d, ex);
        kick(d);
        return;
    case SK_DB_RETRY:
        if (ex->nb > 1) {
            /* A shared transaction met a lock (held from outside, or by
             * another instance): its games go on apart, at once, so that
             * only the contended one waits; and alone for a while. */
            sk_logc(SK_LOG_INFO, &x, "%s: %s; running them apart for %u s", name, err->message,
                    SOLO_SECONDS);
            uint64_t until = now_usec(d) + SOLO_SECONDS * 1000000ull;
            for (unsigned i = 0; i < ex->nb; i++) {
                ex->bs[i]->solo = true;
                ex->bs[i]->attempt = 0;
                sk_sched_set_solo(d->sched, ex->bs[i]->key, until);
            }
            txn_requeue(d, ex);
            kick(d);
            return;
        }
        /* fall through */
    case SK_DB_OTHER:
    case SK_DB_OK: {
        uint64_t ms = backoff_ms(d, attempt);
        sk_logc(err->fault == SK_DB_OTHER ? SK_LOG_ERR : SK_LOG_WARNING, &x,
                "%s: transaction of %u events failed: %s; retrying in %llu ms (attempt %u)", name,
                ex->nevents, err->message, (unsigned long long)ms, attempt + 1);
        sk_apply_free(ex->a);
        ex->a = NULL;
        int r = sd_event_add_time_relative(d->loop, &ex->retry, CLOCK_MONOTONIC, ms * 1000u, 1000,
                                           on_retry_timer, ex);
        if (r < 0) {
            log_error("cannot arm retry timer: %s", strerror(-r));
            txn_requeue(d, ex);
        }
        return;
    }
    }
}

static void on_txn_row(void *ud, unsigned stmt, char **row, unsigned long *lengths, unsigned nf)
{
    struct exec *ex = ud;
    sk_apply_row(ex->a, stmt, row, lengths, nf);
}

static void remember_user(void *ud, const char *name, size_t len, int64_t id)
{
    sk_known_add(ud, name, len, id);
}

static void remember_mark(void *ud, struct sk_part *part, int64_t game, int64_t next)
{
    (void)ud;
    if (part->marks)
        sk_marks_set(part->marks, game, next);
}

/* A committed transaction that took db.slow_transaction_ms or longer: it
 * waited for a lock another writer held, or the server was short of CPU, or
 * the disk was slow to sync the log every COMMIT waits for; every event
 * that arrived meanwhile for its games waited too.  Said once per
 * transaction; the log's own rate limit keeps a long spell short. */
static void slow_txn(struct daemon *d, const struct exec *ex, double took)
{
    char name[48];
    struct sk_log_ctx x = batch_ctx(ex->bs[0], ex, 0);
    if (ex->nb > 1) { /* several games: only the topic and the connection are theirs */
        x.game_id = 0;
        x.partition = -1;
        x.offset = -1;
    }
    d->st.slow_transactions++;
    sk_logc(SK_LOG_WARNING, &x,
            "slow transaction: %s, %u events, took %llu ms from taking db#%d to its COMMIT "
            "(db.slow_transaction_ms %u); the server was waiting for a lock, for CPU or for "
            "its disk",
            txn_name(ex, name, sizeof name), ex->nevents, (unsigned long long)(took * 1000),
            sk_db_conn_id(ex->c), d->cfg->db_slow_txn_ms);
}

static void on_second_done(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    (void)c;
    struct exec *ex = ud;
    struct daemon *d = ex->d;
    if (err) {
        txn_failed(d, ex, err);
        return;
    }
    sk_apply_outcome(ex->a);
    sk_apply_users(ex->a, remember_user, d->known);
    sk_apply_marks(ex->a, remember_mark, NULL);
    d->st.one_trip += sk_apply_one_trip(ex->a);
    double took = seconds_between(ex->started, now_usec(d));
    if (d->cfg->db_slow_txn_ms && took * 1000 >= d->cfg->db_slow_txn_ms)
        slow_txn(d, ex, took);
    sk_db_release(ex->c);
    ex->c = NULL;
    d->st.transactions++;
    sk_hist_observe(&d->st.txn_seconds, took);
    txn_finish(d, ex, true);
}

static void on_rolled_back(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    (void)c;
    struct exec *ex = ud;
    txn_failed(ex->d, ex, err ? err : &ex->err);
}

static void on_first_done(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    struct exec *ex = ud;
    if (err) {
        txn_failed(ex->d, ex, err);
        return;
    }
    struct sk_db_error e = {.fault = SK_DB_RETRY};
    int r = sk_apply_second(ex->a, &ex->sql, e.message, sizeof e.message);
    if (r < 0) {
        /* Answers that do not add up (a user deleted under our feet): end
         * the open transaction before it is retried, and stop trusting the
         * set of known users. */
        sk_known_clear(ex->d->known);
        ex->err = e;
        if (sk_db_query(c, "ROLLBACK", 8, NULL, on_rolled_back, ex) < 0) {
            e.fault = SK_DB_CONN;
            txn_failed(ex->d, ex, &e);
        }
        return;
    }
    if (r == 0) {
        on_second_done(ex, c, NULL);
        return;
    }
    if (sk_db_query(c, ex->sql.p, ex->sql.len, on_txn_row, on_second_done, ex) < 0) {
        e.fault = SK_DB_CONN;
        snprintf(e.message, sizeof e.message, "connection not ready for the second statement");
        txn_failed(ex->d, ex, &e);
    }
}

static void start_txn(struct daemon *d, struct exec *ex, struct sk_db_conn *c)
{
    ex->c = c;
    if (!(ex->a = sk_apply_new(ex->bs, ex->nb)) || sk_apply_first(ex->a, &ex->sql, d->known) < 0) {
        /* Try again later rather than lose the batches. */
        log_error("out of memory starting a transaction; retrying");
        sk_db_release(c);
        ex->c = NULL;
        txn_requeue(d, ex);
        return;
    }
    if (sk_log_enabled(SK_LOG_DEBUG)) {
        for (unsigned i = 0; i < ex->nb; i++) {
            char name[48];
            const struct sk_batch *b = ex->bs[i];
            struct sk_log_ctx x = batch_ctx(b, ex, 0);
            sk_logc(SK_LOG_DEBUG, &x, "%s: batch of %u events (%s), attempt %u, in a transaction "
                    "of %u games",
                    batch_name(b, name, sizeof name), b->n, sk_flush_name(b->reason),
                    b->attempt + 1, ex->nb);
        }
    }
    running_add(d, ex);
    if (sk_db_query(c, ex->sql.p, ex->sql.len, on_txn_row, on_first_done, ex) < 0) {
        struct sk_db_error e = {.fault = SK_DB_CONN};
        snprintf(e.message, sizeof e.message, "connection not ready");
        txn_failed(d, ex, &e);
    }
}

/* ---- marks at assignment ------------------------------------------- */

/* A newly assigned score partition reads the marks that game_offsets holds
 * for it, so that its games' first batches can already take one round trip
 * (without a mark a batch reads first).  Only a hint, like every mark: the
 * one-round-trip path's game_offsets upsert verifies them in SQL, and a
 * mark set meanwhile by a commit of ours is newer than what the read saw,
 * so it is kept.  A read that returned every row of the partition also
 * tells which games have none: those are new, and their first batch fails
 * if a row appeared.  The partition is looked up again for each row: it may
 * be revoked meanwhile (and assigned again, with a read of its own). */
#define MARKS_LOAD_MAX (PART_MARKS_MAX / 2)

struct marks_load {
    struct daemon *d;
    char *topic;
    int32_t partition;
    unsigned long id; /* the partition's marks_load when this read started */
    size_t n;
    struct sk_buf sql; /* Connector/C may still be sending it after the call returns */
};

static struct sk_part *load_part(const struct marks_load *l)
{
    struct sk_part *p = part_find(l->d, l->topic, l->partition);
    return p && p->marks && p->marks_load == l->id ? p : NULL;
}

static void marks_load_free(struct marks_load *l)
{
    free(l->topic);
    sk_buf_free(&l->sql);
    free(l);
}

static void on_marks_row(void *ud, unsigned stmt, char **row, unsigned long *lengths,
                         unsigned nfields)
{
    (void)stmt;
    (void)lengths;
    struct marks_load *l = ud;
    if (nfields != 2 || !row[0] || !row[1])
        return;
    struct sk_part *p = load_part(l);
    if (!p)
        return;
    int64_t game = strtoll(row[0], NULL, 10), next = strtoll(row[1], NULL, 10);
    if (next > 0 && sk_marks_get(p->marks, game) < 0)
        sk_marks_set(p->marks, game, next);
    l->n++;
}

static void on_marks_done(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    struct marks_load *l = ud;
    struct sk_log_ctx x = SK_LOG_CTX_NONE;
    x.topic = l->topic;
    x.partition = l->partition;
    if (err) {
        /* a lost connection is rebuilt by the pool: read again on the next
         * free one; anything else is logged and done without */
        struct sk_part *p = load_part(l);
        bool again = p && err->fault == SK_DB_CONN;
        if (again)
            p->marks_wanted = true;
        x.db_errno = err->code;
        sk_logc(SK_LOG_WARNING, &x, "cannot read the applied offsets of %s [%d]: %s; %s", l->topic,
                (int)l->partition, err->message,
                again ? "reading them again on another connection"
                      : "its games' first batches read first");
    } else {
        struct sk_part *p = load_part(l);
        if (p && l->n < MARKS_LOAD_MAX)
            sk_marks_complete(p->marks);
        sk_logc(SK_LOG_INFO, &x, "read the applied offsets of %s [%d]: %zu games", l->topic,
                (int)l->partition, l->n);
    }
    sk_db_release(c);
    struct daemon *d = l->d;
    marks_load_free(l);
    kick(d);
}

/* ---- known users at start (see include/preload.h) ----------------- */

static void on_preload_row(void *ud, unsigned stmt, char **row, unsigned long *lengths,
                           unsigned nfields)
{
    (void)stmt;
    struct daemon *d = ud;
    sk_preload_row(&d->preload, d->known, row, lengths, nfields);
}

static void on_preload_done(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    struct daemon *d = ud;
    struct sk_preload *p = &d->preload;
    sk_db_release(c);
    if (err) {
        /* a lost connection is rebuilt by the pool: this chunk is read
         * again on the next free one; anything else ends the preload */
        p->wanted = err->fault == SK_DB_CONN;
        struct sk_log_ctx x = SK_LOG_CTX_NONE;
        x.db_errno = err->code;
        sk_logc(SK_LOG_WARNING, &x, "cannot read known users (%zu read): %s; %s", p->loaded,
                err->message,
                p->wanted ? "reading on another connection"
                          : "the rest are learned from the transactions");
    } else if (!sk_preload_chunk_done(p)) {
        log_info("knew %zu users from the database in %.0f ms (known users: %zu)", p->loaded,
                 (double)(now_usec(d) - p->started) / 1000.0, sk_known_count(d->known));
    }
    kick(d);
}

/* Starts the next chunk of known users when one is wanted; false when no
 * connection was free for it. */
static bool load_users(struct daemon *d)
{
    struct sk_preload *p = &d->preload;
    if (!p->wanted)
        return true;
    struct sk_db_conn *c = sk_db_acquire(d->db);
    if (!c)
        return false;
    p->wanted = false;
    if (!p->started)
        p->started = now_usec(d);
    if (sk_preload_sql(p) < 0 ||
        sk_db_query(c, p->sql.p, p->sql.len, on_preload_row, on_preload_done, d) < 0) {
        log_warning("cannot read known users (%zu read): out of memory or connection not "
                    "ready; the rest are learned from the transactions",
                    p->loaded);
        sk_db_release(c);
    }
    return true;
}

/* Starts the loads wanted, one per idle connection; false when it ran out
 * of connections before it was done. */
static bool load_marks(struct daemon *d)
{
    for (struct sk_part *p = d->parts; p; p = p->next) {
        if (!p->marks_wanted)
            continue;
        struct sk_db_conn *c = sk_db_acquire(d->db);
        if (!c)
            return false;
        p->marks_wanted = false;
        struct marks_load *l = calloc(1, sizeof *l);
        if (l) {
            p->marks_load = ++d->marks_loads;
            *l = (struct marks_load){.d = d,
                                     .topic = strdup(p->topic),
                                     .partition = p->partition,
                                     .id = p->marks_load};
            sk_buf_init(&l->sql);
            sk_buf_puts(&l->sql, "SELECT game_id, next_offset FROM game_offsets WHERE topic = ");
            sk_buf_sql_str(&l->sql, p->topic, strlen(p->topic));
            sk_buf_printf(&l->sql, " AND `partition` = %d LIMIT %d", (int)p->partition,
                          MARKS_LOAD_MAX);
        }
        if (!l || !l->topic || sk_buf_failed(&l->sql) ||
            sk_db_query(c, l->sql.p, l->sql.len, on_marks_row, on_marks_done, l) < 0) {
            log_warning("cannot read the applied offsets of %s [%d] (out of memory); its games' "
                        "first batches read first",
                        p->topic, (int)p->partition);
            if (l)
                marks_load_free(l);
            sk_db_release(c);
        }
    }
    return true;
}

/* Give ready batches to free connections.  Ready score batches of several
 * games share one transaction, up to batch.txn_max_events: one commit for
 * all of them.  The users batch and batches hunting a poison event run
 * alone.  Partitions' marks wanted are read first (load_marks). */
static void kick(struct daemon *d)
{
    if (!load_marks(d) || !load_users(d))
        return;
    while (sk_sched_ready(d->sched) > 0) {
        struct sk_db_conn *c = sk_db_acquire(d->db);
        if (!c)
            return;
        struct exec *ex = calloc(1, sizeof *ex);
        if (!ex) {
            log_error("out of memory starting a transaction; retrying");
            sk_db_release(c);
            return;
        }
        ex->d = d;
        sk_buf_init(&ex->sql);
        struct sk_batch *b = sk_sched_pop_ready(d->sched);
        ex->bs[ex->nb++] = b;
        ex->nevents = b->n;
        while (b->key && !b->solo && ex->nb < TXN_MAX_BATCHES) {
            struct sk_batch *n = sk_sched_peek_ready(d->sched);
            if (!n || !n->key || n->solo || ex->nevents + n->n > d->cfg->txn_max_events)
                break;
            ex->bs[ex->nb++] = sk_sched_pop_ready(d->sched);
            ex->nevents += n->n;
        }
        start_txn(d, ex, c);
    }
}

static int on_linger(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    struct daemon *d = ud;
    sk_sched_expire(d->sched, now_usec(d));
    rearm_linger(d);
    kick(d);
    return 0;
}

static void rearm_linger(struct daemon *d)
{
    uint64_t when = sk_sched_next_deadline(d->sched);
    if (when == UINT64_MAX) {
        sd_event_source_set_enabled(d->linger_timer, SD_EVENT_OFF);
        return;
    }
    sd_event_source_set_time(d->linger_timer, when);
    sd_event_source_set_enabled(d->linger_timer, SD_EVENT_ONESHOT);
}

/* ---- consuming ------------------------------------------------------- */

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
#define ECHO_MAX 8
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

static void on_message(struct daemon *d, rd_kafka_message_t *rm)
{
    const char *topic = rd_kafka_topic_name(rm->rkt);
    struct sk_part *p = part_find(d, topic, rm->partition);
    if (!p) {
        log_debug("message from unassigned %s [%d] at %lld ignored", topic, (int)rm->partition,
                  (long long)rm->offset);
        return;
    }
    struct sk_hdr hdrs[ECHO_MAX];
    size_t n_hdrs = echoed_headers(d->cfg->echo_headers, rm, hdrs);
    struct sk_msg *m = sk_msg_new_copy(p, rm->offset, rm->payload, rm->len, rm->key,
                                       rm->key ? rm->key_len : 0, hdrs, n_hdrs);
    if (!m || sk_part_track(p, rm->offset) < 0) {
        free(m);
        log_error("out of memory consuming a message; exiting so that it is consumed again");
        exit(EXIT_FAILURE);
    }
    m->consumed_usec = now_usec(d);
    rd_kafka_timestamp_type_t tstype;
    m->created_ms = rd_kafka_message_timestamp(rm, &tstype);
    if (!p->active) {
        p->active = true;
        d->n_active++;
    }
    if (!p->paused && part_full(d, p))
        hold_part(d, p, true);
    d->inflight++;
    d->st.k_consumed[p->kind == SK_EV_SCORE ? SK_EV_SCORE : SK_EV_USER]++;
    struct sk_parse_error perr = {0};
    enum sk_reject r = sk_event_parse(p->kind, rm->payload, rm->len, rm->key, rm->key ? rm->key_len : 0,
                                      &d->cfg->limits, &m->ev, &perr);
    if (r != SK_OK) {
        sk_msg_reject(m, r, perr.message);
        if (perr.event_id[0])
            m->reject_event_id = strdup(perr.event_id);
        if (sk_log_enabled(SK_LOG_DEBUG)) {
            struct sk_log_ctx x = SK_LOG_CTX_NONE;
            x.topic = p->topic;
            x.partition = p->partition;
            x.offset = rm->offset;
            sk_logc(SK_LOG_DEBUG, &x, "rejected: %s: %s", sk_reject_code(r), perr.message);
        }
        emit_result(d, m);
        return;
    }
    m->parsed = true;
    int64_t key = p->kind == SK_EV_SCORE ? m->ev.game_id : 0;
    if (sk_sched_add(d->sched, key, m, now_usec(d)) < 0) {
        log_error("out of memory queueing an event; exiting so that it is consumed again");
        exit(EXIT_FAILURE);
    }
}

/* Each assigned partition gets a queue of its own instead of feeding the
 * consumer queue, set up before the assignment starts its fetcher (which
 * leaves a forward made by the application alone).  Why: librdkafka bounds
 * its prefetch per queue (queued.max.messages.kbytes), and when the one
 * shared queue reached the bound every partition stopped fetching at once,
 * until the fetcher's next wake-up up to a second later (librdkafka 2.0);
 * with a queue each, only the partition that is held stops, and held
 * partitions keep their prefetch (see hold_part).  All queues wake the
 * loop through the consumer's pipe. */
static void own_queue(struct daemon *d, struct sk_part *p)
{
    rd_kafka_queue_t *q = rd_kafka_queue_get_partition(d->consumer, p->topic, p->partition);
    if (!q) {
        /* its messages then come through the consumer queue, as before */
        log_warning("no queue of its own for %s [%d]; reading it from the consumer queue",
                    p->topic, (int)p->partition);
        return;
    }
    rd_kafka_queue_forward(q, NULL);
    rd_kafka_queue_io_event_enable(q, d->cpipe[1], "1", 1);
    p->queue = q;
}

static void drop_queue(struct sk_part *p)
{
    if (!p->queue)
        return;
    rd_kafka_queue_io_event_enable(p->queue, -1, NULL, 0);
    rd_kafka_queue_destroy(p->queue);
    p->queue = NULL;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct daemon *d = opaque;
    bool coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            const char *t = parts->elems[i].topic;
            enum sk_event_kind kind = !strcmp(t, d->cfg->topic_scores) ? SK_EV_SCORE : SK_EV_USER;
            struct sk_part *p = sk_part_new(t, parts->elems[i].partition, kind);
            if (!p) {
                log_error("out of memory on partition assignment");
                exit(EXIT_FAILURE);
            }
            p->next = d->parts;
            d->parts = p;
            p->marks_wanted = p->marks != NULL;
            own_queue(d, p);
            log_info("assigned %s [%d]", t, (int)parts->elems[i].partition);
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
        if (d->paused || d->phase >= PH_DRAINING)
            rd_kafka_pause_partitions(rk, parts);
        d->kafka_answered = true;
        maybe_ready(d);
    } else {
        bool lost = rd_kafka_assignment_lost(rk);
        if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && !lost)
            commit_offsets(d, NULL);
        for (int i = 0; i < parts->cnt; i++) {
            struct sk_part **pp = &d->parts;
            while (*pp && ((*pp)->partition != parts->elems[i].partition ||
                           strcmp((*pp)->topic, parts->elems[i].topic)))
                pp = &(*pp)->next;
            struct sk_part *p = *pp;
            if (!p)
                continue;
            *pp = p->next;
            /* Queued events of the partition go back to Kafka: the next
             * owner consumes them from the committed offset.  Batches
             * already running finish and still get their results. */
            sk_sched_drop_part(d->sched, p, drop_msg, d);
            log_info("%s %s [%d] (%zu events still in flight)", lost ? "lost" : "revoked", p->topic,
                     (int)p->partition, sk_part_live(p));
            if (p->active)
                d->n_active--;
            drop_queue(p);
            p->revoked = true;
            p->refs++;
            sk_part_unref(p); /* frees it now if nothing refers to it */
        }
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
}

static int on_consume_defer(sd_event_source *s, void *ud);

static void handle_message(struct daemon *d, rd_kafka_message_t *rm)
{
    if (rm->err) {
        /* A broker saying a topic does not exist (yet) has answered:
         * the daemon is ready and consumes the topic once it exists. */
        if (rm->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            rm->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
            d->kafka_answered = true;
            maybe_ready(d);
        }
        if (rm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warning("consumer: %s", rd_kafka_message_errstr(rm));
    } else {
        on_message(d, rm);
    }
    rd_kafka_message_destroy(rm);
}

/* Reads up to `burst` messages of a partition's own queue, stopping early
 * when the partition fills up (on_message holds it).  True if more may wait. */
static bool drain_part(struct daemon *d, struct sk_part *p, int burst)
{
    for (int i = 0; i < burst; i++) {
        if (p->paused)
            return false;
        rd_kafka_message_t *rm = rd_kafka_consume_queue(p->queue, 0);
        if (!rm)
            return false;
        handle_message(d, rm);
    }
    return true;
}

static void drain_consumer(struct daemon *d)
{
    /* The consumer queue: group events (served as callbacks inside the
     * poll), errors, and the messages of a partition without a queue of its
     * own.  Polling it is also what keeps us in the group. */
    bool more = true;
    for (int i = 0; i < CONSUME_BURST; i++) {
        rd_kafka_message_t *rm = rd_kafka_consumer_poll(d->consumer, 0);
        if (!rm) {
            more = false;
            break;
        }
        handle_message(d, rm);
    }
    /* Every partition in turn, a burst each, so that one with a deep
     * backlog does not starve the others. */
    for (struct sk_part *p = d->parts; p; p = p->next)
        if (p->queue && drain_part(d, p, PART_BURST))
            more = true;
    /* More may be waiting: come back after the loop's other sources ran
     * (the pipe would not wake us again while a queue stays non-empty). */
    sd_event_source_set_enabled(d->cdefer, more ? SD_EVENT_ON : SD_EVENT_OFF);
    rearm_linger(d);
    kick(d);
    if (d->closing_consumer && rd_kafka_consumer_closed(d->consumer)) {
        d->closing_consumer = false;
        log_info("left the consumer group; closing database connections");
        sk_db_shutdown(d->db, on_db_closed);
    }
}

static int on_consume_defer(sd_event_source *s, void *ud)
{
    (void)s;
    drain_consumer(ud);
    return 0;
}

static int on_consumer_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    (void)s;
    (void)revents;
    sk_kafka_pipe_drain(fd);
    drain_consumer(ud);
    return 0;
}

/* ---- lifecycle ------------------------------------------------------- */

static unsigned paused_parts(const struct daemon *d)
{
    unsigned n = 0;
    for (const struct sk_part *p = d->parts; p; p = p->next)
        n += p->paused;
    return n;
}

static void notify_status(struct daemon *d)
{
    char buf[320];
    snprintf(buf, sizeof buf,
             "STATUS=%s: consumed %llu, applied %llu, rejected %llu, in flight %zu, db %u/%u up, "
             "%s",
             d->phase == PH_RUNNING ? "running" : d->phase == PH_STARTING ? "starting" : "stopping",
             both(d->st.k_consumed), both(d->st.k_applied), both(d->st.k_rejected), d->inflight,
             sk_db_count_up(d->db),
             d->cfg->db_pool_size, paused_parts(d) ? "some partitions paused (backpressure)" : "consuming");
    sd_notify(0, buf);
}

static void maybe_ready(struct daemon *d)
{
    if (d->ready_sent || d->phase != PH_STARTING)
        return;
    if (!d->kafka_answered || sk_db_count_up(d->db) == 0)
        return;
    d->phase = PH_RUNNING;
    d->ready_sent = true;
    log_notice("ready: database and Kafka answer; consuming %s and %s", d->cfg->topic_users,
               d->cfg->topic_scores);
    sd_notify(0, "READY=1");
    notify_status(d);
}

static void on_db_idle(void *ud)
{
    struct daemon *d = ud;
    maybe_ready(d);
    kick(d);
}

static void on_db_closed(void *ud)
{
    struct daemon *d = ud;
    d->phase = PH_DONE;
    sd_event_exit(d->loop, d->exit_code);
}

/* DRAINING -> CLOSING once nothing is in flight: commit, leave the group. */
static void check_drained(struct daemon *d)
{
    if (d->phase != PH_DRAINING || d->inflight > 0)
        return;
    d->phase = PH_CLOSING;
    commit_offsets(d, NULL);
    log_info("drained: every consumed event has its result; leaving the consumer group");
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(d->consumer, d->cq);
    if (e) {
        log_warning("consumer close: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    d->closing_consumer = true;
    drain_consumer(d);
}

static void begin_drain(struct daemon *d, const char *why)
{
    if (d->phase >= PH_DRAINING)
        return;
    log_notice("%s: stopping; finishing %zu events in flight (deadline %u ms)", why, d->inflight,
               d->cfg->shutdown_timeout_ms);
    sd_notify(0, "STOPPING=1");
    d->phase = PH_DRAINING;
    pause_all(d);
    set_sched_limits(d);
    sk_sched_flush_all(d->sched);
    sd_event_source_set_time_relative(d->deadline_timer, (uint64_t)d->cfg->shutdown_timeout_ms * 1000u);
    sd_event_source_set_enabled(d->deadline_timer, SD_EVENT_ONESHOT);
    kick(d);
    check_drained(d);
}

/* SIGHUP: read the same file and -o options again; apply what may change
 * at run time (log level, batching, limits); a bad file or a change that
 * needs a restart keeps every current setting. */
static void reload(struct daemon *d)
{
    sd_notify(0, "RELOADING=1\nSTATUS=reloading settings");
    struct sk_config next;
    char err[1024];
    int changed = -1;
    if (sk_settings_load(d->src, &next, err, sizeof err) < 0) {
        log_error("reload failed, keeping the current settings: %s", err);
    } else {
        changed = sk_config_reload_diff(d->cfg, &next, err, sizeof err);
        if (changed < 0)
            log_error("reload refused, keeping the current settings: %s", err);
        else if (sk_config_apply_reload(d->cfg, &next) < 0) {
            log_error("reload failed (out of memory), keeping the current settings");
            changed = -1;
        }
        sk_config_free(&next);
    }
    if (changed >= 0) {
        sk_log_set_level(d->cfg->log_level);
        set_sched_limits(d);
        rearm_linger(d);
        log_notice("reloaded settings: %d changed", changed);
    }
    sd_notify(0, "READY=1");
    notify_status(d);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
    (void)s;
    struct daemon *d = ud;
    if (si->ssi_signo == SIGHUP) {
        reload(d);
        return 0;
    }
    begin_drain(d, si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
    return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    struct daemon *d = ud;
    log_warning("shutdown deadline passed with %zu events in flight; they were not committed and "
                "will be consumed again",
                d->inflight);
    d->exit_code = EXIT_FAILURE;
    d->phase = PH_DONE;
    sd_event_exit(d->loop, d->exit_code);
    return 0;
}

/* WATCHDOG=1 means progress, not just a turning loop: it is withheld while
 * the oldest batch attempt has held its connection longer than
 * pipeline.stall_timeout_ms (the statement timeouts should have ended it
 * long before), so systemd restarts a daemon that is alive but stuck. */
static void feed_watchdog(struct daemon *d, uint64_t now)
{
    const struct exec *ex = d->running_head;
    uint64_t stall = (uint64_t)d->cfg->stall_timeout_ms * 1000u;
    if (ex && now > ex->started + stall) {
        if (!d->wedged) {
            char name[48];
            struct sk_log_ctx x = batch_ctx(ex->bs[0], ex, 0);
            sk_logc(SK_LOG_ERR, &x,
                    "pipeline wedged: the transaction of %s has held db#%d for %llu s (limit %u s); "
                    "withholding the watchdog so that systemd restarts the daemon",
                    txn_name(ex, name, sizeof name), ex->c ? sk_db_conn_id(ex->c) : -1,
                    (unsigned long long)((now - ex->started) / 1000000u),
                    d->cfg->stall_timeout_ms / 1000u);
            sd_notify(0, "STATUS=wedged: a batch is stuck past pipeline.stall_timeout_ms");
        }
        d->wedged = true;
        return;
    }
    if (d->wedged)
        log_notice("pipeline moving again; feeding the watchdog");
    d->wedged = false;
    sd_notify(0, "WATCHDOG=1");
}

/* Give freed heap back to the system.  glibc keeps what was freed in the
 * middle of its arenas: after a burst (a backlog read up to the window)
 * RSS would stay at the burst's peak.  Called at every poll tick (200 ms);
 * trims when enough is idle to be worth the walk over the free lists. */
#define TRIM_IDLE_BYTES ((size_t)4 << 20)
static void trim_heap(void)
{
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks > TRIM_IDLE_BYTES)
        malloc_trim(0);
}

static int on_periodic(sd_event_source *s, uint64_t usec, void *ud)
{
    struct daemon *d = ud;
    if (s == d->commit_timer) {
        if (d->phase <= PH_DRAINING)
            commit_offsets(d, NULL);
    } else if (s == d->poll_timer) {
        /* Keep polling even when every partition is paused: a consumer that
         * stops polling leaves its group after max.poll.interval.ms. */
        drain_consumer(d);
        drain_producer(d);
        trim_heap();
    } else if (s == d->status_timer) {
        notify_status(d);
    } else if (s == d->watchdog_timer) {
        feed_watchdog(d, usec);
    }
    uint64_t period = s == d->commit_timer   ? d->cfg->commit_interval_ms * 1000ull
                      : s == d->poll_timer   ? 200000ull
                      : s == d->status_timer ? 5000000ull
                                             : d->watchdog_usec / 2;
    sd_event_source_set_time(s, usec + period);
    return 0;
}

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct daemon *d = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(rk, buf, sizeof buf);
        log_error("Kafka fatal error: %s; exiting", buf);
        d->exit_code = EXIT_FAILURE;
        sd_event_exit(d->loop, EXIT_FAILURE);
        return;
    }
    /* librdkafka recovers from the rest by itself (brokers down, ...). */
    log_warning("Kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    enum sk_log_level l = level <= 3 ? SK_LOG_ERR : level == 4 ? SK_LOG_WARNING
                                                : level == 5 ? SK_LOG_NOTICE
                                                : level == 6 ? SK_LOG_INFO
                                                             : SK_LOG_DEBUG;
    sk_logc(l, NULL, "librdkafka %s: %s", fac, buf);
}

/* ---- metrics --------------------------------------------------------- */

/* librdkafka's statistics (every 5 s): keep each assigned partition's
 * consumer lag.  Served from the consumer queue, on this thread. */
static int on_kafka_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    struct daemon *d = opaque;
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(root, "topics");
    for (struct sk_part *p = d->parts; p; p = p->next) {
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

static bool healthy(void *ud)
{
    const struct daemon *d = ud;
    return d->phase == PH_RUNNING && sk_db_count_up(d->db) > 0 && !d->wedged;
}

static void counter(struct sk_buf *b, const char *name, const char *help, unsigned long long v)
{
    sk_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, v);
}

static void gauge(struct sk_buf *b, const char *name, const char *help, long long v)
{
    sk_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, v);
}

static void histogram(struct sk_buf *b, const char *name, const char *help, const struct sk_hist *h)
{
    sk_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    sk_hist_render(h, name, "", b);
}

static void per_topic(struct sk_buf *b, const struct daemon *d, const char *name, const char *help,
                      const unsigned long long *v)
{
    sk_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    sk_buf_printf(b, "%s{topic=\"%s\"} %llu\n", name, d->cfg->topic_users, v[SK_EV_USER]);
    sk_buf_printf(b, "%s{topic=\"%s\"} %llu\n", name, d->cfg->topic_scores, v[SK_EV_SCORE]);
}

static void render_metrics(void *ud, struct sk_buf *b)
{
    const struct daemon *d = ud;
    const struct stats *st = &d->st;
    per_topic(b, d, "scorekeeper_events_consumed_total", "Events consumed.", st->k_consumed);
    per_topic(b, d, "scorekeeper_events_applied_total", "Events applied to the database.",
              st->k_applied);
    per_topic(b, d, "scorekeeper_events_rejected_total", "Events rejected (invalid or refused).",
              st->k_rejected);
    per_topic(b, d, "scorekeeper_events_duplicate_total",
              "Events already applied before (consumed again), not applied twice.", st->k_duplicates);
    counter(b, "scorekeeper_batches_total", "Batches (one game's events) committed.", st->batches);
    counter(b, "scorekeeper_transactions_total",
            "Database transactions committed (each carries one or more games' batches).",
            st->transactions);
    histogram(b, "scorekeeper_batch_events", "Events per committed batch.", &st->batch_size);
    histogram(b, "scorekeeper_db_transaction_seconds",
              "Time from taking a connection to COMMIT, per committed transaction.", &st->txn_seconds);
    histogram(b, "scorekeeper_event_wait_seconds",
              "Time from consuming an event to the start of the transaction that applied it (batch "
              "linger, waiting for a connection or for the game's previous transaction).",
              &st->wait_seconds);
    histogram(b, "scorekeeper_event_seconds",
              "Time from consuming an event to handing its result to the producer.", &st->event_seconds);
    histogram(b, "scorekeeper_event_age_seconds",
              "Time from an event's Kafka timestamp (CreateTime by its producer's clock, or "
              "LogAppendTime) to handing its result to the producer.", &st->age_seconds);
    counter(b, "scorekeeper_batch_retries_total",
            "Batch attempts that failed and were retried (deadlock, lock wait, lost connection).",
            st->retries);
    counter(b, "scorekeeper_db_slow_transactions_total",
            "Transactions that took db.slow_transaction_ms or longer to commit (logged, rate-limited).",
            st->slow_transactions);
    counter(b, "scorekeeper_db_one_trip_transactions_total",
            "Transactions committed in one round trip (no read before the write).", st->one_trip);
    counter(b, "scorekeeper_db_one_trip_redone_total",
            "One-round-trip attempts run again on the read path (marks moved, score near the "
            "BIGINT edge, user gone).", st->one_trip_redone);
    counter(b, "scorekeeper_db_reconnects_total", "Database connections lost or failed to open.",
            sk_db_reconnects(d->db));
    gauge(b, "scorekeeper_db_connections_up", "Database connections open.", sk_db_count_up(d->db));
    gauge(b, "scorekeeper_known_users",
          "Usernames known to exist (not sent to INSERT IGNORE): read at start, then learned.",
          (long long)sk_known_count(d->known));
    gauge(b, "scorekeeper_known_users_preloaded", "Usernames read from the database at start.",
          (long long)d->preload.loaded);
    counter(b, "scorekeeper_results_delivered_total", "Result events delivered.", st->results);
    counter(b, "scorekeeper_dead_letters_delivered_total", "Dead-letter copies delivered.",
            st->dead_letters);
    counter(b, "scorekeeper_delivery_failures_total",
            "Result or dead-letter deliveries that failed (and were sent again).", st->result_errors);
    gauge(b, "scorekeeper_events_in_flight", "Events consumed whose results are not delivered yet.",
          (long long)d->inflight);
    unsigned n = 0, paused = 0;
    for (const struct sk_part *p = d->parts; p; p = p->next) {
        n++;
        paused += p->paused;
    }
    gauge(b, "scorekeeper_partitions_assigned", "Input partitions assigned to this instance.", n);
    gauge(b, "scorekeeper_partitions_paused", "Assigned partitions paused by backpressure.", paused);
    sk_buf_puts(b, "# HELP scorekeeper_consumer_lag Messages behind the end of the partition "
                   "(librdkafka statistics).\n# TYPE scorekeeper_consumer_lag gauge\n");
    for (const struct sk_part *p = d->parts; p; p = p->next)
        if (p->lag >= 0)
            sk_buf_printf(b, "scorekeeper_consumer_lag{topic=\"%s\",partition=\"%d\"} %lld\n",
                          p->topic, (int)p->partition, (long long)p->lag);
    gauge(b, "scorekeeper_ready", "1 once READY=1 was sent and the pipeline is healthy.",
          healthy(ud) ? 1 : 0);
    /* The heap as malloc sees it (all arenas): in use, and held from the
     * system.  RSS minus these is code, stacks and librdkafka's buffers. */
    struct mallinfo2 mi = mallinfo2();
    gauge(b, "scorekeeper_heap_in_use_bytes", "Heap bytes allocated (malloc, all arenas).",
          (long long)mi.uordblks);
    gauge(b, "scorekeeper_heap_held_bytes", "Heap bytes obtained from the system (malloc arenas "
          "and mmap-ed blocks).", (long long)(mi.arena + mi.hblkhd));
}

static int setup_metrics(struct daemon *d)
{
    if (!strcmp(d->cfg->metrics_listen, "off"))
        return 0;
    static const struct sk_metrics_ops ops = {.render = render_metrics, .healthy = healthy};
    char err[256];
    int r = sk_metrics_start(d->loop, d->cfg->metrics_listen, &ops, d, &d->metrics, err, sizeof err);
    if (r < 0) {
        log_error("%s", err);
        return r;
    }
    log_info("metrics on http://%.*s:%u/metrics",
             (int)(strrchr(d->cfg->metrics_listen, ':') - d->cfg->metrics_listen),
             d->cfg->metrics_listen, sk_metrics_port(d->metrics));
    return 0;
}

static int periodic(struct daemon *d, sd_event_source **s, uint64_t period_usec)
{
    return sd_event_add_time_relative(d->loop, s, CLOCK_MONOTONIC, period_usec, 10000, on_periodic, d);
}

static int setup_kafka(struct daemon *d)
{
    char err[512];
    rd_kafka_conf_t *cc = sk_kafka_conf(d->cfg, true, err, sizeof err);
    if (!cc) {
        log_error("%s", err);
        return -EINVAL;
    }
    rd_kafka_conf_set_opaque(cc, d);
    rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(cc, on_offset_commit);
    rd_kafka_conf_set_error_cb(cc, on_kafka_error);
    rd_kafka_conf_set_log_cb(cc, on_kafka_log);
    rd_kafka_conf_set_stats_cb(cc, on_kafka_stats);
    d->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
    if (!d->consumer) {
        rd_kafka_conf_destroy(cc); /* not taken over on failure */
        log_error("cannot create Kafka consumer: %s", err);
        return -EINVAL;
    }
    rd_kafka_poll_set_consumer(d->consumer);
    rd_kafka_set_log_queue(d->consumer, NULL); /* main queue = consumer queue now */

    rd_kafka_conf_t *pc = sk_kafka_conf(d->cfg, false, err, sizeof err);
    if (!pc) {
        log_error("%s", err);
        return -EINVAL;
    }
    rd_kafka_conf_set_opaque(pc, d);
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    rd_kafka_conf_set_error_cb(pc, on_kafka_error);
    rd_kafka_conf_set_log_cb(pc, on_kafka_log);
    d->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    if (!d->producer) {
        rd_kafka_conf_destroy(pc);
        log_error("cannot create Kafka producer: %s", err);
        return -EINVAL;
    }
    rd_kafka_set_log_queue(d->producer, NULL);
    /* Topic handles made now start the metadata lookups for the outputs
     * while the consumer joins its group: the first results do not wait
     * for them (measured: about a second of results held in memory). */
    d->rkt_results = rd_kafka_topic_new(d->producer, d->cfg->topic_results, NULL);
    d->rkt_dead_letter = rd_kafka_topic_new(d->producer, d->cfg->topic_dead_letter, NULL);
    if (!d->rkt_results || !d->rkt_dead_letter) {
        log_error("cannot create Kafka topic handles: %s", rd_kafka_err2str(rd_kafka_last_error()));
        return -EINVAL;
    }

    d->cq = rd_kafka_queue_get_consumer(d->consumer);
    d->pq = rd_kafka_queue_get_main(d->producer);
    int r;
    if ((r = sk_kafka_queue_pipe(d->cq, d->cpipe)) < 0 || (r = sk_kafka_queue_pipe(d->pq, d->ppipe)) < 0) {
        log_error("cannot create wake-up pipes: %s", strerror(-r));
        return r;
    }
    if ((r = sd_event_add_io(d->loop, &d->cio, d->cpipe[0], EPOLLIN, on_consumer_io, d)) < 0 ||
        (r = sd_event_add_io(d->loop, &d->pio, d->ppipe[0], EPOLLIN, on_producer_io, d)) < 0 ||
        (r = sd_event_add_defer(d->loop, &d->cdefer, on_consume_defer, d)) < 0) {
        log_error("cannot watch Kafka queues: %s", strerror(-r));
        return r;
    }
    sd_event_source_set_enabled(d->cdefer, SD_EVENT_OFF);

    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(topics, d->cfg->topic_users, RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, d->cfg->topic_scores, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(d->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        log_error("cannot subscribe to %s, %s: %s", d->cfg->topic_users, d->cfg->topic_scores,
                  rd_kafka_err2str(e));
        return -EINVAL;
    }
    return 0;
}

static void teardown(struct daemon *d)
{
    d->paused = true; /* messages freed below must not resume partitions */
    /* Order matters: results still queued in the producer are given a
     * short, bounded flush; the consumer is closed before destroy. */
    if (d->producer) {
        rd_kafka_flush(d->producer, 0);
        while (rd_kafka_poll(d->producer, 0) > 0)
            ;
    }
    sk_sched_free(d->sched, drop_msg, d);
    d->sched = NULL;
    sk_metrics_stop(d->metrics);
    sd_event_source_disable_unref(d->cio);
    sd_event_source_disable_unref(d->pio);
    sd_event_source_disable_unref(d->cdefer);
    sd_event_source_disable_unref(d->linger_timer);
    sd_event_source_disable_unref(d->commit_timer);
    sd_event_source_disable_unref(d->poll_timer);
    sd_event_source_disable_unref(d->status_timer);
    sd_event_source_disable_unref(d->watchdog_timer);
    sd_event_source_disable_unref(d->deadline_timer);
    for (struct sk_part *p = d->parts; p; p = p->next)
        drop_queue(p);
    if (d->cq)
        rd_kafka_queue_destroy(d->cq);
    if (d->pq)
        rd_kafka_queue_destroy(d->pq);
    if (d->consumer) {
        if (!rd_kafka_consumer_closed(d->consumer))
            rd_kafka_consumer_close(d->consumer); /* the loop is over: nothing else to stall */
        rd_kafka_destroy(d->consumer);
    }
    if (d->producer) {
        /* Whatever is still queued was already given up on (deadline):
         * do not wait for it. */
        rd_kafka_purge(d->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        while (rd_kafka_poll(d->producer, 0) > 0)
            ;
        if (d->rkt_results)
            rd_kafka_topic_destroy(d->rkt_results);
        if (d->rkt_dead_letter)
            rd_kafka_topic_destroy(d->rkt_dead_letter);
        rd_kafka_destroy(d->producer);
    }
    /* Only now, with the producer gone, is no message referenced by it
     * (results are produced without a copy).  The purge reported the
     * messages it dropped as failed, which queued them for sending again,
     * next to any that were waiting for that already: nothing will send
     * them now.  Partitions go with their last message. */
    while (d->resend) {
        struct sk_msg *gone = d->resend;
        d->resend = gone->next;
        msg_gone(d, gone);
    }
    while (d->parts) {
        struct sk_part *p = d->parts;
        d->parts = p->next;
        p->revoked = true;
        p->refs++;
        sk_part_unref(p);
    }
    for (int i = 0; i < 2; i++) {
        if (d->cpipe[i] > 0)
            close(d->cpipe[i]);
        if (d->ppipe[i] > 0)
            close(d->ppipe[i]);
    }
    sk_db_free(d->db);
    sk_known_free(d->known);
    sk_preload_free(&d->preload);
    sd_event_unref(d->loop);
}

int sk_daemon_run(struct sk_config *cfg, const struct sk_settings_src *src)
{
    struct daemon dd = {.cfg = cfg, .src = src, .cpipe = {-1, -1}, .ppipe = {-1, -1}};
    struct daemon *d = &dd;
    g_daemon = d;
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    /* Before any thread starts.  Two arenas, not eight per core, for
     * librdkafka's threads; fixed thresholds, because glibc otherwise raises
     * both after the first large buffer is freed and stops trimming
     * (measured with the heap gauges in /metrics: RSS twice the heap in use). */
    mallopt(M_ARENA_MAX, 2);
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024);
    int r = sd_event_default(&d->loop);
    if (r < 0) {
        log_error("cannot create event loop: %s", strerror(-r));
        return EXIT_FAILURE;
    }
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGHUP);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    signal(SIGPIPE, SIG_IGN);
    d->sched = sk_sched_new();
    d->known = sk_known_new(cfg->known_users);
    /* at most half the map, one generation of it (src/known.c): the users
     * met later start the next one, and the preloaded names that are used
     * are carried into it */
    sk_preload_init(&d->preload, cfg->known_users_preload < cfg->known_users / 2
                                     ? cfg->known_users_preload
                                     : cfg->known_users / 2);
    if (!d->sched || !d->known) {
        log_error("out of memory");
        teardown(d);
        return EXIT_FAILURE;
    }
    set_sched_limits(d);
#define HIST_INIT(h, bounds) sk_hist_init((h), (bounds), sizeof(bounds) / sizeof *(bounds))
    HIST_INIT(&d->st.batch_size, batch_size_bounds);
    HIST_INIT(&d->st.txn_seconds, txn_seconds_bounds);
    HIST_INIT(&d->st.wait_seconds, event_seconds_bounds);
    HIST_INIT(&d->st.event_seconds, event_seconds_bounds);
    HIST_INIT(&d->st.age_seconds, event_seconds_bounds);
#undef HIST_INIT
    if ((r = sk_db_new(d->loop, cfg, on_db_idle, d, &d->db)) < 0 || (r = setup_kafka(d)) < 0) {
        teardown(d);
        return r == -EINVAL ? 78 : 69; /* EX_CONFIG / EX_UNAVAILABLE */
    }
    if ((r = setup_metrics(d)) < 0) {
        teardown(d);
        return r == -EINVAL ? 78 : 69;
    }
    if ((r = sd_event_add_signal(d->loop, NULL, SIGTERM, on_signal, d)) < 0 ||
        (r = sd_event_add_signal(d->loop, NULL, SIGINT, on_signal, d)) < 0 ||
        (r = sd_event_add_signal(d->loop, NULL, SIGHUP, on_signal, d)) < 0 ||
        (r = sd_event_add_time(d->loop, &d->linger_timer, CLOCK_MONOTONIC, UINT64_MAX, 1000,
                               on_linger, d)) < 0 ||
        (r = sd_event_add_time_relative(d->loop, &d->deadline_timer, CLOCK_MONOTONIC,
                                        (uint64_t)cfg->shutdown_timeout_ms * 1000u, 1000,
                                        on_deadline, d)) < 0 ||
        (r = periodic(d, &d->commit_timer, cfg->commit_interval_ms * 1000ull)) < 0 ||
        (r = periodic(d, &d->poll_timer, 200000)) < 0 ||
        (r = periodic(d, &d->status_timer, 5000000)) < 0) {
        log_error("cannot set up the event loop: %s", strerror(-r));
        teardown(d);
        return EXIT_FAILURE;
    }
    sd_event_source_set_enabled(d->linger_timer, SD_EVENT_OFF);
    sd_event_source_set_enabled(d->deadline_timer, SD_EVENT_OFF);
    sd_event_source_set_enabled(d->commit_timer, SD_EVENT_ON);
    sd_event_source_set_enabled(d->poll_timer, SD_EVENT_ON);
    sd_event_source_set_enabled(d->status_timer, SD_EVENT_ON);
    if (sd_watchdog_enabled(0, &d->watchdog_usec) > 0 && d->watchdog_usec > 0) {
        if ((r = periodic(d, &d->watchdog_timer, d->watchdog_usec / 2)) < 0) {
            log_error("cannot arm the watchdog timer: %s", strerror(-r));
            teardown(d);
            return EXIT_FAILURE;
        }
        sd_event_source_set_enabled(d->watchdog_timer, SD_EVENT_ON);
    }
    log_info("starting: brokers %s, group %s, database %s, pool %u", cfg->kafka_brokers,
             cfg->group_id, cfg->db.socket ? cfg->db.socket : cfg->db.host, cfg->db_pool_size);
    sk_db_start(d->db);
    r = sd_event_loop(d->loop);
    if (r < 0) {
        log_error("event loop failed: %s", strerror(-r));
        r = EXIT_FAILURE;
    }
    if (d->phase == PH_CLOSING || d->phase == PH_DONE)
        log_notice("stopped: consumed %llu, applied %llu, rejected %llu, duplicate %llu, results "
                   "delivered %llu; %llu transactions, %llu of them in one round trip (%llu run "
                   "again reading first)",
                   both(d->st.k_consumed), both(d->st.k_applied), both(d->st.k_rejected),
                   both(d->st.k_duplicates), d->st.results, d->st.transactions, d->st.one_trip,
                   d->st.one_trip_redone);
    teardown(d);
    return r;
}
