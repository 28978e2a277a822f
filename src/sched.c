/* sched — per-game batching, see include/sched.h.
 *
 * Group invariants (checked by the unit tests through the public API):
 *  - `waiting` (in the linger list) <=> has queued events && !due && nothing
 *    forces a flush yet;
 *  - `batch` != NULL <=> the group's one batch exists (ready, running or
 *    waiting for a retry); no second batch is formed until it is done;
 *  - a group with no queued events and no batch is freed. */
#include "sched.h"

#include "hash.h"
#include "list.h"

#include <errno.h>
#include <stdlib.h>

struct sk_group {
    int64_t key;
    struct sk_msg *head, *tail;
    unsigned n;
    size_t bytes;
    uint64_t since;          /* when the oldest queued event arrived */
    bool waiting;            /* in the linger list */
    bool due;                /* flush as soon as the current batch is done */
    struct sk_batch *batch;  /* the group's batch in flight, if any */
    uint64_t solo_until;     /* batches cut before this run alone */
    struct sk_group *hnext;  /* hash chain */
    struct sk_list wait;     /* in the linger list, oldest first */
};

struct sk_sched {
    struct sk_group **buckets;
    size_t nbuckets, ngroups;
    struct sk_list waiting; /* groups lingering, oldest first */
    struct sk_batch *rhead, *rtail;
    size_t nready;
    size_t queued;
    struct sk_sched_limits lim;
    uint64_t now; /* the latest time a caller told us */
};

static size_t bucket_of(const struct sk_sched *s, int64_t key)
{
    return sk_hash_u64((uint64_t)key) & (s->nbuckets - 1);
}

struct sk_sched *sk_sched_new(void)
{
    struct sk_sched *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    sk_list_init(&s->waiting);
    s->nbuckets = 1024;
    s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
    if (!s->buckets) {
        free(s);
        return NULL;
    }
    s->lim = (struct sk_sched_limits){.max_events = 500, .max_bytes = 1 << 20, .linger_usec = 20000};
    return s;
}

void sk_sched_set_limits(struct sk_sched *s, const struct sk_sched_limits *l) { s->lim = *l; }

/* The group that has lingered longest, NULL when none waits. */
static struct sk_group *oldest_waiting(const struct sk_sched *s)
{
    return sk_list_empty(&s->waiting) ? NULL
                                      : sk_list_entry(s->waiting.next, struct sk_group, wait);
}

static void wait_unlink(struct sk_sched *s, struct sk_group *g)
{
    if (!g->waiting)
        return;
    (void)s;
    sk_list_del(&g->wait);
    g->waiting = false;
}

static void wait_append(struct sk_sched *s, struct sk_group *g)
{
    if (g->waiting)
        return;
    sk_list_append(&s->waiting, &g->wait);
    g->waiting = true;
}

static void ready_push_back(struct sk_sched *s, struct sk_batch *b)
{
    b->next = NULL;
    if (s->rtail)
        s->rtail->next = b;
    else
        s->rhead = b;
    s->rtail = b;
    s->nready++;
}

static int grow(struct sk_sched *s)
{
    size_t n = s->nbuckets * 2;
    struct sk_group **nb = calloc(n, sizeof *nb);
    if (!nb)
        return -ENOMEM;
    struct sk_group **old = s->buckets;
    size_t oldn = s->nbuckets;
    s->buckets = nb;
    s->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        struct sk_group *g = old[i];
        while (g) {
            struct sk_group *nx = g->hnext;
            size_t bi = bucket_of(s, g->key);
            g->hnext = nb[bi];
            nb[bi] = g;
            g = nx;
        }
    }
    free(old);
    return 0;
}

static struct sk_group *group_get(struct sk_sched *s, int64_t key, bool create)
{
    for (struct sk_group *g = s->buckets[bucket_of(s, key)]; g; g = g->hnext)
        if (g->key == key)
            return g;
    if (!create)
        return NULL;
    if (s->ngroups >= s->nbuckets)
        (void)grow(s); /* a full table still works, only slower */
    struct sk_group *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->key = key;
    size_t bi = bucket_of(s, key);
    g->hnext = s->buckets[bi];
    s->buckets[bi] = g;
    s->ngroups++;
    return g;
}

static void group_maybe_free(struct sk_sched *s, struct sk_group *g)
{
    if (g->n || g->batch)
        return;
    wait_unlink(s, g);
    struct sk_group **pp = &s->buckets[bucket_of(s, g->key)];
    while (*pp != g)
        pp = &(*pp)->hnext;
    *pp = g->hnext;
    s->ngroups--;
    free(g);
}

static bool group_full(const struct sk_sched *s, const struct sk_group *g)
{
    return g->n >= s->lim.max_events || g->bytes >= s->lim.max_bytes;
}

/* Cut the next batch from the group's queue: up to max_events events and
 * max_bytes bytes, at least one event. */
static void make_batch(struct sk_sched *s, struct sk_group *g, enum sk_flush why)
{
    if (!g->head)
        return;
    struct sk_batch *b = calloc(1, sizeof *b);
    if (!b) {
        g->due = true; /* try again at the next expiry or completion */
        return;
    }
    wait_unlink(s, g);
    b->group = g;
    b->reason = why;
    b->solo = g->solo_until > s->now;
    b->key = g->key;
    b->head = g->head;
    struct sk_msg *last = NULL, *m = g->head;
    size_t bytes = 0;
    while (m && (b->n == 0 || (b->n < s->lim.max_events && bytes + m->bytes <= s->lim.max_bytes))) {
        bytes += m->bytes;
        b->n++;
        last = m;
        m = m->next;
    }
    if (last)
        last->next = NULL;
    g->head = m;
    if (!m)
        g->tail = NULL;
    g->n -= b->n;
    g->bytes -= bytes;
    b->bytes = bytes;
    s->queued -= b->n;
    g->batch = b;
    /* Whatever stays queued is older than anything that arrives next: it
     * goes as soon as this batch is done. */
    g->due = g->n > 0;
    ready_push_back(s, b);
}

int sk_sched_add(struct sk_sched *s, int64_t key, struct sk_msg *m, uint64_t now)
{
    s->now = now;
    struct sk_group *g = group_get(s, key, true);
    if (!g)
        return -ENOMEM;
    m->next = NULL;
    if (g->tail)
        g->tail->next = m;
    else
        g->head = m;
    g->tail = m;
    g->n++;
    g->bytes += m->bytes;
    s->queued++;
    if (g->n == 1) {
        g->since = now;
        if (!g->due)
            wait_append(s, g);
    }
    if (group_full(s, g)) {
        if (g->batch) {
            g->due = true;
            wait_unlink(s, g);
        } else {
            make_batch(s, g, SK_FLUSH_FULL);
        }
    } else if (!g->batch && g->due) {
        make_batch(s, g, SK_FLUSH_BACKLOG);
    }
    return 0;
}

void sk_sched_expire(struct sk_sched *s, uint64_t now)
{
    s->now = now;
    struct sk_group *g;
    while ((g = oldest_waiting(s)) && g->since + s->lim.linger_usec <= now) {
        wait_unlink(s, g);
        if (g->batch)
            g->due = true;
        else
            make_batch(s, g, SK_FLUSH_LINGER);
    }
}

uint64_t sk_sched_next_deadline(const struct sk_sched *s)
{
    const struct sk_group *g = oldest_waiting(s);
    return g ? g->since + s->lim.linger_usec : UINT64_MAX;
}

void sk_sched_flush_all(struct sk_sched *s)
{
    struct sk_group *g;
    while ((g = oldest_waiting(s))) {
        wait_unlink(s, g);
        if (g->batch)
            g->due = true;
        else
            make_batch(s, g, SK_FLUSH_DRAIN);
    }
}

struct sk_batch *sk_sched_pop_ready(struct sk_sched *s)
{
    struct sk_batch *b = s->rhead;
    if (!b)
        return NULL;
    s->rhead = b->next;
    if (!s->rhead)
        s->rtail = NULL;
    b->next = NULL;
    s->nready--;
    return b;
}

struct sk_batch *sk_sched_peek_ready(const struct sk_sched *s) { return s->rhead; }

void sk_sched_push_front(struct sk_sched *s, struct sk_batch *b)
{
    b->next = s->rhead;
    s->rhead = b;
    if (!s->rtail)
        s->rtail = b;
    s->nready++;
}

void sk_sched_split(struct sk_sched *s, struct sk_batch *b)
{
    if (b->n < 2)
        return;
    unsigned keep = b->n / 2;
    struct sk_msg *last = b->head;
    for (unsigned i = 1; i < keep; i++)
        last = last->next;
    struct sk_msg *rest = last->next;
    last->next = NULL;
    unsigned nrest = b->n - keep;
    b->n = keep;
    struct sk_group *g = b->group;
    struct sk_msg *rtail = rest;
    size_t bytes = rtail->bytes;
    while (rtail->next) {
        rtail = rtail->next;
        bytes += rtail->bytes;
    }
    rtail->next = g->head;
    if (!g->head)
        g->tail = rtail;
    g->head = rest;
    g->n += nrest;
    g->bytes += bytes;
    b->bytes -= bytes;
    s->queued += nrest;
    wait_unlink(s, g);
    g->due = true;
}

void sk_sched_done(struct sk_sched *s, struct sk_batch *b, uint64_t now)
{
    s->now = now;
    struct sk_group *g = b->group;
    g->batch = NULL;
    free(b);
    if (g->n && (g->due || group_full(s, g))) {
        make_batch(s, g, group_full(s, g) ? SK_FLUSH_FULL : SK_FLUSH_BACKLOG);
    } else if (g->n) {
        if (!g->waiting) {
            g->since = now;
            wait_append(s, g);
        }
    }
    group_maybe_free(s, g);
}

void sk_sched_set_solo(struct sk_sched *s, int64_t key, uint64_t until)
{
    struct sk_group *g = group_get(s, key, false);
    if (g)
        g->solo_until = until;
}

void sk_sched_drop_part(struct sk_sched *s, const struct sk_part *p, sk_drop_fn drop, void *ud)
{
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct sk_group *g = s->buckets[i];
        while (g) {
            struct sk_group *gnext = g->hnext;
            struct sk_msg **pp = &g->head, *prev = NULL;
            while (*pp) {
                struct sk_msg *m = *pp;
                if (m->part == p) {
                    *pp = m->next;
                    g->n--;
                    g->bytes -= m->bytes;
                    s->queued--;
                    drop(ud, m);
                } else {
                    prev = m;
                    pp = &m->next;
                }
            }
            g->tail = prev;
            if (!g->n) {
                g->due = false;
                wait_unlink(s, g);
            }
            group_maybe_free(s, g);
            g = gnext;
        }
    }
}

void sk_sched_free(struct sk_sched *s, sk_drop_fn drop, void *ud)
{
    if (!s)
        return;
    struct sk_batch *b;
    while ((b = sk_sched_pop_ready(s))) {
        while (b->head) {
            struct sk_msg *m = b->head;
            b->head = m->next;
            drop(ud, m);
        }
        b->group->batch = NULL;
        free(b);
    }
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct sk_group *g = s->buckets[i];
        while (g) {
            struct sk_group *gnext = g->hnext;
            while (g->head) {
                struct sk_msg *m = g->head;
                g->head = m->next;
                drop(ud, m);
            }
            free(g);
            g = gnext;
        }
    }
    free(s->buckets);
    free(s);
}

const char *sk_flush_name(enum sk_flush f)
{
    switch (f) {
    case SK_FLUSH_FULL: return "full";
    case SK_FLUSH_LINGER: return "linger";
    case SK_FLUSH_BACKLOG: return "backlog";
    case SK_FLUSH_DRAIN: return "drain";
    }
    return "?";
}

size_t sk_sched_queued(const struct sk_sched *s) { return s->queued; }
size_t sk_sched_ready(const struct sk_sched *s) { return s->nready; }
size_t sk_sched_groups(const struct sk_sched *s) { return s->ngroups; }
