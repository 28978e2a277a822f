/* daemon — builds the objects, wires them together and owns the lifecycle,
 * see include/daemon.h.
 *
 * Data path of one event, each stage in its own module:
 *   consumer (read, track its offset, parse)
 *     -> invalid: output (result "rejected" and a dead-letter copy)
 *     -> valid:   txn (queued per game, batched, applied in a transaction)
 *                 -> output (result "applied" or "duplicate")
 *   -> output's delivery report -> consumer (offset done, committed once
 *      every earlier offset is done).
 * The modules never call each other: each reports upward through
 * callbacks, and the few lines of glue here pass the message on. */
#include "daemon.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "consumer.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "output.h"
#include "stats.h"
#include "txn.h"

#define EX_UNAVAILABLE 69
#define EX_NOPERM 77
#define EX_CONFIG 78
/* The poll tick: keeps the consumer in its group while partitions are held,
 * serves delivery reports, sends again what waits, trims the heap. */
#define POLL_USEC 200000ull
#define STATUS_USEC 5000000ull

/* STARTING (connecting) -> RUNNING (READY=1) -> DRAINING (no new input,
 * in-flight events finish) -> CLOSING (leaving the group, closing
 * connections) -> DONE (the loop exits).  A fatal error goes to DONE from
 * anywhere. */
enum phase { PH_STARTING, PH_RUNNING, PH_DRAINING, PH_CLOSING, PH_DONE };

struct daemon {
    sd_event *loop;
    struct sk_config *cfg;
    const struct sk_settings_src *src; /* read again on SIGHUP */
    enum phase phase;
    int exit_code;
    bool kafka_answered; /* the group assigned us, or a broker answered about our topics */
    bool wedged;
    bool failed; /* a fatal error ended the run */
    bool schema_ok; /* the database has every migration: until then nothing else uses it */
    uint64_t watchdog_usec;
    sd_event_source *commit_timer, *poll_timer, *status_timer, *watchdog_timer, *deadline_timer;
    struct sk_stats st;
    struct sk_db *db;
    struct sk_migrate_check *schema;
    struct sk_consumer *consumer;
    struct sk_txns *txns;
    struct sk_output *output;
    struct sk_metrics *metrics;
};

static const char *const phase_names[] = {"starting", "running", "stopping", "stopping",
                                          "stopped"};

static void notify_status(struct daemon *d);

/* The one place the phase changes.  Phases only move forward. */
static void set_phase(struct daemon *d, enum phase to)
{
    if (to <= d->phase) {
        log_error("daemon: impossible phase change %s -> %s", phase_names[d->phase],
                  phase_names[to]);
        abort();
    }
    d->phase = to;
    switch (to) {
    case PH_RUNNING:
        log_notice("ready: database and Kafka answer; consuming %s and %s", d->cfg->topic_users,
                   d->cfg->topic_scores);
        sd_notify(0, "READY=1");
        notify_status(d);
        break;
    case PH_DRAINING:
        sd_notify(0, "STOPPING=1");
        sk_consumer_pause_all(d->consumer);
        sk_txns_drain(d->txns);
        sd_event_source_set_time_relative(d->deadline_timer,
                                          (uint64_t)d->cfg->shutdown_timeout_ms * 1000u);
        sd_event_source_set_enabled(d->deadline_timer, SD_EVENT_ONESHOT);
        break;
    case PH_CLOSING:
        log_info("drained: every consumed event has its result; leaving the consumer group");
        sk_consumer_close(d->consumer);
        break;
    case PH_DONE:
        sd_event_exit(d->loop, d->exit_code);
        break;
    case PH_STARTING:
        break;
    }
}

static void fail_code(struct daemon *d, int code, const char *why)
{
    if (d->phase == PH_DONE)
        return;
    log_error("%s; exiting", why);
    d->failed = true;
    d->exit_code = code;
    set_phase(d, PH_DONE);
}

static void fail(struct daemon *d, const char *why) { fail_code(d, EXIT_FAILURE, why); }

static void notify_status(struct daemon *d)
{
    char buf[400], db[128] = "";
    /* Nothing flows without a database connection: say why there is none
     * first (a host name that does not resolve yet, a read-only server). */
    const char *db_down = sk_db_why_down(d->db);
    if (db_down)
        snprintf(db, sizeof db, "waiting for the database: %s", db_down);
    snprintf(buf, sizeof buf,
             "STATUS=%s: consumed %llu, applied %llu, rejected %llu, in flight %zu, db %u/%u up, "
             "%s",
             phase_names[d->phase], sk_stats_both(d->st.k_consumed),
             sk_stats_both(d->st.k_applied), sk_stats_both(d->st.k_rejected),
             sk_consumer_inflight(d->consumer), sk_db_count_up(d->db), d->cfg->db_pool_size,
             db_down                          ? db
             : sk_consumer_refused(d->consumer) ? "some partitions refused (offsets used again, see the log)"
             : sk_consumer_held(d->consumer)  ? "some partitions paused (backpressure)"
                                              : "consuming");
    sd_notify(0, buf);
}

static void maybe_ready(struct daemon *d)
{
    if (d->phase == PH_STARTING && d->schema_ok && d->kafka_answered && sk_db_count_up(d->db) > 0)
        set_phase(d, PH_RUNNING);
}

/* The transactions (and the reads before them) use the database only once
 * its schema is known to be the one this code was written for. */
static void kick(struct daemon *d)
{
    if (d->schema_ok)
        sk_txns_kick(d->txns);
}

/* DRAINING -> CLOSING once nothing is in flight: commit, leave the group. */
static void check_drained(struct daemon *d)
{
    if (d->phase != PH_DRAINING || sk_consumer_inflight(d->consumer) > 0)
        return;
    set_phase(d, PH_CLOSING);
}

/* ---- glue: messages from one module to the next ---------------------- */

static void emit(struct daemon *d, struct sk_msg *m)
{
    if (sk_output_emit(d->output, m) < 0) {
        sk_consumer_release(d->consumer, m);
        fail(d, "out of memory building a result; the event will be consumed again after restart");
    }
}

static void on_event(void *ud, struct sk_msg *m, int64_t key)
{
    struct daemon *d = ud;
    if (sk_txns_add(d->txns, key, m) < 0) {
        sk_consumer_release(d->consumer, m);
        fail(d, "out of memory queueing an event; it will be consumed again after restart");
    }
}

static void on_rejected(void *ud, struct sk_msg *m) { emit(ud, m); }

static void on_finished(void *ud, struct sk_msg *m) { emit(ud, m); }

static void on_delivered(void *ud, struct sk_msg *m)
{
    struct daemon *d = ud;
    sk_consumer_done(d->consumer, m);
    check_drained(d);
}

static void on_drop(void *ud, struct sk_msg *m)
{
    struct daemon *d = ud;
    sk_consumer_release(d->consumer, m);
}

static void on_marks_read(void *ud, struct sk_part *p)
{
    sk_consumer_marks_read(((struct daemon *)ud)->consumer, p);
}

static void on_assigned(void *ud, struct sk_part *p) { sk_txns_assigned(((struct daemon *)ud)->txns, p); }

static void on_revoked(void *ud, struct sk_part *p) { sk_txns_revoked(((struct daemon *)ud)->txns, p); }

static void on_consumed(void *ud) { kick(ud); }

static void on_answered(void *ud)
{
    struct daemon *d = ud;
    d->kafka_answered = true;
    maybe_ready(d);
}

static void on_db_closed(void *ud)
{
    struct daemon *d = ud;
    if (d->phase < PH_DONE)
        set_phase(d, PH_DONE);
}

static void on_consumer_closed(void *ud)
{
    struct daemon *d = ud;
    log_info("left the consumer group; closing database connections");
    sk_db_shutdown(d->db, on_db_closed);
}

/* Refused credentials do not heal by retrying: 77 tells them apart. */
static void on_fatal(void *ud, int err, const char *why)
{
    fail_code(ud, err == -EACCES ? EX_NOPERM : EXIT_FAILURE, why);
}

/* ---- the schema check, first on the first free connection --------------- */

static void on_schema(void *ud, int verdict)
{
    struct daemon *d = ud;
    if (verdict == 0)
        d->schema_ok = true; /* the connection it freed calls on_db_idle */
    else if (verdict != EX_UNAVAILABLE && d->phase < PH_DONE) {
        d->failed = true; /* logged: too old, or unreadable */
        d->exit_code = verdict;
        set_phase(d, PH_DONE);
    } /* else lost: the next free connection reads it again */
}

static void on_db_idle(void *ud)
{
    struct daemon *d = ud;
    if (!d->schema_ok) {
        if (d->phase == PH_DONE || sk_migrate_check_running(d->schema))
            return;
        struct sk_db_conn *c = sk_db_acquire(d->db);
        int r = c ? sk_migrate_check_start(d->schema, c, on_schema, d) : 0;
        if (r < 0) {
            char why[128];
            sk_db_release(c);
            snprintf(why, sizeof why, "cannot read the database's schema version: %s",
                     strerror(-r));
            fail(d, why);
        }
        return;
    }
    maybe_ready(d);
    kick(d);
}

/* ---- signals, reload, deadline --------------------------------------- */

static void begin_drain(struct daemon *d, const char *why)
{
    if (d->phase >= PH_DRAINING)
        return;
    if (!d->schema_ok) { /* nothing was applied: what was consumed comes again */
        log_notice("%s: stopping before the database schema was checked", why);
        set_phase(d, PH_DONE);
        return;
    }
    log_notice("%s: stopping; finishing %zu events in flight (deadline %u ms)", why,
               sk_consumer_inflight(d->consumer), d->cfg->shutdown_timeout_ms);
    set_phase(d, PH_DRAINING);
    check_drained(d);
}

/* SIGHUP: read the same file and -o options again; apply what may change
 * at run time (log level, batching, limits); a bad file or a change that
 * needs a restart keeps every current setting.  Partitions refused for
 * reused offsets are checked again. */
static void reload(struct daemon *d)
{
    sd_notify(0, d->phase == PH_RUNNING ? "RELOADING=1\nSTATUS=reloading settings"
                                         : "STATUS=reloading settings");
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
        if (d->schema_ok) /* it may start the linger timer, which dispatches */
            sk_txns_reload(d->txns);
        log_notice("reloaded settings: %d changed", changed);
    }
    /* An operator who reset a refused partition's marks reloads: check it
     * again, whatever became of the settings (not while stopping: nothing
     * is read any more). */
    if (d->phase <= PH_RUNNING && sk_consumer_recheck(d->consumer))
        kick(d);
    /* READY=1 ends the reload for systemd; before the daemon was ready, or
     * while it stops, it would say something false (and RELOADING=1 was
     * not sent then). */
    if (d->phase == PH_RUNNING)
        sd_notify(0, "READY=1");
    notify_status(d);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
    (void)s;
    struct daemon *d = ud;
    if (si->ssi_signo == SIGHUP)
        reload(d);
    else
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
                sk_consumer_inflight(d->consumer));
    d->exit_code = EXIT_FAILURE;
    set_phase(d, PH_DONE);
    return 0;
}

/* ---- periodic work --------------------------------------------------- */

/* WATCHDOG=1 means progress, not just a turning loop: it is withheld while
 * the oldest transaction attempt has held its connection longer than
 * pipeline.stall_timeout_ms (the statement timeouts should have ended it
 * long before), so systemd restarts a daemon that is alive but stuck. */
static void feed_watchdog(struct daemon *d, uint64_t now)
{
    uint64_t started = sk_txns_oldest(d->txns);
    uint64_t stall = (uint64_t)d->cfg->stall_timeout_ms * 1000u;
    char why[300];
    uint64_t refused = sk_output_stuck(d->output, why, sizeof why);
    if (started && now > started + stall) {
        if (!d->wedged) {
            sk_txns_log_wedged(d->txns, now, d->cfg->stall_timeout_ms / 1000u);
            sd_notify(0, "STATUS=wedged: a batch is stuck past pipeline.stall_timeout_ms");
        }
        d->wedged = true;
        return;
    }
    if (refused && now > refused + stall) {
        if (!d->wedged) {
            log_error("pipeline wedged: %s for %llu s (limit %u s); withholding the watchdog so "
                      "that systemd restarts the daemon",
                      why, (unsigned long long)((now - refused) / 1000000u),
                      d->cfg->stall_timeout_ms / 1000u);
            sd_notify(0, "STATUS=wedged: a topic refuses the outputs past pipeline.stall_timeout_ms");
        }
        d->wedged = true;
        return;
    }
    if (d->wedged)
        log_notice("pipeline moving again; feeding the watchdog");
    d->wedged = false;
    sd_notify(0, "WATCHDOG=1");
}

/* Give freed heap back to the system: glibc keeps what was freed in the
 * middle of its arenas, so after a burst RSS would stay at the burst's
 * peak.  Trims only when enough is idle to be worth the walk. */
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
    uint64_t period;
    if (s == d->commit_timer) {
        if (d->phase <= PH_DRAINING)
            sk_consumer_commit(d->consumer);
        period = d->cfg->commit_interval_ms * 1000ull;
    } else if (s == d->poll_timer) {
        sk_consumer_poll(d->consumer);
        sk_output_poll(d->output);
        trim_heap();
        period = POLL_USEC;
    } else if (s == d->status_timer) {
        notify_status(d);
        period = STATUS_USEC;
    } else {
        feed_watchdog(d, usec);
        period = d->watchdog_usec / 2;
    }
    sd_event_source_set_time(s, usec + period);
    return 0;
}

/* ---- /metrics ---------------------------------------------------------- */

static bool healthy(void *ud)
{
    const struct daemon *d = ud;
    char why[300];
    return d->phase == PH_RUNNING && sk_db_count_up(d->db) > 0 && !d->wedged &&
           !sk_output_stuck(d->output, why, sizeof why) && !sk_consumer_refused(d->consumer);
}

static void render_metrics(void *ud, struct sk_buf *b)
{
    const struct daemon *d = ud;
    struct sk_stats_view v = {
        .topic_users = d->cfg->topic_users,
        .topic_scores = d->cfg->topic_scores,
        .db_reconnects = sk_db_reconnects(d->db),
        .db_up = sk_db_count_up(d->db),
        .known_users = sk_txns_known_users(d->txns),
        .known_preloaded = sk_txns_preloaded(d->txns),
        .inflight = sk_consumer_inflight(d->consumer),
        .parts = sk_consumer_parts(d->consumer),
        .output_stuck = sk_output_stuck(d->output, (char[300]){0}, 300) != 0,
        .ready = healthy(ud),
        .watchdog_withheld = d->wedged,
    };
    sk_stats_render(&d->st, &v, b);
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

/* ---- building and tearing down ---------------------------------------- */

static int periodic(struct daemon *d, sd_event_source **s, uint64_t period_usec)
{
    int r = sd_event_add_time_relative(d->loop, s, CLOCK_MONOTONIC, period_usec, 10000,
                                       on_periodic, d);
    return r < 0 ? r : sd_event_source_set_enabled(*s, SD_EVENT_ON);
}

static int setup_loop(struct daemon *d)
{
    int r;
    if ((r = sd_event_add_signal(d->loop, NULL, SIGTERM, on_signal, d)) < 0 ||
        (r = sd_event_add_signal(d->loop, NULL, SIGINT, on_signal, d)) < 0 ||
        (r = sd_event_add_signal(d->loop, NULL, SIGHUP, on_signal, d)) < 0 ||
        (r = sd_event_add_time_relative(d->loop, &d->deadline_timer, CLOCK_MONOTONIC,
                                        (uint64_t)d->cfg->shutdown_timeout_ms * 1000u, 1000,
                                        on_deadline, d)) < 0 ||
        (r = sd_event_source_set_enabled(d->deadline_timer, SD_EVENT_OFF)) < 0 ||
        (r = periodic(d, &d->commit_timer, d->cfg->commit_interval_ms * 1000ull)) < 0 ||
        (r = periodic(d, &d->poll_timer, POLL_USEC)) < 0 ||
        (r = periodic(d, &d->status_timer, STATUS_USEC)) < 0) {
        log_error("cannot set up the event loop: %s", strerror(-r));
        return r;
    }
    if (sd_watchdog_enabled(0, &d->watchdog_usec) > 0 && d->watchdog_usec > 0 &&
        (r = periodic(d, &d->watchdog_timer, d->watchdog_usec / 2)) < 0) {
        log_error("cannot arm the watchdog timer: %s", strerror(-r));
        return r;
    }
    return 0;
}

/* Builds every object; returns an exit code (0 when all are built). */
static int setup(struct daemon *d)
{
    static const struct sk_consumer_ops cops = {
        .event = on_event,       .rejected = on_rejected, .assigned = on_assigned,
        .revoked = on_revoked,   .consumed = on_consumed, .answered = on_answered,
        .closed = on_consumer_closed, .fatal = on_fatal,
    };
    static const struct sk_txns_ops tops = {.finished = on_finished, .drop = on_drop,
                                            .marks_read = on_marks_read};
    static const struct sk_output_ops oops = {.delivered = on_delivered, .fatal = on_fatal};
    int r = sd_event_default(&d->loop);
    if (r < 0) {
        log_error("cannot create event loop: %s", strerror(-r));
        return EXIT_FAILURE;
    }
    sk_stats_init(&d->st);
    if ((r = sk_db_new(d->loop, d->cfg, on_db_idle, d, &d->db)) < 0)
        return r == -EINVAL ? EX_CONFIG : EX_UNAVAILABLE;
    if ((r = sk_migrate_check_new(d->cfg, &d->schema)) < 0)
        return r == -ENOMEM ? EXIT_FAILURE : EX_CONFIG;
    if ((r = sk_txns_new(d->loop, d->cfg, d->db, &d->st, &tops, d, &d->txns)) < 0) {
        log_error("cannot set up the transactions: %s", strerror(-r));
        return EXIT_FAILURE;
    }
    if ((r = sk_output_new(d->loop, d->cfg, &d->st, &oops, d, &d->output)) < 0 ||
        (r = sk_consumer_new(d->loop, d->cfg, &d->st, &cops, d, &d->consumer)) < 0 ||
        (r = setup_metrics(d)) < 0)
        return r == -EINVAL ? EX_CONFIG : EX_UNAVAILABLE;
    return setup_loop(d) < 0 ? EXIT_FAILURE : 0;
}

static void drop_after_loop(void *ud, struct sk_msg *m)
{
    (void)ud;
    sk_msg_free(m);
}

/* Order matters: deliveries already reported hand their messages back
 * first; the consumer leaves the group while the transactions can still
 * take back what its revoked partitions queued; then the transactions give
 * back what they hold, the producer purges what it holds, and the
 * partitions go with their last message. */
static void teardown(struct daemon *d)
{
    if (d->output)
        sk_output_poll(d->output);
    sk_consumer_stop(d->consumer);
    sk_txns_free(d->txns);
    sk_output_free(d->output, d->consumer ? on_drop : drop_after_loop, d);
    sk_consumer_free(d->consumer);
    sk_metrics_stop(d->metrics);
    sd_event_source_disable_unref(d->commit_timer);
    sd_event_source_disable_unref(d->poll_timer);
    sd_event_source_disable_unref(d->status_timer);
    sd_event_source_disable_unref(d->watchdog_timer);
    sd_event_source_disable_unref(d->deadline_timer);
    sk_db_free(d->db);
    sk_migrate_check_free(d->schema); /* after the pool: a query of it may be in flight */
    sd_event_unref(d->loop);
}

int sk_daemon_run(struct sk_config *cfg, const struct sk_settings_src *src)
{
    struct daemon dd = {.cfg = cfg, .src = src};
    struct daemon *d = &dd;
    /* Before any thread starts.  Two arenas, not eight per core, for
     * librdkafka's threads; fixed thresholds, because glibc otherwise raises
     * both after the first large buffer is freed and stops trimming. */
    mallopt(M_ARENA_MAX, 2);
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGHUP);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    signal(SIGPIPE, SIG_IGN);
    int r = setup(d);
    if (r != 0) {
        teardown(d);
        return r;
    }
    log_info("starting: brokers %s, group %s, database %s, pool %u", cfg->kafka_brokers,
             cfg->group_id, cfg->db.socket ? cfg->db.socket : cfg->db.host, cfg->db_pool_size);
    sk_db_start(d->db);
    notify_status(d); /* says what start-up waits for */
    r = sd_event_loop(d->loop);
    if (r < 0) {
        log_error("event loop failed: %s", strerror(-r));
        r = EXIT_FAILURE;
    }
    if (d->phase == PH_DONE && !d->failed)
        log_notice("stopped: consumed %llu, applied %llu, rejected %llu, duplicate %llu, results "
                   "delivered %llu; %llu transactions, %llu of them in one round trip (%llu run "
                   "again reading first)",
                   sk_stats_both(d->st.k_consumed), sk_stats_both(d->st.k_applied),
                   sk_stats_both(d->st.k_rejected), sk_stats_both(d->st.k_duplicates),
                   d->st.results, d->st.transactions, d->st.one_trip, d->st.one_trip_redone);
    teardown(d);
    return r;
}
