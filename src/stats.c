/* stats — counters, histograms and the /metrics text, see include/stats.h. */
#include "stats.h"

#include <dirent.h>
#include <malloc.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "event.h"

#ifndef SK_VERSION
#define SK_VERSION "0.0.0"
#endif

static const double batch_size_bounds[] = {1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000};
static const double txn_seconds_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,   0.25,   0.5,   1,    2.5,   5, 10};
/* Finer around the tens of milliseconds an event should take end to end. */
static const double event_seconds_bounds[] = {0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15,
                                              0.25,  0.5,  1,    2.5,  5,    10,   30};

/* The daemon's own share of an event is milliseconds or less. */
static const double own_seconds_bounds[] = {0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01,
                                            0.015,  0.02,  0.03,  0.05,  0.1,   0.25,   0.5,
                                            1,      2.5,   5,     10,    30};

void sk_hist_init(struct sk_hist *h, const double *bounds, size_t n)
{
    *h = (struct sk_hist){.bounds = bounds, .n = n < 23 ? n : 23};
}

void sk_hist_observe(struct sk_hist *h, double v)
{
    size_t i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void sk_hist_render(const struct sk_hist *h, const char *name, const char *labels, struct sk_buf *out)
{
    const char *sep = labels[0] ? "," : "";
    uint64_t cum = 0;
    for (size_t i = 0; i < h->n; i++) {
        cum += h->counts[i];
        sk_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, h->bounds[i],
                      (unsigned long long)cum);
    }
    cum += h->counts[h->n];
    sk_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
    sk_buf_printf(out, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, h->sum, name, labels,
                  (unsigned long long)h->count);
}

#define HIST_INIT(h, bounds) sk_hist_init((h), (bounds), sizeof(bounds) / sizeof *(bounds))
void sk_stats_init(struct sk_stats *st)
{
    *st = (struct sk_stats){0};
    HIST_INIT(&st->batch_size, batch_size_bounds);
    HIST_INIT(&st->txn_seconds, txn_seconds_bounds);
    HIST_INIT(&st->wait_seconds, event_seconds_bounds);
    HIST_INIT(&st->event_seconds, event_seconds_bounds);
    HIST_INIT(&st->own_seconds, own_seconds_bounds);
    HIST_INIT(&st->age_seconds, event_seconds_bounds);
}
#undef HIST_INIT

unsigned long long sk_stats_both(const unsigned long long *per_kind)
{
    return per_kind[SK_EV_USER] + per_kind[SK_EV_SCORE];
}

double sk_seconds_between(uint64_t from, uint64_t to)
{
    return to > from ? (double)(to - from) / 1e6 : 0.0;
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

static void per_topic(struct sk_buf *b, const struct sk_stats_view *v, const char *name,
                      const char *help, const unsigned long long *n)
{
    sk_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    sk_buf_printf(b, "%s{topic=\"%s\"} %llu\n", name, v->topic_users, n[SK_EV_USER]);
    sk_buf_printf(b, "%s{topic=\"%s\"} %llu\n", name, v->topic_scores, n[SK_EV_SCORE]);
}

/* The standard process_* series, read at scrape time (getrusage and two
 * small /proc files: nothing that blocks).  A value that cannot be read
 * is left out rather than shown as 0. */
static void process_metrics(struct sk_buf *b)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        sk_buf_printf(b, "# HELP process_cpu_seconds_total User and system CPU time spent, in "
                         "seconds.\n# TYPE process_cpu_seconds_total counter\n"
                         "process_cpu_seconds_total %.6f\n", cpu);
    }
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long long pages_total, pages_rss;
    if (f && fscanf(f, "%llu %llu", &pages_total, &pages_rss) == 2)
        gauge(b, "process_resident_memory_bytes", "Resident memory size, in bytes.",
              (long long)(pages_rss * (unsigned long long)sysconf(_SC_PAGESIZE)));
    if (f)
        fclose(f);
    DIR *dir = opendir("/proc/self/fd");
    if (dir) {
        long long n = 0;
        while (readdir(dir))
            n++;
        closedir(dir);
        /* less ".", ".." and the descriptor that read the directory */
        gauge(b, "process_open_fds", "Open file descriptors.", n > 3 ? n - 3 : 0);
    }
}

void sk_stats_render(const struct sk_stats *st, const struct sk_stats_view *v, struct sk_buf *b)
{
    sk_buf_puts(b, "# HELP scorekeeper_build_info The running version (always 1).\n"
                   "# TYPE scorekeeper_build_info gauge\n"
                   "scorekeeper_build_info{version=\"" SK_VERSION "\"} 1\n");
    per_topic(b, v, "scorekeeper_events_consumed_total", "Events consumed.", st->k_consumed);
    per_topic(b, v, "scorekeeper_events_applied_total", "Events applied to the database.",
              st->k_applied);
    per_topic(b, v, "scorekeeper_events_rejected_total", "Events rejected (invalid or refused).",
              st->k_rejected);
    sk_buf_puts(b, "# HELP scorekeeper_events_rejected_by_reason_total Events rejected, by the "
                   "result's error.code (only codes seen since start).\n"
                   "# TYPE scorekeeper_events_rejected_by_reason_total counter\n");
    for (unsigned i = 0; i < SK_E__COUNT; i++)
        if (st->rejected_by[i])
            sk_buf_printf(b, "scorekeeper_events_rejected_by_reason_total{reason=\"%s\"} %llu\n",
                          sk_reject_code((enum sk_reject)i), st->rejected_by[i]);
    per_topic(b, v, "scorekeeper_events_duplicate_total",
              "Events already applied before (consumed again), not applied twice.", st->k_duplicates);
    counter(b, "scorekeeper_users_deleted_total",
            "Users deleted by a tombstone on the users topic, with their game_players rows.",
            st->users_deleted);
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
    histogram(b, "scorekeeper_event_own_seconds",
              "Time from consuming an event to handing its result to the producer, less the time of "
              "the transaction that applied it: the daemon's own share.",
              &st->own_seconds);
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
            "BIGINT edge).", st->one_trip_redone);
    counter(b, "scorekeeper_db_reconnects_total", "Database connections lost or failed to open.",
            v->db_reconnects);
    gauge(b, "scorekeeper_db_connections_up", "Database connections open.", v->db_up);
    gauge(b, "scorekeeper_known_users",
          "Usernames known to exist (not sent to INSERT IGNORE): read at start, then learned.",
          (long long)v->known_users);
    gauge(b, "scorekeeper_known_users_preloaded", "Usernames read from the database at start.",
          (long long)v->known_preloaded);
    counter(b, "scorekeeper_results_delivered_total", "Result events delivered.", st->results);
    counter(b, "scorekeeper_dead_letters_delivered_total", "Dead-letter copies delivered.",
            st->dead_letters);
    counter(b, "scorekeeper_delivery_failures_total",
            "Result or dead-letter deliveries that failed (and were sent again).", st->result_errors);
    sk_buf_printf(b, "# HELP scorekeeper_outputs_cut_total Outputs sent in a smaller form because "
                   "they were over a size limit (logged).\n# TYPE scorekeeper_outputs_cut_total "
                   "counter\nscorekeeper_outputs_cut_total{output=\"result\"} %llu\n"
                   "scorekeeper_outputs_cut_total{output=\"dead_letter\"} %llu\n",
                  st->outputs_cut[0], st->outputs_cut[1]);
    gauge(b, "scorekeeper_output_refused",
          "1 while a topic refuses our outputs for good (authorization, no such topic).",
          v->output_stuck ? 1 : 0);
    gauge(b, "scorekeeper_events_in_flight", "Events consumed whose results are not delivered yet.",
          (long long)v->inflight);
    gauge(b, "scorekeeper_events_in_flight_bytes",
          "Memory the events in flight hold (payload copy, parsed event, result), as counted "
          "against pipeline.max_inflight_bytes.", (long long)st->inflight_bytes);
    unsigned n = 0, held = 0, refused = 0;
    size_t marks = 0;
    for (const struct sk_part *p = v->parts; p; p = p->next) {
        n++;
        held += p->held;
        refused += p->check == SK_PART_REFUSED;
        marks += p->marks ? sk_marks_count(p->marks) : 0;
    }
    gauge(b, "scorekeeper_game_marks",
          "Games whose applied offset is remembered, over the assigned score partitions (at most "
          "pipeline.game_marks).", (long long)marks);
    gauge(b, "scorekeeper_partitions_assigned", "Input partitions assigned to this instance.", n);
    gauge(b, "scorekeeper_partitions_paused", "Assigned partitions paused by backpressure.", held);
    gauge(b, "scorekeeper_partitions_refused",
          "Assigned partitions refused because game_offsets holds marks beyond the end of their "
          "log (offsets used again; logged with the command that resets them).", refused);
    sk_buf_puts(b, "# HELP scorekeeper_consumer_lag_messages Messages behind the end of the "
                   "partition (librdkafka statistics).\n"
                   "# TYPE scorekeeper_consumer_lag_messages gauge\n");
    for (const struct sk_part *p = v->parts; p; p = p->next)
        if (p->lag >= 0)
            sk_buf_printf(b, "scorekeeper_consumer_lag_messages{topic=\"%s\",partition=\"%d\"} "
                          "%lld\n", p->topic, (int)p->partition, (long long)p->lag);
    /* The old name, kept for one release so dashboards can move. */
    sk_buf_puts(b, "# HELP scorekeeper_consumer_lag Deprecated: scorekeeper_consumer_lag_messages."
                   "\n# TYPE scorekeeper_consumer_lag gauge\n");
    for (const struct sk_part *p = v->parts; p; p = p->next)
        if (p->lag >= 0)
            sk_buf_printf(b, "scorekeeper_consumer_lag{topic=\"%s\",partition=\"%d\"} %lld\n",
                          p->topic, (int)p->partition, (long long)p->lag);
    gauge(b, "scorekeeper_ready", "1 once READY=1 was sent and the pipeline is healthy.",
          v->ready ? 1 : 0);
    gauge(b, "scorekeeper_watchdog_withheld",
          "1 while WATCHDOG=1 is withheld because the pipeline is wedged (past "
          "pipeline.stall_timeout_ms).", v->watchdog_withheld ? 1 : 0);
    /* The heap as malloc sees it (all arenas): in use, and held from the
     * system.  RSS minus these is code, stacks and librdkafka's buffers. */
    struct mallinfo2 mi = mallinfo2();
    gauge(b, "scorekeeper_heap_in_use_bytes", "Heap bytes allocated (malloc, all arenas).",
          (long long)mi.uordblks);
    gauge(b, "scorekeeper_heap_held_bytes", "Heap bytes obtained from the system (malloc arenas "
          "and mmap-ed blocks).", (long long)(mi.arena + mi.hblkhd));
    process_metrics(b);
}

