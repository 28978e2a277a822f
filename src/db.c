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
 * IDLE.  The timer that stands for MYSQL_WAIT_TIMEOUT is the connection's.
 *
 * Failover.  A host name is looked up again before every connect (off the
 * loop, src/resolve.c), so a name moved to a new primary is followed; the
 * connects waiting meanwhile share one lookup.  A lookup that fails keeps
 * the last address that resolved; with none yet (at start), the lookup is
 * retried with backoff and the pool has no connection, so the daemon is not
 * ready.  A server that says it is not the primary (a write refused as
 * read-only, or @@read_only on in a new session) makes the pool close every
 * connection it has to it: the pool's epoch moves on, free ones close at
 * once and the others when they come back free; the reconnects look the
 * name up again and back off while the server stays read-only. */
#include "db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "dbconn.h"
#include "log.h"
#include "resolve.h"

struct slot {
    struct sk_db *db;
    struct sk_db_conn *c;
    sd_event_source *retry; /* DOWN: the backoff before the next connect is over */
    sd_event_source *ping;  /* IDLE: free long enough to be pinged */
    unsigned epoch;         /* the pool's epoch when this connection's connect began */
    bool wants_addr;        /* DOWN, its connect waits for the lookup in flight */
};

struct sk_db {
    sd_event *loop;
    const struct sk_config *cfg;
    char addr[SK_RESOLVE_ADDR_MAX]; /* where connects go (numeric); "" until the name resolved */
    struct sk_resolve *resolver;    /* NULL when db.url holds an address or a socket */
    sd_event_source *lookup_retry;  /* no address yet: the backoff before the next lookup */
    unsigned lookup_failures;       /* lookups failed in a row */
    unsigned epoch;                 /* moves on whenever the server says it is not the primary */
    uint64_t not_primary_since;     /* CLOCK_MONOTONIC usec of the spell's first such answer; 0:
                                       none since a connection last reached a writable server */
    struct slot *slots;
    unsigned n;
    sd_event_source *idle_defer; /* delivers on_idle, see include/db.h */
    void (*on_idle)(void *ud);
    void *ud;
    void (*on_closed)(void *ud);
    bool shutting_down;
    struct sk_rng rng;
};

/* ---- connecting: the address first ---------------------------------- */

static int arm(sd_event_source *s, uint64_t usec_from_now)
{
    int r = sd_event_source_set_time_relative(s, usec_from_now);
    return r < 0 ? r : sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static void connect_to(struct slot *s)
{
    struct sk_db *db = s->db;
    s->wants_addr = false;
    s->epoch = db->epoch;
    dbconn_connect(s->c, db->cfg->db.socket ? NULL : db->addr);
}

/* The lookup answered (or failed with an address to fall back on): every
 * connect waiting for it goes on. */
static void connect_waiting(struct sk_db *db)
{
    for (unsigned i = 0; i < db->n; i++)
        if (db->slots[i].wants_addr)
            connect_to(&db->slots[i]);
}

static bool lookup_pending(const struct sk_db *db)
{
    int en = SD_EVENT_OFF;
    return sk_resolve_busy(db->resolver) ||
           (sd_event_source_get_enabled(db->lookup_retry, &en) >= 0 && en != SD_EVENT_OFF);
}

static void on_lookup(void *ud, const char *addr, const char *why);

static void lookup_start(struct sk_db *db)
{
    int r = sk_resolve_start(db->resolver, db->cfg->db.host);
    if (r < 0) {
        char why[128];
        snprintf(why, sizeof why, "cannot start the lookup: %s", strerror(-r));
        on_lookup(db, NULL, why);
    }
}

static void on_lookup(void *ud, const char *addr, const char *why)
{
    struct sk_db *db = ud;
    const char *host = db->cfg->db.host;
    if (db->shutting_down)
        return;
    if (addr) {
        if (!db->addr[0] && db->lookup_failures)
            log_notice("db: %s resolves to %s after %u failed lookups; connecting", host, addr,
                       db->lookup_failures);
        else if (!db->addr[0])
            log_info("db: %s resolves to %s", host, addr);
        else if (strcmp(db->addr, addr) != 0)
            log_notice("db: %s now resolves to %s (was %s); connecting there", host, addr,
                       db->addr);
        else if (db->lookup_failures)
            log_notice("db: %s resolves again (to %s)", host, addr);
        snprintf(db->addr, sizeof db->addr, "%s", addr);
        db->lookup_failures = 0;
        connect_waiting(db);
        return;
    }
    db->lookup_failures++;
    if (db->addr[0]) {
        /* A name that no longer resolves still had a server a moment ago. */
        if (db->lookup_failures == 1)
            log_warning("db: cannot resolve %s again: %s; connecting to its last address %s until "
                        "it resolves", host, why, db->addr);
        connect_waiting(db);
        return;
    }
    /* Nothing to connect to yet (a DNS blip at boot): no connection, so
     * the daemon is not ready; the one backoff rule spaces the lookups. */
    uint64_t d = sk_backoff_ms(db->cfg->db_retry_min_ms, db->cfg->db_retry_max_ms,
                               db->lookup_failures, &db->rng);
    if (db->lookup_failures == 1)
        log_warning("db: cannot resolve the database host %s: %s; no connection until it "
                    "resolves, looking it up again with backoff", host, why);
    log_debug("db: looking %s up again in %llu ms (%u failed)", host, (unsigned long long)d,
              db->lookup_failures);
    if (arm(db->lookup_retry, d * 1000u) < 0) {
        log_error("db: cannot arm the lookup timer");
        abort();
    }
}

static int on_lookup_retry(sd_event_source *src, uint64_t usec, void *ud)
{
    (void)src;
    (void)usec;
    lookup_start(ud);
    return 0;
}

/* Connect, to wherever the name points now. */
static void slot_connect(struct slot *s)
{
    struct sk_db *db = s->db;
    if (!db->resolver) {
        connect_to(s);
        return;
    }
    s->wants_addr = true;
    if (!lookup_pending(db))
        lookup_start(db);
}

/* ---- reacting to the connections ------------------------------------- */

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
    if (s->epoch != db->epoch) {
        /* Opened before the server said it is not the primary. */
        log_debug("db#%d: closing: opened before the server said it is not the primary",
                  dbconn_id(s->c));
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
    struct slot *s = owner;
    struct sk_db *db = s->db;
    /* Opened since the last "not the primary": its session found the
     * server writable. */
    if (db->not_primary_since && s->epoch == db->epoch) {
        uint64_t now = 0;
        char where[320];
        sd_event_now(db->loop, CLOCK_MONOTONIC, &now);
        log_notice("db#%d: %s accepts writes again, %llu s after the first \"not the primary\"; "
                   "connections reopen", dbconn_id(c), dbconn_where(c, where, sizeof where),
                   (unsigned long long)((now - db->not_primary_since) / 1000000u));
        db->not_primary_since = 0;
    }
    slot_free(s);
}

/* The server refused a write as read-only, or a new session found it so:
 * it is not the primary.  Every connection to it goes; said once per
 * spell, not per connection or retry. */
static void on_conn_not_primary(void *owner, struct sk_db_conn *c, const char *why)
{
    struct slot *s = owner;
    struct sk_db *db = s->db;
    if (db->shutting_down)
        return;
    db->epoch++;
    if (!db->not_primary_since) {
        sd_event_now(db->loop, CLOCK_MONOTONIC, &db->not_primary_since);
        struct sk_log_ctx x = SK_LOG_CTX_NONE;
        char where[320];
        x.db_conn = dbconn_id(c);
        sk_logc(SK_LOG_WARNING, &x,
                "db: %s is not the primary: %s; closing every connection to it and reconnecting "
                "with backoff%s; not ready until a connection reaches a writable server",
                dbconn_where(c, where, sizeof where), why,
                db->resolver ? ", looking the name up again" : "");
    }
    for (unsigned i = 0; i < db->n; i++) {
        struct slot *t = &db->slots[i];
        if (t != s && dbconn_state(t->c) == DBC_IDLE) {
            sd_event_source_set_enabled(t->ping, SD_EVENT_OFF);
            dbconn_close(t->c);
        }
    }
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

static const struct dbconn_events conn_events = {
    .free = on_conn_free, .down = on_conn_down, .not_primary = on_conn_not_primary};

static int on_retry(sd_event_source *src, uint64_t usec, void *ud)
{
    (void)src;
    (void)usec;
    slot_connect(ud);
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
    int r = dbconn_new(db->loop, db->cfg, (int)i, &conn_events, s, &s->c);
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
    int r = 0;
    /* A name is looked up before every connect, each lookup bounded like a
     * connect; an address needs none. */
    if (!cfg->db.socket && !sk_resolve_numeric(cfg->db.host, db->addr)) {
        r = sk_resolve_new(loop, (uint64_t)cfg->db_connect_timeout_ms * 1000u, on_lookup, db,
                           &db->resolver);
        if (r >= 0)
            r = sd_event_add_time_relative(loop, &db->lookup_retry, CLOCK_MONOTONIC, 0, 1000,
                                           on_lookup_retry, db);
        if (r >= 0)
            r = sd_event_source_set_enabled(db->lookup_retry, SD_EVENT_OFF);
    }
    if (r >= 0)
        r = sd_event_add_defer(loop, &db->idle_defer, on_idle_defer, db);
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
        slot_connect(&db->slots[i]);
}

void sk_db_shutdown(struct sk_db *db, void (*on_closed)(void *ud))
{
    db->shutting_down = true;
    db->on_closed = on_closed;
    sd_event_source_set_enabled(db->idle_defer, SD_EVENT_OFF);
    sd_event_source_set_enabled(db->lookup_retry, SD_EVENT_OFF);
    for (unsigned i = 0; i < db->n; i++) {
        struct slot *s = &db->slots[i];
        s->wants_addr = false; /* DOWN: closed already */
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
    db->lookup_retry = sd_event_source_disable_unref(db->lookup_retry);
    sk_resolve_free(db->resolver);
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

const char *sk_db_why_down(const struct sk_db *db)
{
    if (sk_db_count_up(db))
        return NULL;
    if (db->resolver && !db->addr[0])
        return db->lookup_failures ? "its host name does not resolve (looking it up again)"
                                   : "looking its host name up";
    if (db->not_primary_since)
        return "the server is read-only, not the primary (reconnecting)";
    return "not connected (connecting, with backoff after a failure)";
}

unsigned long sk_db_reconnects(const struct sk_db *db)
{
    unsigned long n = 0;
    for (unsigned i = 0; i < db->n; i++)
        n += dbconn_breaks(db->slots[i].c);
    return n;
}
