/* Unit tests: a partition's in-flight offsets and the commit-prefix rule
 * (part), and its lifetime (refs, revoked).
 *
 * next_commit is one past the longest done prefix: it never passes an
 * offset not yet done, and it moves over every offset done before it.
 * Lifetime errors show up under the sanitizer build: a partition freed too
 * early is a use-after-free, one never freed a leak at exit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "part.h"

static struct sk_part *mkpart(enum sk_event_kind kind)
{
    struct sk_part *p = sk_part_new("game.scores", 3, kind, 100);
    assert_non_null(p);
    assert_int_equal(p->next_commit, -1);
    assert_int_equal(p->refs, 0);
    return p;
}

static void track(struct sk_part *p, int64_t from, int64_t to)
{
    for (int64_t o = from; o < to; o++)
        assert_int_equal(sk_part_track(p, o), 0);
}

/* Done out of order: next_commit moves only over the done prefix. */
static void out_of_order_prefix(void **state)
{
    (void)state;
    struct sk_part *p = mkpart(SK_EV_SCORE);
    track(p, 100, 110);
    assert_int_equal(p->next_commit, 100);
    for (int64_t o = 109; o >= 101; o--) { /* all but the oldest, newest first */
        sk_part_done(p, o);
        assert_int_equal(p->next_commit, 100);
        assert_int_equal(sk_part_span(p), 10);
    }
    sk_part_done(p, 100); /* the oldest: everything goes at once */
    assert_int_equal(p->next_commit, 110);
    assert_int_equal(sk_part_span(p), 0);

    /* a hole in the middle holds what follows it */
    track(p, 110, 116);
    sk_part_done(p, 110);
    sk_part_done(p, 111);
    sk_part_done(p, 113);
    sk_part_done(p, 115);
    assert_int_equal(p->next_commit, 112);
    assert_int_equal(sk_part_span(p), 4);
    sk_part_done(p, 112);
    assert_int_equal(p->next_commit, 114);
    assert_int_equal(sk_part_span(p), 2);
    sk_part_done(p, 114);
    assert_int_equal(p->next_commit, 116);
    assert_int_equal(sk_part_span(p), 0);
    sk_part_free(p);
}

/* A second done for the same offset changes nothing: while it is held
 * behind an older one, and after it left the ring. */
static void duplicate_done(void **state)
{
    (void)state;
    struct sk_part *p = mkpart(SK_EV_USER);
    track(p, 0, 4);
    sk_part_done(p, 2);
    sk_part_done(p, 2);
    assert_int_equal(p->next_commit, 0);
    assert_int_equal(sk_part_span(p), 4);
    sk_part_done(p, 0);
    sk_part_done(p, 0);
    assert_int_equal(p->next_commit, 1);
    assert_int_equal(sk_part_span(p), 3);
    sk_part_done(p, 1);
    assert_int_equal(p->next_commit, 3);
    sk_part_done(p, 1);
    sk_part_done(p, 2);
    assert_int_equal(p->next_commit, 3);
    assert_int_equal(sk_part_span(p), 1);
    sk_part_done(p, 3);
    sk_part_done(p, 3);
    assert_int_equal(p->next_commit, 4);
    assert_int_equal(sk_part_span(p), 0);
    sk_part_free(p);
}

/* Offsets never tracked (gaps, before the oldest, past the newest) and a
 * done before any track are ignored. */
static void untracked_done_ignored(void **state)
{
    (void)state;
    struct sk_part *p = mkpart(SK_EV_SCORE);
    sk_part_done(p, 5);
    assert_int_equal(p->next_commit, -1);
    assert_int_equal(sk_part_span(p), 0);
    assert_int_equal(sk_part_track(p, 10), 0);
    assert_int_equal(sk_part_track(p, 20), 0);
    assert_int_equal(sk_part_track(p, 30), 0);
    sk_part_done(p, 9);
    sk_part_done(p, 15);
    sk_part_done(p, 31);
    sk_part_done(p, INT64_MAX);
    assert_int_equal(p->next_commit, 10);
    assert_int_equal(sk_part_span(p), 3);
    sk_part_done(p, 10);
    assert_int_equal(p->next_commit, 20); /* the gap is skipped */
    sk_part_done(p, 30);
    sk_part_done(p, 20);
    assert_int_equal(p->next_commit, 31);
    sk_part_free(p);
}

/* The ring starts with 1024 slots: grow it while it has wrapped (head in
 * the middle), several times, and check the order survives. */
static void ring_grows_while_wrapped(void **state)
{
    (void)state;
    struct sk_part *p = mkpart(SK_EV_USER);
    track(p, 0, 1000);
    for (int64_t o = 0; o < 900; o++)
        sk_part_done(p, o);
    assert_int_equal(p->next_commit, 900);
    assert_int_equal(sk_part_span(p), 100);
    track(p, 1000, 1924); /* exactly full, wrapped */
    assert_int_equal(sk_part_span(p), 1024);
    track(p, 1924, 6000); /* grows to 2048, 4096, 8192 */
    assert_int_equal(sk_part_span(p), 5100);
    assert_int_equal(sk_part_live(p), 6000);
    assert_int_equal(p->next_commit, 900);
    /* every other one, newest first; then the rest, oldest first */
    for (int64_t o = 5999; o >= 900; o -= 2)
        sk_part_done(p, o);
    assert_int_equal(p->next_commit, 900);
    for (int64_t o = 900; o < 6000; o += 2) {
        sk_part_done(p, o);
        assert_int_equal(p->next_commit, o + 2);
        assert_int_equal(sk_part_span(p), (size_t)(6000 - o - 2));
    }
    sk_part_free(p);
}

/* Against a model: offsets with gaps, tracked and done in a random
 * (seeded) interleaving, the ring wrapping and growing as it goes. */
static void random_against_model(void **state)
{
    (void)state;
    enum { N = 6000 };
    static int64_t off[N];
    static bool done[N];
    struct sk_part *p = mkpart(SK_EV_SCORE);
    uint64_t x = 88172645463325252u;
    size_t tracked = 0, first = 0; /* model: done prefix [0, first) */
    int64_t next = 1000;
    while (first < N) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (tracked < N && (tracked == first || x % 3 != 0)) {
            next += (int64_t)(x >> 60 & 3) + 1; /* gaps of 0..3 */
            off[tracked] = next;
            assert_int_equal(sk_part_track(p, next), 0);
            tracked++;
        } else {
            /* done one not yet done, mostly near the front */
            size_t span = tracked - first;
            size_t i = first + (size_t)(x >> 33) % (span < 40 ? span : 40);
            sk_part_done(p, off[i]);
            done[i] = true;
            while (first < tracked && done[first])
                first++;
        }
        int64_t want = first < tracked ? off[first] : off[tracked - 1] + 1;
        if (p->next_commit != want)
            fail_msg("tracked %zu, prefix %zu: next_commit %lld, want %lld", tracked, first,
                     (long long)p->next_commit, (long long)want);
        assert_int_equal(sk_part_span(p), tracked - first);
    }
    assert_int_equal(p->next_commit, off[N - 1] + 1);
    sk_part_free(p);
}

/* live counts references (events alive), span the ring; they move apart. */
static void live_and_span(void **state)
{
    (void)state;
    struct sk_part *p = mkpart(SK_EV_SCORE);
    assert_int_equal(sk_part_live(p), 0);
    assert_int_equal(sk_part_span(p), 0);
    track(p, 0, 10);
    assert_int_equal(sk_part_live(p), 10);
    assert_int_equal(sk_part_span(p), 10);
    /* done does not drop a reference: the event is alive until freed */
    sk_part_done(p, 0);
    assert_int_equal(sk_part_live(p), 10);
    assert_int_equal(sk_part_span(p), 9);
    sk_part_unref(p);
    assert_int_equal(sk_part_live(p), 9);
    /* finished but held back by offset 1: live falls, span stays */
    for (int64_t o = 2; o < 10; o++) {
        sk_part_done(p, o);
        sk_part_unref(p);
    }
    assert_int_equal(sk_part_live(p), 1);
    assert_int_equal(sk_part_span(p), 9);
    sk_part_done(p, 1);
    assert_int_equal(sk_part_span(p), 0);
    assert_int_equal(sk_part_live(p), 1);
    sk_part_unref(p);
    assert_int_equal(sk_part_live(p), 0);
    sk_part_free(p);
}

/* A revoked partition lives while events refer to it and is freed by the
 * last unref (ASan: reading it before would be a use-after-free; LSan: a
 * leak at exit if the last unref did not free it). */
static void revoked_freed_by_last_unref(void **state)
{
    (void)state;
    struct sk_part *p = mkpart(SK_EV_SCORE);
    track(p, 0, 3);
    p->revoked = true;
    sk_part_unref(p);
    assert_int_equal(p->refs, 2);
    sk_part_unref(p);
    assert_int_equal(p->refs, 1);
    assert_true(p->revoked);
    sk_part_unref(p); /* frees: p is not touched again */
}

/* Revoked with no event in flight: one unref frees it. */
static void revoked_without_refs(void **state)
{
    (void)state;
    struct sk_part *p = mkpart(SK_EV_USER);
    p->revoked = true;
    sk_part_unref(p);
}

/* An assigned partition is never freed by unrefs, and refs does not wrap
 * below 0. */
static void assigned_survives_unref(void **state)
{
    (void)state;
    struct sk_part *p = mkpart(SK_EV_SCORE);
    track(p, 0, 2);
    sk_part_unref(p);
    sk_part_unref(p);
    assert_int_equal(p->refs, 0);
    sk_part_unref(p);
    assert_int_equal(p->refs, 0);
    assert_int_equal(sk_part_live(p), 0);
    /* still usable */
    sk_part_done(p, 0);
    sk_part_done(p, 1);
    track(p, 2, 3);
    sk_part_done(p, 2);
    assert_int_equal(p->next_commit, 3);
    sk_part_free(p);
}

static void new_by_kind(void **state)
{
    (void)state;
    struct sk_part *s = mkpart(SK_EV_SCORE), *u = mkpart(SK_EV_USER);
    assert_non_null(s->marks);
    assert_null(u->marks);
    assert_string_equal(s->topic, "game.scores");
    assert_int_equal(s->partition, 3);
    assert_int_equal(s->committed, -1);
    assert_int_equal(s->lag, -1);
    assert_false(s->revoked);
    /* a score partition's events wait for the reused-offsets check; a
     * users partition has no marks to check */
    assert_int_equal(s->check, SK_PART_CHECKING);
    assert_false(s->marks_read);
    assert_int_equal(s->top_mark, -1);
    assert_null(s->first);
    assert_int_equal(u->check, SK_PART_CHECKED);
    sk_part_free(s);
    sk_part_free(u);
    sk_part_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(out_of_order_prefix),
        cmocka_unit_test(duplicate_done),
        cmocka_unit_test(untracked_done_ignored),
        cmocka_unit_test(ring_grows_while_wrapped),
        cmocka_unit_test(random_against_model),
        cmocka_unit_test(live_and_span),
        cmocka_unit_test(revoked_freed_by_last_unref),
        cmocka_unit_test(revoked_without_refs),
        cmocka_unit_test(assigned_survives_unref),
        cmocka_unit_test(new_by_kind),
    };
    return cmocka_run_group_tests_name("part", tests, NULL, NULL);
}
