/* dbconn — one non-blocking MariaDB connection, see include/dbconn.h.
 *
 * Two parts:
 *  - readiness: conn_wait() turns a MYSQL_WAIT_* status into an io event
 *    and the wait timer; on_io() and on_wait_timer() turn their firing back
 *    into the status the pending _cont call wants and hand it to
 *    conn_resume().  Nothing below that sees a file descriptor.
 *  - meaning: one small function per Connector/C call, which starts it or
 *    continues it and, once it completed, takes the next step.
 * conn_set_state() is the only place that changes the state. */
#include "dbconn.h"

#include <errno.h>
#include <mysql.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "dbtls.h"
#include "log.h"
#include "resolve.h"
#include "txnpolicy.h"

struct sk_db_conn {
    sd_event *loop;
    const struct sk_config *cfg;
    char host[SK_RESOLVE_ADDR_MAX]; /* numeric: where this connect goes, see dbconn_connect */
    /* What mysql_real_connect_start is given as the host: the address,
     * then, at the connect's first pause, the name the certificate must be
     * valid for (see include/dbtls.h).  Connector/C keeps the pointer. */
    char connect_host[256];
    bool tls_named;         /* connect_host holds the name */
    char tls_state[200];    /* the session's TLS in words, see sk_dbtls_connected */
    int id;
    enum dbconn_state state;
    const struct dbconn_events *ev;
    void *owner;
    MYSQL mysql; /* initialised in every state but DOWN */
    int fd;      /* the socket io watches, -1 when none */
    sd_event_source *io;
    sd_event_source *wait_timer; /* the MYSQL_WAIT_TIMEOUT of the call in flight, nothing else */
    unsigned failures;           /* connects failed in a row */
    unsigned long breaks;        /* connects failed and connections lost, in all */
    bool setting_up;             /* connected, the session statement in flight */
    bool timed_out;              /* the wait timer ended the call in flight */
    bool read_only;              /* the session's @@read_only, read by the session statement */
    unsigned long max_packet;    /* the session's max_allowed_packet, 0 until read */
    char charset[3][32];         /* character_set_client, _connection, _results */
    char session_sql[400];       /* the session statement, see session_start() */
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

/* ---- the state ------------------------------------------------------- */

static const char *const state_names[] = {
    [DBC_DOWN] = "DOWN",         [DBC_CONNECTING] = "CONNECTING", [DBC_IDLE] = "IDLE",
    [DBC_PINGING] = "PINGING",   [DBC_HELD] = "HELD",             [DBC_QUERY] = "QUERY",
    [DBC_STORE] = "STORE",       [DBC_NEXT] = "NEXT",             [DBC_ROLLBACK] = "ROLLBACK",
    [DBC_CLOSING] = "CLOSING",
};

#define TO(s) (1u << (s))
/* Where each state may go.  A call that fails for its connection goes to
 * CLOSING; a failed statement rolls back first; CONNECTING falls back to
 * DOWN only when the handle could not even be set up.  A new session is
 * HELD by the connection itself while its session statement runs (QUERY,
 * STORE, NEXT), and goes to IDLE once that passed or to CLOSING when it
 * did not. */
static const unsigned moves[] = {
    [DBC_DOWN] = TO(DBC_CONNECTING),
    [DBC_CONNECTING] = TO(DBC_HELD) | TO(DBC_CLOSING) | TO(DBC_DOWN),
    [DBC_IDLE] = TO(DBC_HELD) | TO(DBC_PINGING) | TO(DBC_CLOSING),
    [DBC_PINGING] = TO(DBC_IDLE) | TO(DBC_CLOSING),
    [DBC_HELD] = TO(DBC_IDLE) | TO(DBC_QUERY) | TO(DBC_CLOSING),
    [DBC_QUERY] = TO(DBC_STORE) | TO(DBC_ROLLBACK) | TO(DBC_CLOSING),
    [DBC_STORE] = TO(DBC_NEXT) | TO(DBC_HELD) | TO(DBC_ROLLBACK) | TO(DBC_CLOSING),
    [DBC_NEXT] = TO(DBC_STORE) | TO(DBC_HELD) | TO(DBC_ROLLBACK) | TO(DBC_CLOSING),
    [DBC_ROLLBACK] = TO(DBC_HELD) | TO(DBC_CLOSING),
    [DBC_CLOSING] = TO(DBC_DOWN),
};

const char *dbconn_state_name(enum dbconn_state s)
{
    if ((unsigned)s >= sizeof state_names / sizeof *state_names)
        return "?";
    return state_names[s];
}

static void conn_set_state(struct sk_db_conn *c, enum dbconn_state to)
{
    if (!(moves[c->state] & TO(to))) {
        log_error("db#%d: impossible state change from %s to %s", c->id,
                  dbconn_state_name(c->state), dbconn_state_name(to));
        abort();
    }
    c->state = to;
}

static struct sk_log_ctx conn_ctx(const struct sk_db_conn *c, unsigned err)
{
    struct sk_log_ctx x = SK_LOG_CTX_NONE;
    x.db_conn = c->id;
    x.db_errno = err;
    return x;
}

/* ---- readiness ------------------------------------------------------- */

static void conn_resume(struct sk_db_conn *c, int status);

static void conn_unwatch(struct sk_db_conn *c)
{
    c->io = sd_event_source_disable_unref(c->io);
    c->fd = -1;
    sd_event_source_set_enabled(c->wait_timer, SD_EVENT_OFF);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    (void)s;
    (void)fd;
    int status = 0;
    if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
        status |= MYSQL_WAIT_READ;
    if (revents & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        status |= MYSQL_WAIT_WRITE;
    if (revents & EPOLLPRI)
        status |= MYSQL_WAIT_EXCEPT;
    conn_resume(ud, status);
    return 0;
}

static int on_wait_timer(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    struct sk_db_conn *c = ud;
    /* Whatever the call in flight reports next, it is because the server
     * did not answer in time, not because the connection broke. */
    c->timed_out = true;
    conn_resume(c, MYSQL_WAIT_TIMEOUT);
    return 0;
}

static int wait_timeout(struct sk_db_conn *c, bool wanted)
{
    if (!wanted)
        return sd_event_source_set_enabled(c->wait_timer, SD_EVENT_OFF);
    uint64_t usec = (uint64_t)mysql_get_timeout_value_ms(&c->mysql) * 1000u;
    int r = sd_event_source_set_time_relative(c->wait_timer, usec);
    return r < 0 ? r : sd_event_source_set_enabled(c->wait_timer, SD_EVENT_ONESHOT);
}

/* Hand a MYSQL_WAIT_* status to the loop (none: wait for nothing).  The
 * socket can change during connect (Connector/C may try several
 * addresses), so it is read again on every wait. */
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
            r = sd_event_add_io(c->loop, &c->io, fd, ev, on_io, c);
    } else if (c->io) {
        r = sd_event_source_set_io_events(c->io, ev);
        if (r >= 0)
            r = sd_event_source_set_enabled(c->io, ev ? SD_EVENT_ON : SD_EVENT_OFF);
    } else if (fd >= 0 && ev) {
        r = sd_event_add_io(c->loop, &c->io, fd, ev, on_io, c);
    }
    if (r >= 0)
        r = wait_timeout(c, status & MYSQL_WAIT_TIMEOUT);
    if (r < 0) {
        /* Cannot watch the socket: nothing would ever resume the call. */
        log_error("db#%d: cannot watch socket %d: %s", c->id, fd, strerror(-r));
        abort();
    }
}

/* After a _cont call: wait on the loop again when it asks for more. */
static bool waiting(struct sk_db_conn *c, int st)
{
    if (st)
        conn_wait(c, st);
    return st != 0;
}

/* After a _start call: wait on the loop for what it asks, or, when it
 * completed at once, take the next step now. */
static void started(struct sk_db_conn *c, int st)
{
    if (st)
        conn_wait(c, st);
    else
        conn_resume(c, 0);
}

/* ---- meaning: opening and closing ------------------------------------ */

static void drop_result(struct sk_db_conn *c)
{
    if (c->r_res)
        mysql_free_result(c->r_res); /* stored result: no I/O */
    c->r_res = NULL;
}

static void close_start(struct sk_db_conn *c)
{
    conn_set_state(c, DBC_CLOSING);
    started(c, mysql_close_start(&c->mysql));
}

static void close_cont(struct sk_db_conn *c, int status)
{
    if (status && waiting(c, mysql_close_cont(&c->mysql, status)))
        return;
    conn_unwatch(c);
    drop_result(c);
    conn_set_state(c, DBC_DOWN);
    c->ev->down(c->owner, c);
}

/* The connection is unusable: close it (non-blocking); the pool rebuilds
 * it once it is down. */
static void conn_drop(struct sk_db_conn *c, enum sk_log_level level, const char *why)
{
    struct sk_log_ctx x = conn_ctx(c, mysql_errno(&c->mysql));
    sk_logc(level, &x, "db#%d: closing: %s", c->id, why);
    c->breaks++;
    if (c->setting_up)
        c->failures++; /* a connect that failed: counted before the close asks for a backoff */
    drop_result(c);
    /* The socket is dead or in an unknown protocol state: shut it down so
     * that the close cannot wait on it. */
    int fd = (int)mysql_get_socket(&c->mysql);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    close_start(c);
}

static void conn_lost(struct sk_db_conn *c, const char *why) { conn_drop(c, SK_LOG_WARNING, why); }

/* A call failed in a way that leaves the connection unusable. */
static void call_failed(struct sk_db_conn *c, const char *call)
{
    char why[300];
    snprintf(why, sizeof why, "%s failed: %s", call, mysql_error(&c->mysql));
    conn_lost(c, why);
}

/* Free for the pool: watch the socket so that a server closing it while
 * idle is noticed at once. */
static void become_free(struct sk_db_conn *c)
{
    conn_set_state(c, DBC_IDLE);
    conn_wait(c, MYSQL_WAIT_READ);
    c->ev->free(c->owner, c);
}

/* Session settings the SQL builders rely on: utf8mb4 and backslash escapes
 * (sk_buf_sql_str), READ COMMITTED (no gap locks between the pool's
 * connections), strict mode (a refused value is an error, never a silent
 * truncation), and a server-side limit on every statement
 * (max_statement_time, a little below db.query_timeout_ms, see
 * sk_policy_statement_ms: the server ends a statement that runs too long,
 * and lets go of its locks, before the client gives up on it).
 *
 * They are the first statement of every session, run by the state machine
 * like any query, and not a MYSQL_INIT_COMMAND or the handshake's character
 * set alone: the server runs its init_connect at login, after the
 * handshake, for every account without SUPER, and an init_connect='SET
 * NAMES gbk' would otherwise turn every name into mojibake and let a
 * multi-byte character swallow an escaping backslash.  The same round trip
 * reads back what the session ended up with, the session's
 * max_allowed_packet, which no statement may exceed, and @@read_only: a
 * read-only server is not the primary (a replica, or the old primary after
 * a failover), and a session on it would only have its writes refused.
 *
 * idle_transaction_timeout (db.query_timeout_ms, whole seconds): the
 * daemon never leaves a transaction idle between two statements longer
 * than a round trip, so a session that waits longer lost its client (an
 * answer dropped by a silent network, the connection given up and closed
 * where no reset reaches the server); the server ends it and lets go of its
 * locks, instead of holding the games' rows until wait_timeout. */
static const char session_fmt[] =
    "SET NAMES utf8mb4, SESSION sql_mode='STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_ZERO_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO', SESSION tx_isolation='READ-COMMITTED', SESSION autocommit=1, "
    "SESSION max_statement_time=%u.%03u, SESSION idle_transaction_timeout=%u;"
    "SELECT @@character_set_client, @@character_set_connection, @@character_set_results, "
    "@@max_allowed_packet, @@read_only";

static int set_options(struct sk_db_conn *c)
{
    unsigned ct = (c->cfg->db_connect_timeout_ms + 999) / 1000;
    unsigned rt = (c->cfg->db_query_timeout_ms + 999) / 1000;
    my_bool off = 0;
    if (mysql_options(&c->mysql, MYSQL_OPT_NONBLOCK, 0) ||
        mysql_options(&c->mysql, MYSQL_OPT_CONNECT_TIMEOUT, &ct) ||
        mysql_options(&c->mysql, MYSQL_OPT_READ_TIMEOUT, &rt) ||
        mysql_options(&c->mysql, MYSQL_OPT_WRITE_TIMEOUT, &rt) ||
        mysql_options(&c->mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4") ||
        mysql_options(&c->mysql, MYSQL_OPT_LOCAL_INFILE, &off) ||
        sk_dbtls_options(&c->mysql, c->cfg) < 0)
        return -EINVAL;
    return 0;
}

/* The handle could not be set up: no session was started, nothing to close. */
static void connect_not_started(struct sk_db_conn *c)
{
    c->failures++;
    conn_set_state(c, DBC_DOWN);
    c->ev->down(c->owner, c);
}

void dbconn_connect(struct sk_db_conn *c, const char *addr)
{
    snprintf(c->host, sizeof c->host, "%s", addr ? addr : "");
    conn_set_state(c, DBC_CONNECTING);
    if (!mysql_init(&c->mysql)) {
        log_error("db#%d: mysql_init failed: out of memory", c->id);
        connect_not_started(c);
        return;
    }
    if (set_options(c) < 0) {
        log_error("db#%d: cannot set connection options: %s", c->id, mysql_error(&c->mysql));
        mysql_close(&c->mysql); /* never connected: no I/O */
        connect_not_started(c);
        return;
    }
    const struct sk_dburl *u = &c->cfg->db;
    snprintf(c->connect_host, sizeof c->connect_host, "%s", u->socket ? "" : c->host);
    c->tls_named = false;
    c->tls_state[0] = '\0';
    int st = mysql_real_connect_start(&c->r_conn, &c->mysql, u->socket ? NULL : c->connect_host, u->user,
                                      c->cfg->db_password, u->dbname, u->socket ? 0 : u->port,
                                      u->socket, CLIENT_MULTI_STATEMENTS | CLIENT_MULTI_RESULTS);
    started(c, st);
}

/* Where the connection goes, for the log: the socket, the address, or
 * the configured name and the address it resolved to. */
const char *dbconn_where(const struct sk_db_conn *c, char *buf, size_t len)
{
    const struct sk_dburl *u = &c->cfg->db;
    if (u->socket)
        return u->socket;
    if (!strcmp(u->host, c->host))
        return c->host;
    snprintf(buf, len, "%s (%s)", u->host, c->host);
    return buf;
}

/* No usable session: close what there is; the pool backs off before the
 * next connect. */
static void connect_give_up(struct sk_db_conn *c)
{
    c->failures++;
    c->breaks++;
    close_start(c);
}

/* The connect failed, or its session statement did.  The first failure of
 * a run is logged, then only a sample: a server that stays down must not
 * flood the journal. */
static void connect_failed(struct sk_db_conn *c, const char *why)
{
    struct sk_log_ctx x = conn_ctx(c, mysql_errno(&c->mysql));
    char where[320];
    if (c->failures % 10 == 0)
        sk_logc(SK_LOG_WARNING, &x, "db#%d %s: connect failed: %s; retrying with backoff", c->id,
                dbconn_where(c, where, sizeof where), why);
    connect_give_up(c);
}

static void query_start(struct sk_db_conn *c, const char *sql, size_t len, sk_db_row_fn on_row,
                        sk_db_done_fn on_done, void *ud);

static void session_row(void *ud, unsigned stmt, char **row, unsigned long *lengths, unsigned nf)
{
    (void)lengths;
    struct sk_db_conn *c = ud;
    if (stmt != 1 || nf != 5)
        return;
    for (unsigned i = 0; i < 3; i++)
        snprintf(c->charset[i], sizeof c->charset[i], "%s", row[i] ? row[i] : "NULL");
    c->max_packet = row[3] ? strtoul(row[3], NULL, 10) : 0;
    /* 0/1 up to MariaDB 11.x, OFF/ON/NO_LOCK... after: only off is writable */
    c->read_only = !row[4] || (strcmp(row[4], "0") != 0 && strcasecmp(row[4], "OFF") != 0);
}

static void session_done(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    (void)ud;
    c->setting_up = false;
    if (err && sk_db_fault_loses_conn(err->fault))
        return; /* lost, already closing (conn_lost counted the failure) */
    char why[400];
    if (err) {
        snprintf(why, sizeof why, "the session statement failed: %s", err->message);
        connect_failed(c, why);
        return;
    }
    static const char *const names[] = {"character_set_client", "character_set_connection",
                                        "character_set_results"};
    for (unsigned i = 0; i < 3; i++) {
        if (strcmp(c->charset[i], "utf8mb4") != 0) {
            /* Every escaped string and every name would be wrong. */
            snprintf(why, sizeof why, "the session's %s is %s after SET NAMES utf8mb4, refusing it",
                     names[i], c->charset[i]);
            connect_failed(c, why);
            return;
        }
    }
    char buf[320];
    const char *where = dbconn_where(c, buf, sizeof buf);
    if (c->read_only) {
        /* Not the primary: the pool says so once for all its connections
         * and backs off; this connect counts as a failed one. */
        log_debug("db#%d %s: the server is read-only; closing", c->id, where);
        c->ev->not_primary(c->owner, c, "the server is read-only (read_only is ON)");
        connect_give_up(c);
        return;
    }
    if (c->failures)
        log_notice("db#%d: connected after %u failed attempts (to %s, session utf8mb4, "
                   "max_allowed_packet %lu; %s)", c->id, c->failures, where, c->max_packet,
                   c->tls_state);
    else
        log_info("db#%d: connected (to %s, server %s, thread %lu, session utf8mb4, "
                 "max_allowed_packet %lu; %s)", c->id, where, mysql_get_server_info(&c->mysql),
                 mysql_thread_id(&c->mysql), c->max_packet, c->tls_state);
    c->failures = 0;
    become_free(c);
}

/* TCP keepalive, db.keepalive_ms: a connection whose path went silent (a
 * firewall or NAT that forgot it, a host gone without a reset) is closed by
 * the kernel within about that long while nothing is in flight, so a free
 * connection is found dead before a transaction is handed to it, and the
 * socket's error names why (idle_woken).  A statement in flight is bounded
 * by the read timeout instead.  The kernel counts in whole seconds: probes
 * start after `idle` silent seconds and `cnt` of them, `intvl` apart, go
 * unanswered. */
static void keepalive_on(struct sk_db_conn *c)
{
    unsigned ms = c->cfg->db_keepalive_ms;
    int fd = (int)mysql_get_socket(&c->mysql);
    if (!ms || c->cfg->db.socket || fd < 0)
        return;
    int total = ms < 2000 ? 2 : (int)((ms + 999) / 1000), cnt = 3;
    int intvl = total / 6 > 1 ? total / 6 : 1;
    while (cnt > 1 && total - cnt * intvl < 1)
        cnt--;
    int idle = total - cnt * intvl, on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt) < 0)
        log_warning("db#%d: cannot set TCP keepalive on socket %d: %s; a connection dropped "
                    "silently is found by the idle ping only", c->id, fd, strerror(errno));
}

static void connect_cont(struct sk_db_conn *c, int status)
{
    /* Paused: the address was used; from now on the host is the name. */
    if (status && !c->tls_named)
        c->tls_named = sk_dbtls_connect_paused(c->cfg, c->connect_host, sizeof c->connect_host);
    if (status && waiting(c, mysql_real_connect_cont(&c->r_conn, &c->mysql, status)))
        return;
    char why[400];
    if (!c->r_conn) {
        sk_dbtls_failure(&c->mysql, c->cfg, c->tls_named, why, sizeof why);
        connect_failed(c, why);
        return;
    }
    if (sk_dbtls_connected(&c->mysql, c->cfg, c->tls_named, c->tls_state, sizeof c->tls_state,
                           why, sizeof why) < 0) {
        connect_failed(c, why);
        return;
    }
    keepalive_on(c);
    /* Held by itself until its session statement passed. */
    conn_set_state(c, DBC_HELD);
    c->setting_up = true;
    c->max_packet = 0;
    c->read_only = true; /* until the session statement says otherwise */
    memset(c->charset, 0, sizeof c->charset);
    query_start(c, c->session_sql, strlen(c->session_sql), session_row, session_done, c);
}

void dbconn_close(struct sk_db_conn *c) { close_start(c); }

void dbconn_ping(struct sk_db_conn *c)
{
    conn_set_state(c, DBC_PINGING);
    started(c, mysql_ping_start(&c->r_int, &c->mysql));
}

static void ping_cont(struct sk_db_conn *c, int status)
{
    if (status && waiting(c, mysql_ping_cont(&c->r_int, &c->mysql, status)))
        return;
    if (c->r_int) {
        call_failed(c, "idle ping");
        return;
    }
    log_debug("db#%d: idle ping ok", c->id);
    become_free(c);
}

void dbconn_hold(struct sk_db_conn *c) { conn_set_state(c, DBC_HELD); }

void dbconn_unhold(struct sk_db_conn *c)
{
    conn_set_state(c, DBC_IDLE);
    conn_wait(c, MYSQL_WAIT_READ);
}

/* ---- meaning: queries ------------------------------------------------ */

/* Tell the query's owner it ended; the connection stays acquired. */
static void query_report(struct sk_db_conn *c, const struct sk_db_error *err)
{
    sk_db_done_fn done = c->on_done;
    void *ud = c->ud;
    c->on_done = NULL;
    c->on_row = NULL;
    if (done)
        done(ud, c, err);
}

/* The query ended on a working connection: back to its holder. */
static void query_end(struct sk_db_conn *c, const struct sk_db_error *err)
{
    conn_wait(c, 0);
    conn_set_state(c, DBC_HELD);
    query_report(c, err);
}

static void fill_err(struct sk_db_conn *c, struct sk_db_error *e)
{
    e->code = mysql_errno(&c->mysql);
    e->stmt = c->stmt;
    e->fault = sk_db_classify(e->code);
    if (e->fault == SK_DB_OK)
        e->fault = SK_DB_CONN;
    /* The server did not answer within the read timeout: the connection is
     * given up as lost, but the server may still be busy with the
     * statement (and hold its locks). */
    e->timed_out = c->timed_out && e->fault == SK_DB_CONN;
    if (e->timed_out)
        snprintf(e->message, sizeof e->message, "%s (no answer within db.query_timeout_ms %u)",
                 mysql_error(&c->mysql), c->cfg->db_query_timeout_ms);
    else
        snprintf(e->message, sizeof e->message, "%s", mysql_error(&c->mysql));
}

/* A statement failed: roll back an open transaction (if the connection
 * still works) before telling the owner, so a retried batch starts clean. */
static void query_failed(struct sk_db_conn *c)
{
    fill_err(c, &c->err);
    if (c->err.fault == SK_DB_NOT_PRIMARY) {
        /* The pool first closes the other connections to this server (and
         * says so, once), so that the owner retrying at once finds none of
         * them; the session's end rolls back what it had open. */
        struct sk_db_error e = c->err;
        c->ev->not_primary(c->owner, c, e.message);
        conn_drop(c, SK_LOG_INFO, e.message);
        query_report(c, &e);
        return;
    }
    if (sk_db_fault_loses_conn(c->err.fault)) {
        struct sk_db_error e = c->err;
        conn_lost(c, e.message);
        query_report(c, &e);
        return;
    }
    conn_set_state(c, DBC_ROLLBACK);
    started(c, mysql_rollback_start(&c->r_bool, &c->mysql));
}

static void rollback_cont(struct sk_db_conn *c, int status)
{
    if (status && waiting(c, mysql_rollback_cont(&c->r_bool, &c->mysql, status)))
        return;
    /* A copy: the owner may start another query from its callback. */
    struct sk_db_error e = c->err;
    if (c->r_bool) {
        call_failed(c, "rollback");
        e.fault = SK_DB_CONN;
        e.timed_out = c->timed_out; /* the rollback itself got no answer */
        query_report(c, &e);
        return;
    }
    query_end(c, &e);
}

static void query_start(struct sk_db_conn *c, const char *sql, size_t len, sk_db_row_fn on_row,
                        sk_db_done_fn on_done, void *ud)
{
    c->on_row = on_row;
    c->on_done = on_done;
    c->ud = ud;
    c->stmt = 0;
    c->err = (struct sk_db_error){0};
    c->timed_out = false;
    conn_set_state(c, DBC_QUERY);
    started(c, mysql_real_query_start(&c->r_int, &c->mysql, sql, (unsigned long)len));
}

void dbconn_query(struct sk_db_conn *c, const char *sql, size_t len, sk_db_row_fn on_row,
                  sk_db_done_fn on_done, void *ud)
{
    query_start(c, sql, len, on_row, on_done, ud);
}

static void store_start(struct sk_db_conn *c)
{
    conn_set_state(c, DBC_STORE);
    started(c, mysql_store_result_start(&c->r_res, &c->mysql));
}

static void query_cont(struct sk_db_conn *c, int status)
{
    if (status && waiting(c, mysql_real_query_cont(&c->r_int, &c->mysql, status)))
        return;
    if (c->r_int)
        query_failed(c);
    else
        store_start(c);
}

static void deliver_rows(struct sk_db_conn *c)
{
    unsigned nf = mysql_num_fields(c->r_res);
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(c->r_res))) /* stored: no I/O */
        if (c->on_row)
            c->on_row(c->ud, c->stmt, row, mysql_fetch_lengths(c->r_res), nf);
    drop_result(c);
}

static void store_cont(struct sk_db_conn *c, int status)
{
    if (status && waiting(c, mysql_store_result_cont(&c->r_res, &c->mysql, status)))
        return;
    if (c->r_res) {
        deliver_rows(c);
    } else if (mysql_field_count(&c->mysql) > 0) {
        query_failed(c);
        return;
    }
    if (!mysql_more_results(&c->mysql)) {
        query_end(c, NULL);
        return;
    }
    c->stmt++;
    conn_set_state(c, DBC_NEXT);
    started(c, mysql_next_result_start(&c->r_int, &c->mysql));
}

static void next_cont(struct sk_db_conn *c, int status)
{
    if (status && waiting(c, mysql_next_result_cont(&c->r_int, &c->mysql, status)))
        return;
    if (c->r_int > 0)
        query_failed(c);
    else if (c->r_int < 0) /* no more results */
        query_end(c, NULL);
    else
        store_start(c);
}

static void idle_woken(struct sk_db_conn *c, int status)
{
    (void)status;
    /* Readable while idle: the server closed the connection (timeout,
     * KILL, restart), or the kernel gave it up.  Notice it now rather than
     * on the next batch. */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = 0;
    char why[160];
    if (err == ETIMEDOUT && c->cfg->db_keepalive_ms)
        snprintf(why, sizeof why, "no answer to TCP keepalive within db.keepalive_ms %u",
                 c->cfg->db_keepalive_ms);
    else if (err)
        snprintf(why, sizeof why, "the idle connection failed: %s", strerror(err));
    else
        snprintf(why, sizeof why, "server closed the idle connection");
    conn_lost(c, why);
}

static void held_woken(struct sk_db_conn *c, int status)
{
    (void)status;
    /* Still watched from IDLE, and readable before its holder sent a
     * query: that query will find out what the server meant. */
    conn_wait(c, 0);
}

/* What continues in each state when the socket or the wait timer fired
 * (status != 0) or a _start call completed at once (status == 0).  DOWN
 * waits for nothing. */
static void (*const resume_in[])(struct sk_db_conn *c, int status) = {
    [DBC_CONNECTING] = connect_cont, [DBC_IDLE] = idle_woken,   [DBC_PINGING] = ping_cont,
    [DBC_HELD] = held_woken,         [DBC_QUERY] = query_cont,  [DBC_STORE] = store_cont,
    [DBC_NEXT] = next_cont,          [DBC_ROLLBACK] = rollback_cont, [DBC_CLOSING] = close_cont,
};

static void conn_resume(struct sk_db_conn *c, int status)
{
    if (!resume_in[c->state]) {
        log_error("db#%d: woken in state %s with nothing in flight", c->id,
                  dbconn_state_name(c->state));
        abort();
    }
    resume_in[c->state](c, status);
}

/* ---- life and accessors ---------------------------------------------- */

int dbconn_new(sd_event *loop, const struct sk_config *cfg, int id, const struct dbconn_events *ev,
               void *owner, struct sk_db_conn **out)
{
    struct sk_db_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = (struct sk_db_conn){.loop = loop, .cfg = cfg, .id = id, .state = DBC_DOWN, .ev = ev,
                             .owner = owner, .fd = -1};
    unsigned ms = sk_policy_statement_ms(cfg->db_query_timeout_ms);
    snprintf(c->session_sql, sizeof c->session_sql, session_fmt, ms / 1000, ms % 1000,
             (cfg->db_query_timeout_ms + 999) / 1000);
    int r = sd_event_add_time_relative(loop, &c->wait_timer, CLOCK_MONOTONIC, 0, 1000,
                                       on_wait_timer, c);
    if (r >= 0)
        r = sd_event_source_set_enabled(c->wait_timer, SD_EVENT_OFF);
    if (r < 0) {
        dbconn_free(c);
        return r;
    }
    *out = c;
    return 0;
}

void dbconn_free(struct sk_db_conn *c)
{
    if (!c)
        return;
    if (c->state != DBC_DOWN) {
        /* Last resort at exit: the socket is shut down first so the QUIT
         * that the close sends cannot block. */
        int fd = (int)mysql_get_socket(&c->mysql);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
        drop_result(c);
        mysql_close(&c->mysql); /* after the loop, socket shut down: no I/O wait */
    }
    c->io = sd_event_source_disable_unref(c->io);
    c->wait_timer = sd_event_source_disable_unref(c->wait_timer);
    free(c);
}

enum dbconn_state dbconn_state(const struct sk_db_conn *c) { return c->state; }

bool dbconn_is_open(const struct sk_db_conn *c)
{
    return c->state != DBC_DOWN && c->state != DBC_CONNECTING && c->state != DBC_CLOSING &&
           !c->setting_up;
}

int dbconn_id(const struct sk_db_conn *c) { return c->id; }
void *dbconn_owner(const struct sk_db_conn *c) { return c->owner; }
unsigned dbconn_failures(const struct sk_db_conn *c) { return c->failures; }
unsigned long dbconn_breaks(const struct sk_db_conn *c) { return c->breaks; }
unsigned long dbconn_max_packet(const struct sk_db_conn *c) { return c->max_packet; }
const char *dbconn_tls_state(const struct sk_db_conn *c) { return c->tls_state; }
