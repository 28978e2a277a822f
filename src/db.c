/* db — non-blocking MariaDB connection pool, see include/db.h.
 *
 * Two layers in one file:
 *  - readiness: conn_wait() turns a MYSQL_WAIT_* status into an io event
 *    and a timer; conn_resume() turns their firing back into the status the
 *    pending *_cont call wants.  Nothing above it sees a file descriptor.
 *  - meaning: one step function per operation (connect, query, store,
 *    next result, rollback, close) that calls _start or _cont and, once
 *    the call completes, decides the next step. */
#include "db.h"

#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum conn_state { CS_DOWN, CS_CONNECTING, CS_IDLE, CS_PINGING, CS_BUSY, CS_CLOSING };
/* The Connector/C call in flight (only while waiting on the loop). */
enum conn_op { OP_NONE, OP_CONNECT, OP_QUERY, OP_STORE, OP_NEXT, OP_ROLLBACK, OP_PING, OP_CLOSE };



struct sk_db_conn {
    struct sk_db *db;
    int id;
    enum conn_state state;
    enum conn_op op;
    MYSQL mysql;
    bool mysql_live; /* mysql_init done, mysql_close not yet */
    int fd;
    sd_event_source *io;
    sd_event_source *timer; /* MYSQL_WAIT_TIMEOUT, or the reconnect backoff when DOWN */
    unsigned failures;      /* consecutive failed connects, for the backoff */
    bool closing_for_good;  /* shutdown: do not reconnect */
    /* the query in flight */
    sk_db_row_fn on_row;
    sk_db_done_fn on_done;
    void *ud;
    unsigned stmt;
    struct sk_db_error err; /* saved while rolling back after a failure */
    /* what the pending _start/_cont call returned */
    MYSQL *r_conn;
    int r_int;
    my_bool r_bool;
    MYSQL_RES *r_res;
};

struct sk_db {
    sd_event *loop;
    const struct sk_config *cfg;
    char host[64]; /* numeric, resolved once */
    struct sk_db_conn *conns;
    unsigned n;
    void (*on_idle)(void *ud);
    void *ud;
    void (*on_closed)(void *ud);
    bool shutting_down;
    unsigned long reconnects;
    uint64_t rng;
};

static void conn_step(struct sk_db_conn *c, int status);
static void conn_wait(struct sk_db_conn *c, int status);

/* After a _start call: wait on the loop for what it asks, or, when it
 * completed at once (status 0), take the next step now. */
static void started(struct sk_db_conn *c, int st)
{
    if (st)
        conn_wait(c, st);
    else
        conn_step(c, 0);
}
static void conn_connect(struct sk_db_conn *c);
static void conn_lost(struct sk_db_conn *c, const char *why);
static void conn_close_gracefully(struct sk_db_conn *c);

static struct sk_log_ctx conn_ctx(const struct sk_db_conn *c, unsigned err)
{
    struct sk_log_ctx x = SK_LOG_CTX_NONE;
    x.db_conn = c->id;
    x.db_errno = err;
    return x;
}

static uint64_t now_usec(sd_event *loop)
{
    uint64_t t = 0;
    sd_event_now(loop, CLOCK_MONOTONIC, &t);
    return t;
}

static uint64_t db_rand(struct sk_db *db)
{
    /* xorshift64*: jitter only, no need for quality */
    db->rng ^= db->rng >> 12;
    db->rng ^= db->rng << 25;
    db->rng ^= db->rng >> 27;
    return db->rng * 2685821657736338717ULL;
}

int sk_db_resolve(const char *host, char *out, size_t outlen, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int r = getaddrinfo(host, NULL, &hints, &ai);
    if (r != 0) {
        snprintf(err, errlen, "cannot resolve database host \"%s\": %s", host, gai_strerror(r));
        return -1;
    }
    r = getnameinfo(ai->ai_addr, ai->ai_addrlen, out, (socklen_t)outlen, NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(ai);
    if (r != 0) {
        snprintf(err, errlen, "cannot resolve database host \"%s\": %s", host, gai_strerror(r));
        return -1;
    }
    return 0;
}

/* ---- readiness ------------------------------------------------------- */

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *ud);
static int on_timer(sd_event_source *s, uint64_t usec, void *ud);

static void conn_unwatch(struct sk_db_conn *c)
{
    c->io = sd_event_source_disable_unref(c->io);
    c->fd = -1;
    if (c->timer)
        sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
}

static int arm_timer(struct sk_db_conn *c, uint64_t usec_from_now)
{
    uint64_t when = now_usec(c->db->loop) + usec_from_now;
    if (!c->timer) {
        int r = sd_event_add_time(c->db->loop, &c->timer, CLOCK_MONOTONIC, when, 1000, on_timer, c);
        if (r < 0)
            return r;
        return sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
    }
    int r = sd_event_source_set_time(c->timer, when);
    if (r < 0)
        return r;
    return sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

/* Hand a MYSQL_WAIT_* status to the loop.  The socket can change during
 * connect (Connector/C may try several addresses), so it is re-read on
 * every wait. */
static void conn_wait(struct sk_db_conn *c, int status)
{
    int fd = (int)mysql_get_socket(&c->mysql);
    uint32_t ev = 0;
    if (status & MYSQL_WAIT_READ)
        ev |= EPOLLIN;
    if (status & MYSQL_WAIT_WRITE)
        ev |= EPOLLOUT;
    if (status & MYSQL_WAIT_EXCEPT)
        ev |= EPOLLPRI;
    int r = 0;
    if (fd != c->fd) {
        c->io = sd_event_source_disable_unref(c->io);
        c->fd = fd;
        if (fd >= 0 && ev)
            r = sd_event_add_io(c->db->loop, &c->io, fd, ev, on_io, c);
    } else if (c->io) {
        r = sd_event_source_set_io_events(c->io, ev);
        if (r >= 0)
            r = sd_event_source_set_enabled(c->io, ev ? SD_EVENT_ON : SD_EVENT_OFF);
    } else if (fd >= 0 && ev) {
        r = sd_event_add_io(c->db->loop, &c->io, fd, ev, on_io, c);
    }
    if (r >= 0 && (status & MYSQL_WAIT_TIMEOUT))
        r = arm_timer(c, (uint64_t)mysql_get_timeout_value_ms(&c->mysql) * 1000u);
    else if (r >= 0 && c->timer)
        r = sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
    if (r < 0) {
        /* Cannot watch the socket: nothing would ever resume the call. */
        log_error("db#%d: cannot watch socket %d: %s", c->id, fd, strerror(-r));
        abort();
    }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    (void)s;
    (void)fd;
    struct sk_db_conn *c = ud;
    int status = 0;
    if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
        status |= MYSQL_WAIT_READ;
    if (revents & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        status |= MYSQL_WAIT_WRITE;
    if (revents & EPOLLPRI)
        status |= MYSQL_WAIT_EXCEPT;
    conn_step(c, status);
    return 0;
}

static void conn_ping(struct sk_db_conn *c);

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    struct sk_db_conn *c = ud;
    if (c->state == CS_DOWN) {
        conn_connect(c); /* backoff over */
        return 0;
    }
    if (c->state == CS_IDLE && c->op == OP_NONE) {
        conn_ping(c); /* idle long enough */
        return 0;
    }
    conn_step(c, MYSQL_WAIT_TIMEOUT);
    return 0;
}

/* ---- meaning --------------------------------------------------------- */

/* A connection becomes free: watch its socket so that a server closing it
 * while idle is noticed at once, then let the pool's user dispatch work. */
static void become_idle(struct sk_db_conn *c)
{
    bool was_idle = c->state == CS_IDLE;
    c->state = CS_IDLE;
    conn_wait(c, MYSQL_WAIT_READ);
    /* An idle connection is pinged after db.idle_ping_ms: a server or
     * firewall that dropped it silently (no FIN) is found before a batch
     * needs it. */
    if (arm_timer(c, (uint64_t)c->db->cfg->db_idle_ping_ms * 1000u) < 0)
        log_warning("db#%d: cannot arm the idle ping timer", c->id);
    if (!was_idle && !c->db->shutting_down && c->db->on_idle)
        c->db->on_idle(c->db->ud);
}

static void conn_ping(struct sk_db_conn *c)
{
    c->state = CS_PINGING;
    c->op = OP_PING;
    int st = mysql_ping_start(&c->r_int, &c->mysql);
    started(c, st);
}

static void maybe_all_closed(struct sk_db *db)
{
    if (!db->shutting_down || !db->on_closed)
        return;
    for (unsigned i = 0; i < db->n; i++)
        if (db->conns[i].state != CS_DOWN || db->conns[i].mysql_live)
            return;
    void (*cb)(void *) = db->on_closed;
    db->on_closed = NULL;
    cb(db->ud);
}

static void schedule_reconnect(struct sk_db_conn *c)
{
    struct sk_db *db = c->db;
    c->state = CS_DOWN;
    c->op = OP_NONE;
    if (db->shutting_down || c->closing_for_good) {
        maybe_all_closed(db);
        return;
    }
    /* Exponential backoff with full jitter in [d/2, d]: no reconnect storms
     * when a server comes back and every instance retries at once. */
    uint64_t d = db->cfg->db_retry_min_ms;
    for (unsigned i = 0; i < c->failures && d < db->cfg->db_retry_max_ms; i++)
        d *= 2;
    if (d > db->cfg->db_retry_max_ms)
        d = db->cfg->db_retry_max_ms;
    d = d / 2 + db_rand(db) % (d / 2 + 1);
    log_debug("db#%d: reconnecting in %llu ms", c->id, (unsigned long long)d);
    if (arm_timer(c, d * 1000u) < 0) {
        log_error("db#%d: cannot arm reconnect timer", c->id);
        abort();
    }
}

static void conn_free_mysql(struct sk_db_conn *c)
{
    conn_unwatch(c);
    if (c->r_res) {
        mysql_free_result(c->r_res); /* stored result: no I/O */
        c->r_res = NULL;
    }
    c->mysql_live = false;
}

static void conn_connect(struct sk_db_conn *c)
{
    struct sk_db *db = c->db;
    const struct sk_config *cfg = db->cfg;
    if (!mysql_init(&c->mysql)) {
        log_error("db#%d: mysql_init failed: out of memory", c->id);
        c->failures++;
        schedule_reconnect(c);
        return;
    }
    c->mysql_live = true;
    unsigned ct = (cfg->db_connect_timeout_ms + 999) / 1000;
    unsigned rt = (cfg->db_query_timeout_ms + 999) / 1000;
    my_bool off = 0;
    /* Session settings the SQL builders rely on: utf8mb4 and backslash
     * escapes (sk_buf_sql_str), READ COMMITTED (no gap locks between the
     * pool's connections), strict mode (a refused value is an error, never a
     * silent truncation). */
    static const char init_cmd[] =
        "SET SESSION sql_mode='STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_ZERO_DATE,"
        "ERROR_FOR_DIVISION_BY_ZERO', SESSION tx_isolation='READ-COMMITTED', SESSION autocommit=1";
    if (mysql_options(&c->mysql, MYSQL_OPT_NONBLOCK, 0) ||
        mysql_options(&c->mysql, MYSQL_OPT_CONNECT_TIMEOUT, &ct) ||
        mysql_options(&c->mysql, MYSQL_OPT_READ_TIMEOUT, &rt) ||
        mysql_options(&c->mysql, MYSQL_OPT_WRITE_TIMEOUT, &rt) ||
        mysql_options(&c->mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4") ||
        mysql_options(&c->mysql, MYSQL_OPT_LOCAL_INFILE, &off) ||
        mysql_options(&c->mysql, MYSQL_INIT_COMMAND, init_cmd)) {
        log_error("db#%d: cannot set connection options: %s", c->id, mysql_error(&c->mysql));
        mysql_close(&c->mysql); /* never connected: no I/O */
        conn_free_mysql(c);
        c->failures++;
        schedule_reconnect(c);
        return;
    }
    c->state = CS_CONNECTING;
    c->op = OP_CONNECT;
    const struct sk_dburl *u = &cfg->db;
    int st = mysql_real_connect_start(&c->r_conn, &c->mysql, u->socket ? NULL : db->host, u->user,
                                      cfg->db_password, u->dbname, u->socket ? 0 : u->port,
                                      u->socket, CLIENT_MULTI_STATEMENTS | CLIENT_MULTI_RESULTS);
    started(c, st);
}

static void fill_err(struct sk_db_conn *c, struct sk_db_error *e)
{
    e->code = mysql_errno(&c->mysql);
    e->stmt = c->stmt;
    e->fault = sk_db_classify(e->code);
    if (e->fault == SK_DB_OK)
        e->fault = SK_DB_CONN;
    snprintf(e->message, sizeof e->message, "%s", mysql_error(&c->mysql));
}

/* Report the query's end to its owner, with the connection acquired. */
static void finish_query(struct sk_db_conn *c, const struct sk_db_error *err)
{
    sk_db_done_fn done = c->on_done;
    void *ud = c->ud;
    c->on_done = NULL;
    c->on_row = NULL;
    c->op = OP_NONE;
    if (done)
        done(ud, c, err);
}

/* A query failed: roll back an open transaction (if the connection still
 * works) before telling the owner, so a retried batch starts clean. */
static void query_failed(struct sk_db_conn *c)
{
    fill_err(c, &c->err);
    if (c->err.fault == SK_DB_CONN) {
        struct sk_db_error e = c->err;
        conn_lost(c, e.message);
        finish_query(c, &e);
        return;
    }
    c->op = OP_ROLLBACK;
    int st = mysql_rollback_start(&c->r_bool, &c->mysql);
    started(c, st);
}

static void store_next(struct sk_db_conn *c)
{
    c->op = OP_STORE;
    int st = mysql_store_result_start(&c->r_res, &c->mysql);
    started(c, st);
}

static void conn_step(struct sk_db_conn *c, int status)
{
    int st = 0;
    switch (c->op) {
    case OP_CONNECT:
        if (status)
            st = mysql_real_connect_cont(&c->r_conn, &c->mysql, status);
        if (st) {
            conn_wait(c, st);
            return;
        }
        if (!c->r_conn) {
            struct sk_log_ctx x = conn_ctx(c, mysql_errno(&c->mysql));
            /* Log the first failure and then every tenth: a server that stays
             * down must not flood the journal. */
            if (c->failures % 10 == 0)
                sk_logc(SK_LOG_WARNING, &x, "db#%d %s: connect failed: %s; retrying with backoff",
                        c->id, c->db->cfg->db.socket ? c->db->cfg->db.socket : c->db->host,
                        mysql_error(&c->mysql));
            c->failures++;
            c->db->reconnects++;
            c->op = OP_CLOSE;
            st = mysql_close_start(&c->mysql);
            if (st) {
                conn_wait(c, st);
                return;
            }
            conn_free_mysql(c);
            schedule_reconnect(c);
            return;
        }
        if (c->failures)
            log_notice("db#%d: connected after %u failed attempts", c->id, c->failures);
        else
            log_info("db#%d: connected (server %s, thread %lu)", c->id,
                     mysql_get_server_info(&c->mysql), mysql_thread_id(&c->mysql));
        c->failures = 0;
        c->op = OP_NONE;
        become_idle(c);
        return;

    case OP_QUERY:
        if (status)
            st = mysql_real_query_cont(&c->r_int, &c->mysql, status);
        if (st) {
            conn_wait(c, st);
            return;
        }
        if (c->r_int) {
            query_failed(c);
            return;
        }
        store_next(c);
        return;

    case OP_STORE:
        if (status)
            st = mysql_store_result_cont(&c->r_res, &c->mysql, status);
        if (st) {
            conn_wait(c, st);
            return;
        }
        if (c->r_res) {
            unsigned nf = mysql_num_fields(c->r_res);
            MYSQL_ROW row;
            while ((row = mysql_fetch_row(c->r_res))) /* stored: no I/O */
                if (c->on_row)
                    c->on_row(c->ud, c->stmt, row, mysql_fetch_lengths(c->r_res), nf);
            mysql_free_result(c->r_res); /* stored result: no I/O */
            c->r_res = NULL;
        } else if (mysql_field_count(&c->mysql) > 0) {
            query_failed(c);
            return;
        }
        if (!mysql_more_results(&c->mysql)) {
            conn_wait(c, 0);
            finish_query(c, NULL);
            return;
        }
        c->stmt++;
        c->op = OP_NEXT;
        st = mysql_next_result_start(&c->r_int, &c->mysql);
        started(c, st);
        return;

    case OP_NEXT:
        if (status)
            st = mysql_next_result_cont(&c->r_int, &c->mysql, status);
        if (st) {
            conn_wait(c, st);
            return;
        }
        if (c->r_int > 0) {
            query_failed(c);
            return;
        }
        if (c->r_int < 0) { /* no more results */
            conn_wait(c, 0);
            finish_query(c, NULL);
            return;
        }
        store_next(c);
        return;

    case OP_ROLLBACK:
        if (status)
            st = mysql_rollback_cont(&c->r_bool, &c->mysql, status);
        if (st) {
            conn_wait(c, st);
            return;
        }
        if (c->r_bool) {
            struct sk_db_error e = c->err;
            char why[300];
            snprintf(why, sizeof why, "rollback failed: %s", mysql_error(&c->mysql));
            conn_lost(c, why);
            e.fault = SK_DB_CONN;
            finish_query(c, &e);
            return;
        }
        conn_wait(c, 0);
        {
            struct sk_db_error e = c->err;
            finish_query(c, &e);
        }
        return;

    case OP_PING:
        if (status)
            st = mysql_ping_cont(&c->r_int, &c->mysql, status);
        if (st) {
            conn_wait(c, st);
            return;
        }
        if (c->r_int) {
            char why[300];
            snprintf(why, sizeof why, "idle ping failed: %s", mysql_error(&c->mysql));
            conn_lost(c, why);
            return;
        }
        c->op = OP_NONE;
        log_debug("db#%d: idle ping ok", c->id);
        if (c->db->shutting_down || c->closing_for_good) {
            c->state = CS_IDLE;
            conn_close_gracefully(c);
            return;
        }
        become_idle(c);
        return;

    case OP_CLOSE:
        if (status)
            st = mysql_close_cont(&c->mysql, status);
        if (st) {
            conn_wait(c, st);
            return;
        }
        conn_free_mysql(c);
        schedule_reconnect(c);
        return;

    case OP_NONE:
        /* Readable while idle: the server closed the connection (timeout,
         * KILL, restart).  Notice it now rather than on the next batch. */
        if (c->state == CS_IDLE)
            conn_lost(c, "server closed the idle connection");
        else
            conn_wait(c, 0);
        return;
    }
    abort(); /* unreachable: every op is handled above */
}

/* The connection is unusable: close it (non-blocking) and rebuild it. */
static void conn_lost(struct sk_db_conn *c, const char *why)
{
    struct sk_log_ctx x = conn_ctx(c, mysql_errno(&c->mysql));
    sk_logc(SK_LOG_WARNING, &x, "db#%d: closing: %s", c->id, why);
    c->db->reconnects++;
    if (c->r_res) {
        mysql_free_result(c->r_res); /* stored result: no I/O */
        c->r_res = NULL;
    }
    c->state = CS_CLOSING;
    c->op = OP_CLOSE;
    /* The socket is dead or in an unknown protocol state: shut it down so
     * that the close below cannot wait on it. */
    int fd = (int)mysql_get_socket(&c->mysql);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    int st = mysql_close_start(&c->mysql);
    if (st) {
        conn_wait(c, st);
        return;
    }
    conn_free_mysql(c);
    schedule_reconnect(c);
}

/* ---- public ---------------------------------------------------------- */

int sk_db_new(sd_event *loop, const struct sk_config *cfg, void (*on_idle)(void *ud), void *ud,
              struct sk_db **out)
{
    struct sk_db *db = calloc(1, sizeof *db);
    if (!db)
        return -ENOMEM;
    db->n = cfg->db_pool_size;
    db->conns = calloc(db->n, sizeof *db->conns);
    if (!db->conns) {
        free(db);
        return -ENOMEM;
    }
    db->loop = loop;
    db->cfg = cfg;
    db->on_idle = on_idle;
    db->ud = ud;
    uint64_t seed = (uint64_t)(unsigned)getpid();
    seed = seed * UINT64_C(0x9E3779B97F4A7C15);
    db->rng = seed ^ (uint64_t)time(NULL);
    if (!db->rng)
        db->rng = 1;
    if (!cfg->db.socket) {
        char err[256];
        if (sk_db_resolve(cfg->db.host, db->host, sizeof db->host, err, sizeof err) < 0) {
            log_error("%s", err);
            sk_db_free(db);
            return -EHOSTUNREACH;
        }
    }
    for (unsigned i = 0; i < db->n; i++) {
        db->conns[i].db = db;
        db->conns[i].id = (int)i;
        db->conns[i].fd = -1;
        db->conns[i].state = CS_DOWN;
    }
    *out = db;
    return 0;
}

void sk_db_start(struct sk_db *db)
{
    for (unsigned i = 0; i < db->n; i++)
        if (db->conns[i].state == CS_DOWN && !db->conns[i].mysql_live)
            conn_connect(&db->conns[i]);
}

static void conn_close_gracefully(struct sk_db_conn *c)
{
    c->closing_for_good = true;
    if (c->state == CS_DOWN) {
        if (c->timer)
            sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        return;
    }
    if (c->state != CS_IDLE)
        return; /* connecting / closing: finishes on its own; busy: on release */
    c->state = CS_CLOSING;
    c->op = OP_CLOSE;
    int st = mysql_close_start(&c->mysql);
    if (st) {
        conn_wait(c, st);
        return;
    }
    conn_free_mysql(c);
    schedule_reconnect(c);
}

void sk_db_shutdown(struct sk_db *db, void (*on_closed)(void *ud))
{
    db->shutting_down = true;
    db->on_closed = on_closed;
    for (unsigned i = 0; i < db->n; i++)
        conn_close_gracefully(&db->conns[i]);
    maybe_all_closed(db);
}

void sk_db_free(struct sk_db *db)
{
    if (!db)
        return;
    for (unsigned i = 0; i < db->n; i++) {
        struct sk_db_conn *c = &db->conns[i];
        if (c->mysql_live) {
            /* Last resort at exit: the socket is shut down first so the
             * QUIT that mysql_close sends cannot block. */
            int fd = (int)mysql_get_socket(&c->mysql);
            if (fd >= 0)
                shutdown(fd, SHUT_RDWR);
            if (c->r_res)
                mysql_free_result(c->r_res); /* stored result: no I/O */
            c->r_res = NULL;
            mysql_close(&c->mysql); /* after the loop, socket shut down: no I/O wait */
        }
        c->io = sd_event_source_disable_unref(c->io);
        c->timer = sd_event_source_disable_unref(c->timer);
    }
    free(db->conns);
    free(db);
}

struct sk_db_conn *sk_db_acquire(struct sk_db *db)
{
    if (db->shutting_down)
        return NULL;
    for (unsigned i = 0; i < db->n; i++) {
        struct sk_db_conn *c = &db->conns[i];
        if (c->state == CS_IDLE) {
            c->state = CS_BUSY;
            return c;
        }
    }
    return NULL;
}

void sk_db_release(struct sk_db_conn *c)
{
    if (c->state != CS_BUSY)
        return; /* lost meanwhile: it is being rebuilt */
    if (c->op != OP_NONE) {
        log_error("db#%d: released with a query in flight", c->id);
        abort();
    }
    if (c->db->shutting_down || c->closing_for_good) {
        c->state = CS_IDLE;
        conn_close_gracefully(c);
        return;
    }
    become_idle(c);
}

int sk_db_query(struct sk_db_conn *c, const char *sql, size_t len, sk_db_row_fn on_row,
                sk_db_done_fn on_done, void *ud)
{
    if (c->state != CS_BUSY || c->op != OP_NONE)
        return -EBUSY;
    c->on_row = on_row;
    c->on_done = on_done;
    c->ud = ud;
    c->stmt = 0;
    c->err = (struct sk_db_error){0};
    c->op = OP_QUERY;
    int st = mysql_real_query_start(&c->r_int, &c->mysql, sql, (unsigned long)len);
    started(c, st);
    return 0;
}

int sk_db_conn_id(const struct sk_db_conn *c) { return c->id; }

unsigned sk_db_count_up(const struct sk_db *db)
{
    unsigned n = 0;
    for (unsigned i = 0; i < db->n; i++)
        n += db->conns[i].state == CS_IDLE || db->conns[i].state == CS_BUSY ||
             db->conns[i].state == CS_PINGING;
    return n;
}

unsigned sk_db_count_idle(const struct sk_db *db)
{
    unsigned n = 0;
    for (unsigned i = 0; i < db->n; i++)
        n += db->conns[i].state == CS_IDLE;
    return n;
}

unsigned long sk_db_reconnects(const struct sk_db *db) { return db->reconnects; }
