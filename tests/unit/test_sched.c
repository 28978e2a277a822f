/* Unit tests: per-game batching (sched), poison splitting included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "part.h"
#include "sched.h"

static struct sk_msg *mk(int64_t off, size_t bytes)
{
    struct sk_msg *m = sk_msg_new(NULL, off);
    assert_non_null(m);
    m->bytes = bytes;
    return m;
}

static void drop(void *ud, struct sk_msg *m)
{
    (void)ud;
    sk_msg_free(m);
}

static unsigned take(struct sk_sched *s, struct sk_batch *b)
{
    unsigned n = 0;
    while (b->head) {
        struct sk_msg *m = b->head;
        b->head = m->next;
        sk_msg_free(m);
        n++;
    }
    sk_sched_done(s, b, 0);
    return n;
}

static struct sk_sched *mksched(unsigned max_events, size_t max_bytes, uint64_t linger)
{
    struct sk_sched *s = sk_sched_new();
    assert_non_null(s);
    struct sk_sched_limits l = {max_events, max_bytes, linger};
    sk_sched_set_limits(s, &l);
    return s;
}

static void flush_by_size(void **state)
{
    (void)state;
    struct sk_sched *s = mksched(3, 1 << 20, 1000);
    for (int i = 0; i < 2; i++)
        assert_int_equal(sk_sched_add(s, 42, mk(i, 10), 0), 0);
    assert_null(sk_sched_pop_ready(s));
    assert_int_equal(sk_sched_add(s, 42, mk(2, 10), 0), 0);
    struct sk_batch *b = sk_sched_pop_ready(s);
    assert_non_null(b);
    assert_int_equal(b->n, 3);
    assert_int_equal(b->reason, SK_FLUSH_FULL);
    assert_int_equal(b->key, 42);
    assert_int_equal(b->head->offset, 0);
    assert_int_equal(take(s, b), 3);
    assert_int_equal(sk_sched_groups(s), 0);
    sk_sched_free(s, drop, NULL);
}

static void flush_by_bytes(void **state)
{
    (void)state;
    struct sk_sched *s = mksched(100, 25, 1000);
    assert_int_equal(sk_sched_add(s, 1, mk(0, 10), 0), 0);
    assert_int_equal(sk_sched_add(s, 1, mk(1, 10), 0), 0);
    assert_null(sk_sched_pop_ready(s));
    assert_int_equal(sk_sched_add(s, 1, mk(2, 10), 0), 0);
    struct sk_batch *b = sk_sched_pop_ready(s);
    assert_non_null(b);
    /* 3 x 10 bytes exceed 25: the batch takes what fits, the rest waits */
    assert_int_equal(b->n, 2);
    assert_int_equal(sk_sched_queued(s), 1);
    assert_int_equal(take(s, b), 2);
    /* the leftover is due at once after the batch is done */
    b = sk_sched_pop_ready(s);
    assert_non_null(b);
    assert_int_equal(b->head->offset, 2);
    assert_int_equal(b->reason, SK_FLUSH_BACKLOG);
    take(s, b);
    sk_sched_free(s, drop, NULL);
}

static void flush_by_linger(void **state)
{
    (void)state;
    struct sk_sched *s = mksched(100, 1 << 20, 1000);
    assert_int_equal(sk_sched_add(s, 7, mk(0, 1), 5000), 0);
    assert_int_equal(sk_sched_add(s, 8, mk(1, 1), 5500), 0);
    assert_int_equal(sk_sched_next_deadline(s), 6000);
    sk_sched_expire(s, 5999);
    assert_null(sk_sched_pop_ready(s));
    sk_sched_expire(s, 6000);
    struct sk_batch *b = sk_sched_pop_ready(s);
    assert_non_null(b);
    assert_int_equal(b->key, 7);
    assert_int_equal(b->reason, SK_FLUSH_LINGER);
    assert_null(sk_sched_pop_ready(s));
    assert_int_equal(sk_sched_next_deadline(s), 6500);
    take(s, b);
    sk_sched_expire(s, 7000);
    b = sk_sched_pop_ready(s);
    assert_non_null(b);
    assert_int_equal(b->key, 8);
    take(s, b);
    assert_int_equal(sk_sched_next_deadline(s), UINT64_MAX);
    sk_sched_free(s, drop, NULL);
}

/* One batch per game at a time: events arriving while it runs wait. */
static void one_batch_per_game(void **state)
{
    (void)state;
    struct sk_sched *s = mksched(2, 1 << 20, 1000);
    sk_sched_add(s, 5, mk(0, 1), 0);
    sk_sched_add(s, 5, mk(1, 1), 0);
    struct sk_batch *b = sk_sched_pop_ready(s);
    assert_non_null(b);
    sk_sched_add(s, 5, mk(2, 1), 0);
    sk_sched_add(s, 5, mk(3, 1), 0);
    sk_sched_add(s, 5, mk(4, 1), 0);
    sk_sched_expire(s, 100000);
    assert_null(sk_sched_pop_ready(s)); /* still running: nothing new */
    take(s, b);
    b = sk_sched_pop_ready(s);
    assert_non_null(b);
    assert_int_equal(b->n, 2);
    assert_int_equal(b->head->offset, 2);
    assert_int_equal(b->head->next->offset, 3);
    take(s, b);
    b = sk_sched_pop_ready(s);
    assert_non_null(b);
    assert_int_equal(b->head->offset, 4);
    take(s, b);
    sk_sched_free(s, drop, NULL);
}

/* Poison isolation: a split keeps order, the rest comes back first. */
static void split_keeps_order(void **state)
{
    (void)state;
    struct sk_sched *s = mksched(5, 1 << 20, 1000);
    for (int i = 0; i < 5; i++)
        sk_sched_add(s, 9, mk(i, 1), 0);
    sk_sched_add(s, 9, mk(5, 1), 0); /* newer, queued behind */
    struct sk_batch *b = sk_sched_pop_ready(s);
    assert_int_equal(b->n, 5);
    sk_sched_split(s, b);
    assert_int_equal(b->n, 2);
    assert_int_equal(b->head->offset, 0);
    assert_int_equal(b->head->next->offset, 1);
    assert_null(b->head->next->next);
    take(s, b);
    b = sk_sched_pop_ready(s);
    assert_non_null(b);
    int64_t want = 2;
    for (struct sk_msg *m = b->head; m; m = m->next)
        assert_int_equal(m->offset, want++);
    assert_int_equal(want, 6);
    take(s, b);
    sk_sched_free(s, drop, NULL);
}

static void retry_goes_first(void **state)
{
    (void)state;
    struct sk_sched *s = mksched(1, 1 << 20, 1000);
    sk_sched_add(s, 1, mk(0, 1), 0);
    sk_sched_add(s, 2, mk(1, 1), 0);
    struct sk_batch *a = sk_sched_pop_ready(s);
    assert_int_equal(a->key, 1);
    sk_sched_push_front(s, a);
    assert_ptr_equal(sk_sched_pop_ready(s), a);
    take(s, a);
    struct sk_batch *b = sk_sched_pop_ready(s);
    assert_int_equal(b->key, 2);
    take(s, b);
    sk_sched_free(s, drop, NULL);
}

static void drop_revoked_partition(void **state)
{
    (void)state;
    struct sk_part *p1 = sk_part_new("t", 0, SK_EV_SCORE, 100),
                   *p2 = sk_part_new("t", 1, SK_EV_SCORE, 100);
    struct sk_sched *s = mksched(100, 1 << 20, 1000);
    for (int i = 0; i < 6; i++) {
        struct sk_msg *m = mk(i, 1);
        m->part = i % 2 ? p2 : p1;
        m->part->refs++;
        sk_sched_add(s, i < 3 ? 1 : 2, m, 0);
    }
    sk_sched_drop_part(s, p1, drop, NULL);
    assert_int_equal(sk_sched_queued(s), 3);
    assert_int_equal(p1->refs, 0);
    sk_sched_flush_all(s);
    unsigned n = 0;
    struct sk_batch *b;
    while ((b = sk_sched_pop_ready(s))) {
        for (struct sk_msg *m = b->head; m; m = m->next)
            assert_ptr_equal(m->part, p2);
        n += take(s, b);
    }
    assert_int_equal(n, 3);
    sk_sched_free(s, drop, NULL);
    sk_part_free(p1);
    sk_part_free(p2);
}

static void many_groups(void **state)
{
    (void)state;
    struct sk_sched *s = mksched(10, 1 << 20, 1000);
    for (int64_t g = 1; g <= 5000; g++)
        assert_int_equal(sk_sched_add(s, g, mk(g, 1), 0), 0);
    assert_int_equal(sk_sched_groups(s), 5000);
    sk_sched_flush_all(s);
    assert_int_equal(sk_sched_ready(s), 5000);
    struct sk_batch *b;
    while ((b = sk_sched_pop_ready(s)))
        take(s, b);
    assert_int_equal(sk_sched_groups(s), 0);
    sk_sched_free(s, drop, NULL);
}

/* The batch holds offsets from, from+1, ... (n of them), in order. */
static void assert_run(const struct sk_batch *b, int64_t from, unsigned n)
{
    assert_non_null(b);
    assert_int_equal(b->n, n);
    unsigned count = 0;
    int64_t want = from;
    for (const struct sk_msg *m = b->head; m; m = m->next) {
        assert_int_equal(m->offset, want);
        want++;
        count++;
    }
    assert_int_equal(count, n);
}

/* A batch of n events of game 1, nothing else queued. */
static struct sk_batch *batch_of(struct sk_sched *s, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(sk_sched_add(s, 1, mk(i, 10), 0), 0);
    struct sk_batch *b = sk_sched_pop_ready(s);
    assert_run(b, 0, n);
    assert_null(sk_sched_pop_ready(s));
    return b;
}

/* Every size from 2 to 9: n/2 kept, n - n/2 back, order kept on both
 * sides; the rest is the next batch. */
static void split_sizes(void **state)
{
    (void)state;
    for (unsigned n = 2; n <= 9; n++) {
        struct sk_sched *s = mksched(n, 1 << 20, 1000);
        struct sk_batch *b = batch_of(s, n);
        sk_sched_split(s, b);
        assert_run(b, 0, n / 2);
        assert_int_equal(sk_sched_queued(s), n - n / 2);
        assert_null(sk_sched_pop_ready(s)); /* the game's batch still runs */
        take(s, b);
        b = sk_sched_pop_ready(s);
        assert_run(b, n / 2, n - n / 2);
        assert_int_equal(b->reason, SK_FLUSH_BACKLOG);
        assert_int_equal(sk_sched_queued(s), 0);
        take(s, b);
        assert_int_equal(sk_sched_groups(s), 0);
        sk_sched_free(s, drop, NULL);
    }
}

/* Split of 2: one and one.  Of 3 (odd): one kept, two back; the two split
 * again: one and one. Down to single events, in order. */
static void split_down_to_one(void **state)
{
    (void)state;
    struct sk_sched *s = mksched(3, 1 << 20, 1000);
    struct sk_batch *b = batch_of(s, 3);
    sk_sched_split(s, b);
    assert_run(b, 0, 1);
    take(s, b);
    b = sk_sched_pop_ready(s);
    assert_run(b, 1, 2);
    sk_sched_split(s, b);
    assert_run(b, 1, 1);
    assert_int_equal(sk_sched_queued(s), 1);
    take(s, b);
    b = sk_sched_pop_ready(s);
    assert_run(b, 2, 1);
    take(s, b);
    assert_null(sk_sched_pop_ready(s));
    sk_sched_free(s, drop, NULL);
}

/* A single event cannot be split: nothing changes. */
static void split_of_one_is_noop(void **state)
{
    (void)state;
    struct sk_sched *s = mksched(1, 1 << 20, 1000);
    struct sk_batch *b = batch_of(s, 1);
    sk_sched_split(s, b);
    assert_run(b, 0, 1);
    assert_int_equal(sk_sched_queued(s), 0);
    take(s, b);
    assert_null(sk_sched_pop_ready(s));
    assert_int_equal(sk_sched_groups(s), 0);
    sk_sched_free(s, drop, NULL);
}

/* Events of the game queued before and after the split both come after
 * the rest, in partition order; other games are untouched. */
static void rest_ahead_of_newer(void **state)
{
    (void)state;
    struct sk_sched *s = mksched(4, 1 << 20, 1000);
    struct sk_batch *b = batch_of(s, 4);      /* 0..3 */
    sk_sched_add(s, 1, mk(4, 10), 0);         /* newer, before the split */
    sk_sched_add(s, 2, mk(100, 10), 0);       /* another game */
    sk_sched_split(s, b);                     /* keeps 0, 1; gives back 2, 3 */
    sk_sched_add(s, 1, mk(5, 10), 0);         /* newer, after the split */
    assert_int_equal(sk_sched_queued(s), 5);
    assert_run(b, 0, 2);
    take(s, b);
    b = sk_sched_pop_ready(s);
    assert_run(b, 2, 4); /* 2, 3 (given back), then 4, 5 */
    take(s, b);
    sk_sched_expire(s, 1000);
    b = sk_sched_pop_ready(s);
    assert_non_null(b);
    assert_int_equal(b->key, 2);
    assert_run(b, 100, 1);
    take(s, b);
    assert_null(sk_sched_pop_ready(s));
    sk_sched_free(s, drop, NULL);
}

/* The group had nothing queued: the rest becomes its whole queue, and an
 * event added afterwards goes behind it (the queue's tail is right). */
static void rest_into_empty_group(void **state)
{
    (void)state;
    struct sk_sched *s = mksched(100, 1 << 20, 1000);
    for (int i = 0; i < 6; i++)
        sk_sched_add(s, 1, mk(i, 10), 0);
    sk_sched_expire(s, 1000);
    struct sk_batch *b = sk_sched_pop_ready(s);
    assert_run(b, 0, 6);
    sk_sched_split(s, b);
    sk_sched_add(s, 1, mk(6, 10), 1000);
    sk_sched_add(s, 1, mk(7, 10), 1000);
    take(s, b);
    b = sk_sched_pop_ready(s);
    assert_run(b, 3, 5);
    take(s, b);
    assert_int_equal(sk_sched_queued(s), 0);
    assert_int_equal(sk_sched_groups(s), 0);
    sk_sched_free(s, drop, NULL);
}

/* The given-back events count again in the group's size and bytes: the
 * next batch is cut by the limits, and a new event afterwards waits for
 * its linger as usual (the byte count did not go astray). */
static void rest_counts_again(void **state)
{
    (void)state;
    struct sk_sched *s = mksched(3, 1 << 20, 1000);
    struct sk_batch *b = batch_of(s, 3);
    for (int i = 3; i < 5; i++)
        sk_sched_add(s, 1, mk(i, 10), 0);
    sk_sched_split(s, b); /* keeps 0; back: 1, 2; queued 3, 4 */
    assert_int_equal(sk_sched_queued(s), 4);
    take(s, b);
    b = sk_sched_pop_ready(s);
    assert_run(b, 1, 3); /* max_events 3 */
    take(s, b);
    b = sk_sched_pop_ready(s);
    assert_run(b, 4, 1);
    take(s, b);
    assert_int_equal(sk_sched_queued(s), 0);
    /* the group is gone and a new one behaves as new */
    assert_int_equal(sk_sched_groups(s), 0);

    /* same with a byte limit; a new event arrives while the rest runs */
    struct sk_sched *t = mksched(100, 35, 1000);
    for (int i = 0; i < 3; i++)
        sk_sched_add(t, 1, mk(i, 10), 0);
    sk_sched_add(t, 1, mk(3, 10), 0); /* 40 bytes: cut at 30 */
    b = sk_sched_pop_ready(t);
    assert_run(b, 0, 3);
    sk_sched_split(t, b); /* keeps 0; back: 1, 2 ahead of 3 */
    take(t, b);
    b = sk_sched_pop_ready(t);
    assert_run(b, 1, 3);
    sk_sched_add(t, 1, mk(4, 10), 0); /* 10 bytes: not full, waits for linger */
    take(t, b);
    assert_null(sk_sched_pop_ready(t));
    sk_sched_expire(t, 1000);
    b = sk_sched_pop_ready(t);
    assert_run(b, 4, 1);
    assert_int_equal(b->reason, SK_FLUSH_LINGER);
    take(t, b);
    sk_sched_free(t, drop, NULL);
    sk_sched_free(s, drop, NULL);
}

/* The given-back events do not wait for a linger or a retry: they are due
 * as soon as the batch is done, and no linger cuts them while it runs. */
static void rest_due_not_lingering(void **state)
{
    (void)state;
    struct sk_sched *s = mksched(4, 1 << 20, 1000);
    struct sk_batch *b = batch_of(s, 4);
    sk_sched_add(s, 1, mk(4, 10), 0); /* waits in the linger list */
    sk_sched_split(s, b);
    assert_int_equal(sk_sched_next_deadline(s), UINT64_MAX);
    sk_sched_expire(s, 5000);
    assert_null(sk_sched_pop_ready(s));
    take(s, b);
    struct sk_batch *r = sk_sched_pop_ready(s);
    assert_run(r, 2, 3);
    assert_int_equal(r->reason, SK_FLUSH_BACKLOG);
    take(s, r);
    sk_sched_free(s, drop, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flush_by_size),     cmocka_unit_test(flush_by_bytes),
        cmocka_unit_test(flush_by_linger),   cmocka_unit_test(one_batch_per_game),
        cmocka_unit_test(split_keeps_order), cmocka_unit_test(retry_goes_first),
        cmocka_unit_test(drop_revoked_partition), cmocka_unit_test(many_groups),
        cmocka_unit_test(split_sizes),
        cmocka_unit_test(split_down_to_one),
        cmocka_unit_test(split_of_one_is_noop),
        cmocka_unit_test(rest_ahead_of_newer),
        cmocka_unit_test(rest_into_empty_group),
        cmocka_unit_test(rest_counts_again),
        cmocka_unit_test(rest_due_not_lingering),
    };
    return cmocka_run_group_tests_name("sched", tests, NULL, NULL);
}
