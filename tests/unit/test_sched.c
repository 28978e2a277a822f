/* Unit tests: per-game batching (sched) and partition offsets (part). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "part.h"
#include "sched.h"

static struct sk_part *P;

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
    struct sk_part *p1 = sk_part_new("t", 0, SK_EV_SCORE), *p2 = sk_part_new("t", 1, SK_EV_SCORE);
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

static void part_commits_done_prefix(void **state)
{
    (void)state;
    P = sk_part_new("game.scores", 3, SK_EV_SCORE);
    assert_non_null(P);
    for (int64_t o = 10; o < 15; o++)
        assert_int_equal(sk_part_track(P, o), 0);
    assert_int_equal(P->next_commit, 10);
    sk_part_done(P, 12);
    assert_int_equal(P->next_commit, 10);
    sk_part_done(P, 10);
    assert_int_equal(P->next_commit, 11);
    sk_part_done(P, 11);
    assert_int_equal(P->next_commit, 13);
    sk_part_done(P, 14);
    sk_part_done(P, 13);
    assert_int_equal(P->next_commit, 15);
    assert_int_equal(sk_part_span(P), 0);
    /* gaps in offsets (compaction, transaction markers) are fine */
    sk_part_track(P, 20);
    sk_part_track(P, 25);
    sk_part_done(P, 25);
    assert_int_equal(P->next_commit, 20);
    sk_part_done(P, 20);
    assert_int_equal(P->next_commit, 26);
    sk_part_free(P);
}

/* Backpressure reads two numbers: events still alive (refs, dropped as
 * messages are freed) and the ring's span (dropped only as the done prefix
 * moves).  One old event keeps the span up while live falls. */
static void part_live_and_span(void **state)
{
    (void)state;
    P = sk_part_new("t", 0, SK_EV_SCORE);
    for (int64_t o = 0; o < 100; o++)
        sk_part_track(P, o);
    assert_int_equal(sk_part_live(P), 100);
    assert_int_equal(sk_part_span(P), 100);
    for (int64_t o = 1; o < 100; o++) { /* all but the oldest finish */
        sk_part_done(P, o);
        sk_part_unref(P);
    }
    assert_int_equal(sk_part_live(P), 1);
    assert_int_equal(sk_part_span(P), 100);
    sk_part_done(P, 0);
    assert_int_equal(sk_part_span(P), 0);
    sk_part_unref(P);
    assert_int_equal(sk_part_live(P), 0);
    sk_part_free(P);
}

static void part_ring_grows(void **state)
{
    (void)state;
    P = sk_part_new("t", 0, SK_EV_USER);
    for (int64_t o = 0; o < 700; o++)
        sk_part_track(P, o);
    for (int64_t o = 0; o < 600; o++)
        sk_part_done(P, o);
    for (int64_t o = 700; o < 3000; o++) /* wraps, then grows */
        sk_part_track(P, o);
    assert_int_equal(P->next_commit, 600);
    for (int64_t o = 2999; o >= 600; o--)
        sk_part_done(P, o);
    assert_int_equal(P->next_commit, 3000);
    sk_part_free(P);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flush_by_size),     cmocka_unit_test(flush_by_bytes),
        cmocka_unit_test(flush_by_linger),   cmocka_unit_test(one_batch_per_game),
        cmocka_unit_test(split_keeps_order), cmocka_unit_test(retry_goes_first),
        cmocka_unit_test(drop_revoked_partition), cmocka_unit_test(many_groups),
        cmocka_unit_test(part_commits_done_prefix), cmocka_unit_test(part_ring_grows),
        cmocka_unit_test(part_live_and_span),
    };
    return cmocka_run_group_tests_name("sched", tests, NULL, NULL);
}
