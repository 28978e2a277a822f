/* txn — transactions on pooled connections, see include/txn.h. */
#include "txn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply.h"
#include "backoff.h"
#include "buf.h"
#include "known.h"
#include "list.h"
#include "log.h"
#include "sched.h"
#include "txnpolicy.h"
#include "warmup.h"

#define TXN_MAX_BATCHES 256
/* How long the games of a shared transaction that met a lock run apart. */
#define SOLO_SECONDS 30u

struct txn {
    struct sk_txns *t;
    enum sk_txn_state state;
    struct sk_batch *bs[TXN_MAX_BATCHES];
    unsigned nb;
    unsigned nevents;
    struct sk_apply *a;
    struct sk_db_conn *c;
    struct sk_buf sql;
    sd_event_source *retry;
    uint64_t started;       /* when the current attempt got its connection */
    struct sk_db_error err; /* kept while a ROLLBACK runs */
    struct sk_list link; /* in the module's list of live transactions, oldest first */
};

struct sk_txns {
    sd_event *loop;
    const struct sk_config *cfg;
    struct sk_db *db;
    struct sk_stats *st;
    struct sk_txns_ops ops;
    void *ud;
    struct sk_sched *sched;
    sd_event_source *linger;
    struct sk_known *known; /* usernames known to exist: not sent to INSERT IGNORE again */
    struct sk_warmup *warmup;
    struct sk_rng rng;
    bool draining;
    bool dispatching, dispatch_again; /* see sk_txns_kick */
    unsigned long max_packet; /* the pool's smallest max_allowed_packet the limits are cut for */
    struct sk_list all;
};

static uint64_t now_usec(const struct sk_txns *t)
{
    uint64_t u = 0;
    sd_event_now(t->loop, CLOCK_MONOTONIC, &u);
    return u;
}

/* ---- the state machine ------------------------------------------------ */

static const char *const state_names[] = {
    [SK_TXN_ST_NEW] = "NEW",          [SK_TXN_ST_FIRST] = "FIRST",     [SK_TXN_ST_SECOND] = "SECOND",
    [SK_TXN_ST_ROLLBACK] = "ROLLBACK", [SK_TXN_ST_BACKOFF] = "BACKOFF", [SK_TXN_ST_DONE] = "DONE",
};

const char *sk_txn_state_name(enum sk_txn_state s)
{
    return (unsigned)s < sizeof state_names / sizeof *state_names ? state_names[s] : "?";
}

bool sk_txn_transition_ok(enum sk_txn_state from, enum sk_txn_state to)
{
    switch (from) {
    case SK_TXN_ST_NEW:
        return to == SK_TXN_ST_FIRST || to == SK_TXN_ST_DONE;
    case SK_TXN_ST_FIRST:
        return to == SK_TXN_ST_SECOND || to == SK_TXN_ST_ROLLBACK || to == SK_TXN_ST_BACKOFF ||
               to == SK_TXN_ST_DONE;
    case SK_TXN_ST_SECOND:
    case SK_TXN_ST_ROLLBACK:
        return to == SK_TXN_ST_BACKOFF || to == SK_TXN_ST_DONE;
    case SK_TXN_ST_BACKOFF:
        return to == SK_TXN_ST_DONE;
    case SK_TXN_ST_DONE:
        break;
    }
    return false;
}

static bool holds_connection(enum sk_txn_state s)
{
    return s == SK_TXN_ST_FIRST || s == SK_TXN_ST_SECOND || s == SK_TXN_ST_ROLLBACK;
}

/* The one place a transaction changes state.  Its attempt's clock starts
 * when it first runs on its connection; DONE frees it. */
static void set_state(struct txn *x, enum sk_txn_state to)
{
    if (!sk_txn_transition_ok(x->state, to)) {
        log_error("transaction: impossible transition %s -> %s", sk_txn_state_name(x->state),
                  sk_txn_state_name(to));
        abort();
    }
    if (to == SK_TXN_ST_FIRST)
        x->started = now_usec(x->t);
    x->state = to;
    if (to != SK_TXN_ST_DONE)
        return;
    sk_list_del(&x->link);
    sd_event_source_disable_unref(x->retry);
    sk_apply_free(x->a);
    sk_buf_free(&x->sql);
    free(x);
}

static struct txn *txn_new(struct sk_txns *t)
{
    struct txn *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->t = t;
    x->state = SK_TXN_ST_NEW;
    sk_buf_init(&x->sql);
    sk_list_append(&t->all, &x->link);
    return x;
}

/* ---- naming, for the log --------------------------------------------- */

static struct sk_log_ctx batch_ctx(const struct sk_batch *b, const struct txn *x, unsigned err)
{
    struct sk_log_ctx c = SK_LOG_CTX_NONE;
    c.game_id = b->key;
    c.db_errno = err;
    if (x && x->c)
        c.db_conn = sk_db_conn_id(x->c);
    if (b->head) {
        c.topic = b->head->part->topic;
        c.partition = b->head->part->partition;
        c.offset = b->head->offset;
    }
    return c;
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
static const char *txn_name(const struct txn *x, char *buf, size_t n)
{
    if (x->nb == 1)
        return batch_name(x->bs[0], buf, n);
    snprintf(buf, n, "%u games", x->nb);
    return buf;
}

/* ---- ends --------------------------------------------------------------- */

static void linger_rearm(struct sk_txns *t)
{
    uint64_t when = sk_sched_next_deadline(t->sched);
    if (when == UINT64_MAX) {
        sd_event_source_set_enabled(t->linger, SD_EVENT_OFF);
        return;
    }
    sd_event_source_set_time(t->linger, when);
    sd_event_source_set_enabled(t->linger, SD_EVENT_ONESHOT);
}

static void release_conn(struct txn *x)
{
    if (x->c)
        sk_db_release(x->c);
    x->c = NULL;
}

/* The events of partitions revoked since the batch was cut leave it: the
 * partition's next owner consumes them again from the committed offset, and
 * if that owner is this daemon, the old copies must not run beside the new
 * ones.  False when nothing is left of the batch. */
static bool prune_revoked(struct sk_txns *t, struct sk_batch *b)
{
    struct sk_msg **pp = &b->head;
    while (*pp) {
        struct sk_msg *m = *pp;
        if (!m->part->revoked) {
            pp = &m->next;
            continue;
        }
        *pp = m->next;
        m->next = NULL;
        b->n--;
        b->bytes -= m->bytes;
        t->ops.drop(t->ud, m);
    }
    return b->head != NULL;
}

/* The batches go back to the front of the ready FIFO, first one first, to
 * run again; the transaction is over. */
static void give_back(struct txn *x)
{
    struct sk_txns *t = x->t;
    release_conn(x);
    for (unsigned i = x->nb; i-- > 0;) {
        if (prune_revoked(t, x->bs[i]))
            sk_sched_push_front(t->sched, x->bs[i]);
        else
            sk_sched_done(t->sched, x->bs[i], now_usec(t));
    }
    x->nb = 0;
    set_state(x, SK_TXN_ST_DONE);
}

/* The transaction's events are done: committed (then its batch sizes and
 * its events' waits are counted, in the one walk over them), or the one
 * event the server refused.  Their results are due and the games take new
 * batches. */
static void finish(struct txn *x, bool committed)
{
    struct sk_txns *t = x->t;
    struct sk_msg *done = NULL, **tail = &done;
    uint64_t now = now_usec(t);
    release_conn(x);
    for (unsigned i = 0; i < x->nb; i++) {
        struct sk_batch *b = x->bs[i];
        if (committed)
            sk_hist_observe(&t->st->batch_size, b->n);
        *tail = b->head;
        for (; *tail; tail = &(*tail)->next)
            if (committed) {
                sk_hist_observe(&t->st->wait_seconds,
                                sk_seconds_between((*tail)->consumed_usec, x->started));
                (*tail)->txn_usec = now - x->started;
            }
        b->head = NULL;
        t->st->batches++;
        sk_sched_done(t->sched, b, now);
    }
    x->nb = 0;
    set_state(x, SK_TXN_ST_DONE);
    while (done) {
        struct sk_msg *next = done->next;
        done->next = NULL;
        t->ops.finished(t->ud, done);
        done = next;
    }
    sk_txns_kick(t);
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    struct txn *x = ud;
    struct sk_txns *t = x->t;
    give_back(x);
    sk_txns_kick(t);
    return 0;
}

static void forget_mark(void *ud, struct sk_part *part, int64_t game, int64_t next)
{
    (void)ud;
    (void)next;
    if (part->marks)
        sk_marks_forget(part->marks, game);
}

static void run_apart(struct txn *x, bool for_a_while)
{
    uint64_t until = now_usec(x->t) + SOLO_SECONDS * 1000000ull;
    for (unsigned i = 0; i < x->nb; i++) {
        x->bs[i]->solo = true;
        if (!for_a_while)
            continue;
        x->bs[i]->attempt = 0;
        sk_sched_set_solo(x->t->sched, x->bs[i]->key, until);
    }
}

static void backoff(struct txn *x, const struct sk_db_error *err, unsigned attempt, const char *name,
                    struct sk_log_ctx *lc)
{
    struct sk_txns *t = x->t;
    uint64_t ms = sk_backoff_ms(t->cfg->db_retry_min_ms, t->cfg->db_retry_max_ms, attempt, &t->rng);
    sk_logc(err->fault == SK_DB_OTHER ? SK_LOG_ERR : SK_LOG_WARNING, lc,
            "%s: transaction of %u events failed: %s; retrying in %llu ms (attempt %u)", name,
            x->nevents, err->message, (unsigned long long)ms, attempt + 1);
    release_conn(x);
    sk_apply_free(x->a);
    x->a = NULL;
    int r = sd_event_add_time_relative(t->loop, &x->retry, CLOCK_MONOTONIC, ms * 1000u, 1000,
                                       on_retry_timer, x);
    if (r < 0) {
        log_error("cannot arm retry timer: %s; retrying at once", strerror(-r));
        give_back(x);
        return;
    }
    set_state(x, SK_TXN_ST_BACKOFF);
}

/* An attempt failed: the policy says what happens next (txnpolicy.h); this
 * carries it out and says it once in the log. */
static void failed(struct txn *x, const struct sk_db_error *err)
{
    struct sk_txns *t = x->t;
    struct sk_batch *b = x->bs[0];
    char name[48];
    txn_name(x, name, sizeof name);
    struct sk_log_ctx lc = batch_ctx(b, x, err->code);
    /* The marks of the transaction's games are in doubt after any failure
     * (a commit whose answer was lost may or may not have happened). */
    const char *guard = NULL;
    if (x->a) {
        sk_apply_marks(x->a, forget_mark, NULL);
        if (sk_apply_one_trip(x->a))
            guard = sk_policy_one_trip_guard(err->code,
                                             (int)err->stmt == sk_apply_mark_check_stmt(x->a));
    }
    unsigned attempt = 0;
    for (unsigned i = 0; i < x->nb; i++)
        if (x->bs[i]->attempt > attempt)
            attempt = x->bs[i]->attempt;
    struct sk_txn_failure f = {.fault = err->fault, .code = err->code, .timed_out = err->timed_out,
                               .one_trip_guard = guard != NULL,
                               .games = x->nb, .events = b->n,
                               .knows_users = sk_known_count(t->known) > 0, .attempt = attempt};
    enum sk_txn_action act = sk_policy_decide(&f);
    const char *refused = err->fault == SK_DB_TOO_LARGE ? "too large" : "refused";
    attempt = 0;
    if (act != SK_TXN_READ_FIRST) {
        for (unsigned i = 0; i < x->nb; i++)
            if (++x->bs[i]->attempt > attempt)
                attempt = x->bs[i]->attempt;
        t->st->retries++;
    }
    switch (act) {
    case SK_TXN_READ_FIRST:
        sk_logc(SK_LOG_INFO, &lc, "%s: %s; reading before writing (%s)", name, guard, err->message);
        t->st->one_trip_redone++;
        break;
    case SK_TXN_FORGET_USERS:
        sk_logc(SK_LOG_WARNING, &lc, "%s: a known user is gone (%s); forgetting known users and "
                "retrying", name, err->message);
        sk_known_clear(t->known);
        break;
    case SK_TXN_GAMES_APART:
        sk_logc(SK_LOG_INFO, &lc, "%s: transaction %s (%s); running its games one by one", name,
                refused, err->message);
        run_apart(x, false);
        break;
    case SK_TXN_SPLIT:
        sk_logc(SK_LOG_INFO, &lc, "%s: batch of %u events %s (%s); splitting it", name, b->n,
                refused, err->message);
        /* what is split off goes back to the game's queue: never events of
         * a partition that is no longer ours */
        if (prune_revoked(t, b) && b->n > 1)
            sk_sched_split(t->sched, b);
        b->attempt = 0;
        break;
    case SK_TXN_REJECT: {
        sk_logc(SK_LOG_NOTICE, &lc, "%s: event refused by the database: %s", name, err->message);
        char msg[300];
        snprintf(msg, sizeof msg, "the database refused the event: %s", err->message);
        sk_msg_reject(b->head, SK_E_DB_REJECTED, msg);
        finish(x, false);
        return;
    }
    case SK_TXN_RECONNECT:
        sk_logc(SK_LOG_WARNING, &lc, "%s: connection lost during a transaction of %u events (%s); "
                "retrying", name, x->nevents, err->message);
        break;
    case SK_TXN_RUN_APART:
        /* A shared transaction met a lock (held from outside, or by another
         * instance): its games go on apart, at once, so that only the
         * contended one waits; and alone for a while. */
        sk_logc(SK_LOG_INFO, &lc, "%s: %s; running them apart for %u s", name, err->message,
                SOLO_SECONDS);
        run_apart(x, true);
        break;
    case SK_TXN_BACKOFF:
        backoff(x, err, attempt, name, &lc);
        return;
    }
    give_back(x);
    sk_txns_kick(t);
}

/* ---- round trips ----------------------------------------------------- */

static void on_txn_row(void *ud, unsigned stmt, char **row, unsigned long *lengths, unsigned nf)
{
    struct txn *x = ud;
    sk_apply_row(x->a, stmt, row, lengths, nf);
}

/* id 0: the user is gone (deleted): a remembered id would only fail its
 * foreign key, so it is replaced by 0, which reads as not known. */
static void remember_user(void *ud, const char *name, size_t len, int64_t id)
{
    if (id > 0 || sk_known_id(ud, name, len) > 0)
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
static void slow_txn(const struct txn *x, double took)
{
    char name[48];
    struct sk_log_ctx lc = batch_ctx(x->bs[0], x, 0);
    if (x->nb > 1) { /* several games: only the topic and the connection are theirs */
        lc.game_id = 0;
        lc.partition = -1;
        lc.offset = -1;
    }
    x->t->st->slow_transactions++;
    sk_logc(SK_LOG_WARNING, &lc,
            "slow transaction: %s, %u events, took %llu ms from taking db#%d to its COMMIT "
            "(db.slow_transaction_ms %u); the server was waiting for a lock, for CPU or for "
            "its disk",
            txn_name(x, name, sizeof name), x->nevents, (unsigned long long)(took * 1000),
            sk_db_conn_id(x->c), x->t->cfg->db_slow_txn_ms);
}

static void committed(struct txn *x)
{
    struct sk_txns *t = x->t;
    sk_apply_outcome(x->a);
    sk_apply_users(x->a, remember_user, t->known);
    sk_apply_marks(x->a, remember_mark, NULL);
    t->st->one_trip += sk_apply_one_trip(x->a);
    t->st->users_deleted += sk_apply_deleted(x->a);
    double took = sk_seconds_between(x->started, now_usec(t));
    if (t->cfg->db_slow_txn_ms && took * 1000 >= t->cfg->db_slow_txn_ms)
        slow_txn(x, took);
    t->st->transactions++;
    sk_hist_observe(&t->st->txn_seconds, took);
    finish(x, true);
}

static void conn_not_ready(struct txn *x, const char *what)
{
    struct sk_db_error e = {.fault = SK_DB_CONN};
    snprintf(e.message, sizeof e.message, "connection not ready for the %s", what);
    failed(x, &e);
}

/* A statement must stay below the session's max_allowed_packet: the
 * server would close the connection, and the same SQL would fail on every
 * connection for ever.  Measured once built; false (with the error the
 * policy splits by in *e) when it does not fit. */
static bool fits_packet(const struct txn *x, const char *which, struct sk_db_error *e)
{
    unsigned long max = sk_db_conn_max_packet(x->c);
    if (sk_policy_fits_packet(x->sql.len, max))
        return true;
    *e = (struct sk_db_error){.fault = SK_DB_TOO_LARGE};
    snprintf(e->message, sizeof e->message,
             "its %s statement would be %zu bytes, over the server's max_allowed_packet %lu",
             which, x->sql.len, max);
    return false;
}

static void on_second_done(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    (void)c;
    struct txn *x = ud;
    if (err)
        failed(x, err);
    else
        committed(x);
}

static void on_rolled_back(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    (void)c;
    struct txn *x = ud;
    failed(x, err ? err : &x->err);
}

static void on_first_done(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    struct txn *x = ud;
    if (err) {
        failed(x, err);
        return;
    }
    x->err = (struct sk_db_error){.fault = SK_DB_RETRY};
    int r = sk_apply_second(x->a, &x->sql, x->err.message, sizeof x->err.message);
    if (r < 0) {
        /* Answers that do not add up (a user deleted under our feet): end
         * the open transaction before it is retried, and stop trusting the
         * set of known users. */
        sk_known_clear(x->t->known);
        set_state(x, SK_TXN_ST_ROLLBACK);
        if (sk_db_query(c, "ROLLBACK", 8, NULL, on_rolled_back, x) < 0)
            conn_not_ready(x, "rollback");
        return;
    }
    if (r == 0) {
        committed(x);
        return;
    }
    if (!fits_packet(x, r == 2 ? "first" : "second", &x->err)) {
        /* The transaction is open: it ends before the policy splits it. */
        set_state(x, SK_TXN_ST_ROLLBACK);
        if (sk_db_query(c, "ROLLBACK", 8, NULL, on_rolled_back, x) < 0)
            conn_not_ready(x, "rollback");
        return;
    }
    if (r == 2) { /* the users are made: now the transaction, still a first round trip */
        if (sk_db_query(c, x->sql.p, x->sql.len, on_txn_row, on_first_done, x) < 0)
            conn_not_ready(x, "first statement");
        return;
    }
    set_state(x, SK_TXN_ST_SECOND);
    if (sk_db_query(c, x->sql.p, x->sql.len, on_txn_row, on_second_done, x) < 0)
        conn_not_ready(x, "second statement");
}

/* False when it could not start (out of memory): the batches are back in
 * the queue and dispatching stops until the next kick. */
static bool start(struct txn *x, struct sk_db_conn *c)
{
    struct sk_txns *t = x->t;
    x->c = c;
    if (!(x->a = sk_apply_new(x->bs, x->nb)) || sk_apply_first(x->a, &x->sql, t->known) < 0) {
        /* Try again later rather than lose the batches. */
        log_error("out of memory starting a transaction; retrying");
        give_back(x);
        return false;
    }
    if (sk_log_enabled(SK_LOG_DEBUG)) {
        for (unsigned i = 0; i < x->nb; i++) {
            char name[48];
            const struct sk_batch *b = x->bs[i];
            struct sk_log_ctx lc = batch_ctx(b, x, 0);
            sk_logc(SK_LOG_DEBUG, &lc, "%s: batch of %u events (%s), attempt %u, in a transaction "
                    "of %u games",
                    batch_name(b, name, sizeof name), b->n, sk_flush_name(b->reason),
                    b->attempt + 1, x->nb);
        }
    }
    set_state(x, SK_TXN_ST_FIRST);
    struct sk_db_error e;
    if (!fits_packet(x, "first", &e)) {
        failed(x, &e); /* nothing was sent */
        return true;
    }
    if (sk_db_query(c, x->sql.p, x->sql.len, on_txn_row, on_first_done, x) < 0)
        conn_not_ready(x, "first statement");
    return true;
}

/* ---- dispatch ----------------------------------------------------------- */

static void set_limits(struct sk_txns *t);

static void dispatch(struct sk_txns *t)
{
    unsigned long max_packet = sk_db_max_packet(t->db);
    if (max_packet && max_packet != t->max_packet) {
        t->max_packet = max_packet;
        set_limits(t);
        if (sk_policy_packet_payload(max_packet) < t->cfg->batch_max_bytes)
            log_notice("batches are cut at %zu payload bytes (not batch.max_bytes %zu): the "
                       "server's max_allowed_packet is %lu",
                       sk_policy_packet_payload(max_packet), t->cfg->batch_max_bytes, max_packet);
    }
    if (!sk_warmup_run(t->warmup))
        return;
    while (sk_sched_ready(t->sched) > 0) {
        struct sk_db_conn *c = sk_db_acquire(t->db);
        if (!c)
            return;
        struct txn *x = txn_new(t);
        if (!x) {
            /* the pool's next free connection tries again */
            log_error("out of memory starting a transaction; retrying");
            sk_db_release(c);
            return;
        }
        struct sk_batch *b = sk_sched_pop_ready(t->sched);
        x->bs[x->nb++] = b;
        x->nevents = b->n;
        /* Batches share a transaction, and its one statement, only while
         * their payload stays within what the connection's packet takes. */
        size_t bytes = b->bytes, most = sk_policy_packet_payload(sk_db_conn_max_packet(c));
        while (b->key && !b->solo && x->nb < TXN_MAX_BATCHES) {
            struct sk_batch *n = sk_sched_peek_ready(t->sched);
            if (!n || !n->key || n->solo || x->nevents + n->n > t->cfg->txn_max_events ||
                bytes + n->bytes > most)
                break;
            x->bs[x->nb++] = sk_sched_pop_ready(t->sched);
            x->nevents += n->n;
            bytes += n->bytes;
        }
        if (!start(x, c))
            return;
    }
}

/* A query can complete inside the call that starts it, and its callback
 * asks for more dispatching: that request is noted and served by the
 * dispatch already running, once it is back at the top, instead of a
 * second one nested inside it. */
void sk_txns_kick(struct sk_txns *t)
{
    if (t->dispatching) {
        t->dispatch_again = true;
        return;
    }
    t->dispatching = true;
    do {
        t->dispatch_again = false;
        dispatch(t);
    } while (t->dispatch_again);
    t->dispatching = false;
    linger_rearm(t);
}

static int on_linger(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    struct sk_txns *t = ud;
    sk_sched_expire(t->sched, now_usec(t));
    sk_txns_kick(t);
    return 0;
}

int sk_txns_add(struct sk_txns *t, int64_t key, struct sk_msg *m)
{
    return sk_sched_add(t->sched, key, m, now_usec(t));
}

/* batch.max_bytes, or less when the server's max_allowed_packet is
 * smaller than the SQL of such a batch would be. */
static void set_limits(struct sk_txns *t)
{
    size_t most = sk_policy_packet_payload(t->max_packet);
    struct sk_sched_limits l = {
        .max_events = t->cfg->batch_max_events,
        .max_bytes = t->cfg->batch_max_bytes < most ? t->cfg->batch_max_bytes : most,
        .linger_usec = t->draining ? 0 : (uint64_t)t->cfg->batch_linger_ms * 1000u,
    };
    sk_sched_set_limits(t->sched, &l);
}

void sk_txns_reload(struct sk_txns *t)
{
    set_limits(t);
    linger_rearm(t);
}

void sk_txns_drain(struct sk_txns *t)
{
    t->draining = true;
    set_limits(t);
    sk_sched_flush_all(t->sched);
    sk_txns_kick(t);
}

void sk_txns_assigned(struct sk_txns *t, struct sk_part *p) { sk_warmup_marks(t->warmup, p); }

void sk_txns_revoked(struct sk_txns *t, const struct sk_part *p)
{
    sk_sched_drop_part(t->sched, p, t->ops.drop, t->ud);
    sk_warmup_forget(t->warmup, p);
}

/* ---- watchdog and gauges ------------------------------------------------ */

static const struct txn *oldest(const struct sk_txns *t)
{
    const struct txn *o = NULL;
    for (const struct sk_list *n = t->all.next; n != &t->all; n = n->next) {
        const struct txn *x = sk_list_const_entry(n, struct txn, link);
        if (holds_connection(x->state) && (!o || x->started < o->started))
            o = x;
    }
    return o;
}

uint64_t sk_txns_oldest(const struct sk_txns *t)
{
    const struct txn *o = oldest(t);
    return o ? o->started : 0;
}

void sk_txns_log_wedged(const struct sk_txns *t, uint64_t now, unsigned limit_s)
{
    const struct txn *x = oldest(t);
    if (!x)
        return;
    char name[48];
    struct sk_log_ctx lc = batch_ctx(x->bs[0], x, 0);
    sk_logc(SK_LOG_ERR, &lc,
            "pipeline wedged: the transaction of %s has held db#%d for %llu s (limit %u s); "
            "withholding the watchdog so that systemd restarts the daemon",
            txn_name(x, name, sizeof name), x->c ? sk_db_conn_id(x->c) : -1,
            (unsigned long long)((now - x->started) / 1000000u), limit_s);
}

size_t sk_txns_known_users(const struct sk_txns *t) { return sk_known_count(t->known); }

size_t sk_txns_preloaded(const struct sk_txns *t) { return sk_warmup_preloaded(t->warmup); }

/* ---- life --------------------------------------------------------------- */

static void warmup_done(void *ud) { sk_txns_kick(ud); }

static void warmup_marks_read(void *ud, struct sk_part *p)
{
    struct sk_txns *t = ud;
    t->ops.marks_read(t->ud, p);
}

int sk_txns_new(sd_event *loop, const struct sk_config *cfg, struct sk_db *db, struct sk_stats *st,
                const struct sk_txns_ops *ops, void *ud, struct sk_txns **out)
{
    struct sk_txns *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    *t = (struct sk_txns){.loop = loop, .cfg = cfg, .db = db, .st = st, .ops = *ops, .ud = ud};
    sk_list_init(&t->all);
    sk_rng_seed(&t->rng, ((uint64_t)getpid() << 32 ^ (uint64_t)time(NULL)) + 1); /* not the pool's sequence */
    int r = -ENOMEM;
    if (!(t->sched = sk_sched_new()) || !(t->known = sk_known_new(cfg->known_users)) ||
        sk_warmup_new(loop, cfg, db, t->known, warmup_done, warmup_marks_read, t, &t->warmup) < 0)
        goto fail;
    if ((r = sd_event_add_time(loop, &t->linger, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_linger, t)) < 0)
        goto fail;
    sd_event_source_set_enabled(t->linger, SD_EVENT_OFF);
    set_limits(t);
    *out = t;
    return 0;
fail:
    sk_txns_free(t);
    return r;
}

void sk_txns_free(struct sk_txns *t)
{
    if (!t)
        return;
    /* Transactions still running or waiting out a backoff give their
     * batches back, so that the scheduler hands every message to drop. */
    while (t->all.next && !sk_list_empty(&t->all)) {
        struct txn *x = sk_list_entry(t->all.next, struct txn, link);
        x->c = NULL; /* the pool is torn down after us, without callbacks */
        give_back(x);
    }
    if (t->sched)
        sk_sched_free(t->sched, t->ops.drop, t->ud);
    t->linger = sd_event_source_disable_unref(t->linger);
    sk_warmup_free(t->warmup);
    sk_known_free(t->known);
    free(t);
}
