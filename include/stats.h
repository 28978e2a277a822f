/* stats — the daemon's counters and histograms, and the Prometheus text
 * of /metrics made from them.
 *
 * One struct sk_stats is owned by the daemon; the consumer, the
 * transaction module and the output count into it directly (all on the
 * loop's thread, so no locking).  What is not a counter of ours (pool
 * connections, known users, partitions and their lag) is handed to the
 * renderer as a view at scrape time. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "event.h"
#include "part.h"

struct sk_hist {
    const double *bounds; /* upper bounds, ascending; +Inf is implied */
    size_t n;
    uint64_t counts[24];  /* per bucket (not cumulative), counts[n] = above the last bound */
    double sum;
    uint64_t count;
};
void sk_hist_init(struct sk_hist *h, const double *bounds, size_t n);
void sk_hist_observe(struct sk_hist *h, double v);
/* Append "name_bucket{le=..}", "_sum" and "_count" lines; labels may be
 * "" or e.g. "topic=\"x\"" (without braces). */
void sk_hist_render(const struct sk_hist *h, const char *name, const char *labels, struct sk_buf *out);

/* Counters, by event kind where it matters (index: enum sk_event_kind). */
struct sk_stats {
    unsigned long long results, dead_letters, result_errors, batches, transactions, retries;
    unsigned long long one_trip, one_trip_redone; /* one-round-trip path: committed, run again */
    unsigned long long slow_transactions; /* committed after db.slow_transaction_ms or more */
    unsigned long long users_deleted; /* users deleted by tombstones (committed) */
    unsigned long long outputs_cut[2]; /* results, dead-letter copies sent smaller to fit a limit */
    unsigned long long k_consumed[3], k_applied[3], k_rejected[3], k_duplicates[3];
    unsigned long long rejected_by[SK_E__COUNT]; /* rejected events, by reason (enum sk_reject) */
    struct sk_hist batch_size;  /* events per committed batch */
    struct sk_hist txn_seconds; /* connection acquired -> COMMIT done, per committed transaction */
    /* per event: consumed -> its committed attempt took a connection (the
     * batch's linger and the wait for a connection or for the game) */
    struct sk_hist wait_seconds;
    struct sk_hist event_seconds; /* per event: consumed -> result handed to the producer */
    struct sk_hist own_seconds;   /* the same, less the transaction that applied it */
    struct sk_hist age_seconds;   /* per event: Kafka timestamp -> result handed to the producer */
    size_t inflight_bytes; /* a gauge the consumer keeps: the memory its events in flight hold */
};

void sk_stats_init(struct sk_stats *st);
/* Both topics together. */
unsigned long long sk_stats_both(const unsigned long long *per_kind);

/* What the other modules tell at scrape time. */
struct sk_stats_view {
    const char *topic_users, *topic_scores;
    unsigned long db_reconnects;
    unsigned db_up;
    size_t known_users, known_preloaded;
    size_t inflight;
    bool output_stuck; /* a topic refuses our outputs for good */
    const struct sk_part *parts; /* assigned partitions (list), for counts and lag */
    bool ready;
    bool watchdog_withheld; /* WATCHDOG=1 withheld: the pipeline is wedged */
};

void sk_stats_render(const struct sk_stats *st, const struct sk_stats_view *v, struct sk_buf *b);

/* Seconds from one monotonic time to a later one (0 if not later). */
double sk_seconds_between(uint64_t from, uint64_t to);
