/* db — the pool of database connections, see include/db.h.
 *
 * Which connections exist, who holds them, when a connection that went
 * down is opened again (backoff with jitter), when a free one is pinged,
 * and how they all close at shutdown.  Each connection's Connector/C calls
 * and their readiness live in src/dbconn.c; the pool hears back from it
 * only that a connection became free or went down.
 *
 * Each slot has two timers with one meaning each: the backoff before the
 * next connect while the connection is DOWN, and the idle ping while it is
 * IDLE.  The timer that stands for MYSQL_WAIT_TIMEOUT is the connection's. */
#include "db.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "dbconn.h"
#include "log.h"

struct slot {
    struct sk_db *db;
    struct sk_db_conn *c;
    sd_event_source *retry; /* DOWN: the backoff before the next connect is over */
    sd_event_source *ping;  /* IDLE: free long enough to be pinged */
};

struct sk_db {
    sd_event *loop;
    const struct sk_config *cfg;
    char host[64]; /* numeric, resolved once */
    struct slot *slots;
    unsigned n;
    sd_event_source *idle_defer; /* delivers on_idle, see include/db.h */
    void (*on_idle)(void *ud);
    void *ud;
    void (*on_closed)(void *ud);
    bool shutting_down;
    struct sk_rng rng;
};

int sk_db_resolve(const char *host, char *out, size_t outlen, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int r = getaddrinfo(host, NULL, &hints, &ai);
    if (r != 0) {
        snprintf(err, errlen, "cannot resolve database host \"%s\": %s", host, gai_strerror(r));
        return -EHOSTUNREACH;
    }
    r = getnameinfo(ai->ai_addr, ai->ai_addrlen, out, (socklen_t)outlen, NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(ai);
    if (r != 0) {
        snprintf(err, errlen, "cannot resolve database host \"%s\": %s", host, gai_strerror(r));
        return -EHOSTUNREACH;
    }
    return 0;
}

/* ---- reacting to the connections ------------------------------------- */

static int arm(sd_event_source *s, uint64_t usec_from_now)
{
    int r = sd_event_source_set_time_relative(s, usec_from_now);
    return r < 0 ? r : sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* Let the user dispatch work: on_idle runs from the loop, never from inside
 * a release or a query callback, so one user's work cannot start nested in
 * another's. */
static void wake_user(struct sk_db *db)
{
    int r = sd_event_source_set_enabled(db->idle_defer, SD_EVENT_ONESHOT);
    if (r < 0) {
        /* Nothing else would ever hand the free connections out. */
        log_error("db: cannot schedule the idle callback: %s", strerror(-r));
        abort();
    }
}

static void maybe_all_closed(struct sk_db *db)
{
    if (!db->shutting_down || !db->on_closed)
        return;
    for (unsigned i = 0; i < db->n; i++)
        if (dbconn_state(db->slots[i].c) != DBC_DOWN)
            return;
    void (*cb)(void *) = db->on_closed;
    db->on_closed = NULL;
    cb(db->ud);
}

/* A connection is IDLE again (connected, pinged or released). */
static void slot_free(struct slot *s)
{
    struct sk_db *db = s->db;
    if (db->shutting_down) {
        dbconn_close(s->c);
        return;
    }
    /* A free connection is pinged after db.idle_ping_ms: a server or
     * firewall that dropped it silently (no FIN) is found before a batch
     * needs it. */
    if (arm(s->ping, (uint64_t)db->cfg->db_idle_ping_ms * 1000u) < 0)
        log_warning("db#%d: cannot arm the idle ping timer", dbconn_id(s->c));
    wake_user(db);
}

static void on_conn_free(void *owner, struct sk_db_conn *c)
{
    (void)c;
    slot_free(owner);
}

static void on_conn_down(void *owner, struct sk_db_conn *c)
{
    struct slot *s = owner;
    struct sk_db *db = s->db;
    sd_event_source_set_enabled(s->ping, SD_EVENT_OFF);
    if (db->shutting_down) {
        maybe_all_closed(db);
        return;
    }
    /* Backoff with jitter: no reconnect storms when a server comes back and
     * every instance retries at once. */
    uint64_t d = sk_backoff_ms(db->cfg->db_retry_min_ms, db->cfg->db_retry_max_ms,
                               dbconn_failures(c) + 1, &db->rng);
    log_debug("db#%d: reconnecting in %llu ms", dbconn_id(c), (unsigned long long)d);
    if (arm(s->retry, d * 1000u) < 0) {
        log_error("db#%d: cannot arm reconnect timer", dbconn_id(c));
        abort();
    }
}

static const struct dbconn_events conn_events = {.free = on_conn_free, .down = on_conn_down};

static int on_retry(sd_event_source *src, uint64_t usec, void *ud)
{
    (void)src;
    (void)usec;
    struct slot *s = ud;
    dbconn_connect(s->c);
    return 0;
}

static int on_ping(sd_event_source *src, uint64_t usec, void *ud)
{
    (void)src;
    (void)usec;
    struct slot *s = ud;
    /* The connection may have left IDLE by itself since the timer was
     * armed (the server closed it): then it is closing and needs no ping. */
    if (dbconn_state(s->c) == DBC_IDLE)
        dbconn_ping(s->c);
    return 0;
}

static int on_idle_defer(sd_event_source *src, void *ud)
{
    struct sk_db *db = ud;
    sd_event_source_set_enabled(src, SD_EVENT_OFF);
    if (!db->shutting_down && db->on_idle)
        db->on_idle(db->ud);
    return 0;
}

/* ---- public ---------------------------------------------------------- */

static int slot_init(struct sk_db *db, unsigned i)
{
    struct slot *s = &db->slots[i];
    s->db = db;
    int r = dbconn_new(db->loop, db->cfg, db->host, (int)i, &conn_events, s, &s->c);
    if (r >= 0)
        r = sd_event_add_time_relative(db->loop, &s->retry, CLOCK_MONOTONIC, 0, 1000, on_retry, s);
    if (r >= 0)
        r = sd_event_source_set_enabled(s->retry, SD_EVENT_OFF);
    if (r >= 0)
        r = sd_event_add_time_relative(db->loop, &s->ping, CLOCK_MONOTONIC, 0, 1000, on_ping, s);
    if (r >= 0)
        r = sd_event_source_set_enabled(s->ping, SD_EVENT_OFF);
    return r;
}

int sk_db_new(sd_event *loop, const struct sk_config *cfg, void (*on_idle)(void *ud), void *ud,
              struct sk_db **out)
{
    struct sk_db *db = calloc(1, sizeof *db);
    if (db)
        db->slots = calloc(cfg->db_pool_size, sizeof *db->slots);
    if (!db || !db->slots) {
        log_error("cannot set up the database pool: out of memory");
        free(db);
        return -ENOMEM;
    }
    db->n = cfg->db_pool_size;
    db->loop = loop;
    db->cfg = cfg;
    db->on_idle = on_idle;
    db->ud = ud;
    sk_rng_seed(&db->rng, (uint64_t)(unsigned)getpid() << 32 ^ (uint64_t)time(NULL));
    if (!cfg->db.socket) {
        char err[256];
        int r = sk_db_resolve(cfg->db.host, db->host, sizeof db->host, err, sizeof err);
        if (r < 0) {
            log_error("%s", err);
            sk_db_free(db);
            return r;
        }
    }
    int r = sd_event_add_defer(loop, &db->idle_defer, on_idle_defer, db);
    if (r >= 0)
        r = sd_event_source_set_enabled(db->idle_defer, SD_EVENT_OFF);
    for (unsigned i = 0; r >= 0 && i < db->n; i++)
        r = slot_init(db, i);
    if (r < 0) {
        log_error("cannot set up the database pool: %s", strerror(-r));
        sk_db_free(db);
        return r;
    }
    *out = db;
    return 0;
}

void sk_db_start(struct sk_db *db)
{
    for (unsigned i = 0; i < db->n; i++)
        dbconn_connect(db->slots[i].c);
}

void sk_db_shutdown(struct sk_db *db, void (*on_closed)(void *ud))
{
    db->shutting_down = true;
    db->on_closed = on_closed;
    sd_event_source_set_enabled(db->idle_defer, SD_EVENT_OFF);
    for (unsigned i = 0; i < db->n; i++) {
        struct slot *s = &db->slots[i];
        sd_event_source_set_enabled(s->retry, SD_EVENT_OFF);
        sd_event_source_set_enabled(s->ping, SD_EVENT_OFF);
        /* Connecting, pinging or closing ones finish on their own (and
         * close when they come back free); held ones close when released. */
        if (dbconn_state(s->c) == DBC_IDLE)
            dbconn_close(s->c);
    }
    maybe_all_closed(db);
}

void sk_db_free(struct sk_db *db)
{
    if (!db)
        return;
    for (unsigned i = 0; i < db->n; i++) {
        struct slot *s = &db->slots[i];
        dbconn_free(s->c);
        s->retry = sd_event_source_disable_unref(s->retry);
        s->ping = sd_event_source_disable_unref(s->ping);
    }
    db->idle_defer = sd_event_source_disable_unref(db->idle_defer);
    free(db->slots);
    free(db);
}

struct sk_db_conn *sk_db_acquire(struct sk_db *db)
{
    if (db->shutting_down)
        return NULL;
    for (unsigned i = 0; i < db->n; i++) {
        struct slot *s = &db->slots[i];
        if (dbconn_state(s->c) == DBC_IDLE) {
            sd_event_source_set_enabled(s->ping, SD_EVENT_OFF);
            dbconn_hold(s->c);
            return s->c;
        }
    }
    return NULL;
}

void sk_db_release(struct sk_db_conn *c)
{
    enum dbconn_state st = dbconn_state(c);
    if (st == DBC_QUERY || st == DBC_STORE || st == DBC_NEXT || st == DBC_ROLLBACK) {
        log_error("db#%d: released with a query in flight", dbconn_id(c));
        abort();
    }
    if (st != DBC_HELD)
        return; /* lost meanwhile: it is being rebuilt */
    dbconn_unhold(c);
    slot_free(dbconn_owner(c));
}

int sk_db_query(struct sk_db_conn *c, const char *sql, size_t len, sk_db_row_fn on_row,
                sk_db_done_fn on_done, void *ud)
{
    if (dbconn_state(c) != DBC_HELD)
        return -EBUSY;
    dbconn_query(c, sql, len, on_row, on_done, ud);
    return 0;
}

int sk_db_conn_id(const struct sk_db_conn *c) { return dbconn_id(c); }

unsigned long sk_db_conn_max_packet(const struct sk_db_conn *c) { return dbconn_max_packet(c); }

const char *sk_db_conn_tls(const struct sk_db_conn *c) { return dbconn_tls_state(c); }

unsigned long sk_db_max_packet(const struct sk_db *db)
{
    unsigned long m = 0;
    for (unsigned i = 0; i < db->n; i++) {
        const struct sk_db_conn *c = db->slots[i].c;
        unsigned long p = dbconn_is_open(c) ? dbconn_max_packet(c) : 0;
        if (p && (!m || p < m))
            m = p;
    }
    return m;
}

unsigned sk_db_count_up(const struct sk_db *db)
{
    unsigned n = 0;
    for (unsigned i = 0; i < db->n; i++)
        n += dbconn_is_open(db->slots[i].c);
    return n;
}

unsigned long sk_db_reconnects(const struct sk_db *db)
{
    unsigned long n = 0;
    for (unsigned i = 0; i < db->n; i++)
        n += dbconn_breaks(db->slots[i].c);
    return n;
}
