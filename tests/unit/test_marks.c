/* Unit tests: the per-partition map of games to applied offsets (marks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "marks.h"

static void set_get_forget(void **state)
{
    (void)state;
    struct sk_marks *m = sk_marks_new(100);
    assert_int_equal(sk_marks_get(m, 42), -1);
    sk_marks_set(m, 42, 0);
    sk_marks_set(m, -7, 5);
    sk_marks_set(m, INT64_MAX, 9);
    assert_int_equal(sk_marks_get(m, 42), 0);
    assert_int_equal(sk_marks_get(m, -7), 5);
    assert_int_equal(sk_marks_get(m, INT64_MAX), 9);
    assert_int_equal(sk_marks_count(m), 3);
    sk_marks_set(m, 42, 12);
    assert_int_equal(sk_marks_get(m, 42), 12);
    assert_int_equal(sk_marks_count(m), 3);
    sk_marks_forget(m, 42);
    sk_marks_forget(m, 42);    /* twice: still unknown */
    sk_marks_forget(m, 1000);  /* never seen: nothing to keep */
    assert_int_equal(sk_marks_get(m, 42), -1);
    assert_int_equal(sk_marks_get(m, 1000), -1);
    assert_int_equal(sk_marks_count(m), 3);
    sk_marks_set(m, -7, -1);   /* a negative mark is no mark */
    assert_int_equal(sk_marks_get(m, -7), -1);
    sk_marks_set(m, 42, 3);    /* a forgotten game can come back */
    assert_int_equal(sk_marks_get(m, 42), 3);
    sk_marks_set(m, 43, INT64_MAX); /* the largest mark fits */
    assert_int_equal(sk_marks_get(m, 43), INT64_MAX);
    sk_marks_free(m);
}

/* Up to the bound every mark is kept (the tables grow past their first
 * size); one more drops the half that was idle longest, not everything. */
static void full_map_forgets_the_idle_half(void **state)
{
    (void)state;
    struct sk_marks *m = sk_marks_new(1000);
    for (int64_t g = 1; g <= 1000; g++)
        sk_marks_set(m, g * 1000003, g);
    assert_int_equal(sk_marks_count(m), 1000);
    for (int64_t g = 1; g <= 1000; g++)
        assert_int_equal(sk_marks_get(m, g * 1000003), g);
    sk_marks_set(m, 5, 5); /* the 1001st game */
    assert_true(sk_marks_count(m) <= 1000);
    assert_int_equal(sk_marks_get(m, 5), 5);
    for (int64_t g = 1; g <= 500; g++)
        assert_int_equal(sk_marks_get(m, g * 1000003), -1);
    for (int64_t g = 501; g <= 1000; g++)
        assert_int_equal(sk_marks_get(m, g * 1000003), g);
    sk_marks_free(m);
}

/* A game committed once per generation keeps its mark however many other
 * games pass through; one only looked up goes; the map never holds more
 * than its bound. */
static void busy_games_stay(void **state)
{
    (void)state;
    struct sk_marks *m = sk_marks_new(100);
    sk_marks_set(m, 1, 11);
    sk_marks_set(m, 2, 22);
    for (int64_t g = 1000; g < 101000; g++) {
        sk_marks_set(m, g, g);
        assert_true(sk_marks_count(m) <= 100);
        if (g % 40 == 0)
            sk_marks_set(m, 1, g); /* committed */
        if (g < 1050)
            assert_int_equal(sk_marks_get(m, 2), 22); /* looked up only */
    }
    assert_int_equal(sk_marks_get(m, 1), 101000 - 40);
    assert_int_equal(sk_marks_get(m, 2), -1);
    assert_int_equal(sk_marks_get(m, 1000), -1);
    assert_int_equal(sk_marks_get(m, 100999), 100999);
    sk_marks_free(m);
}

/* A smaller bound (more partitions share the total) holds from the next
 * rotations on; a larger one lets the map grow again. */
static void bound_changes(void **state)
{
    (void)state;
    struct sk_marks *m = sk_marks_new(1000);
    for (int64_t g = 1; g <= 1000; g++)
        sk_marks_set(m, g, g);
    assert_int_equal(sk_marks_load_max(m), 500);
    sk_marks_set_max(m, 100);
    assert_int_equal(sk_marks_load_max(m), 50);
    for (int64_t g = 2001; g <= 2200; g++) {
        sk_marks_set(m, g, g);
        assert_true(sk_marks_count(m) <= 1000);
    }
    assert_true(sk_marks_count(m) <= 100);
    assert_int_equal(sk_marks_get(m, 2200), 2200);
    sk_marks_set_max(m, 10000);
    for (int64_t g = 3001; g <= 8000; g++)
        sk_marks_set(m, g, g);
    for (int64_t g = 3001; g <= 8000; g++)
        assert_int_equal(sk_marks_get(m, g), g);
    /* a bound below 2 still keeps one mark per generation */
    sk_marks_set_max(m, 0);
    assert_int_equal(sk_marks_load_max(m), 1);
    sk_marks_set(m, 9, 9);
    sk_marks_set(m, 10, 10);
    assert_true(sk_marks_count(m) <= 2);
    assert_int_equal(sk_marks_get(m, 10), 10);
    sk_marks_free(m);
}

/* Marks read in full at assignment: a game without one is new (0), until
 * it is forgotten (in doubt: -1) or marks are dropped to make room (then
 * an absent game may have had one: -1). */
static void complete_map_knows_new_games(void **state)
{
    (void)state;
    struct sk_marks *m = sk_marks_new(4);
    sk_marks_set(m, 1, 10);
    assert_int_equal(sk_marks_get(m, 2), -1);
    sk_marks_complete(m);
    assert_int_equal(sk_marks_get(m, 2), 0);
    assert_int_equal(sk_marks_get(m, 1), 10);
    sk_marks_forget(m, 2);
    assert_int_equal(sk_marks_get(m, 2), -1);
    sk_marks_forget(m, 1);
    assert_int_equal(sk_marks_get(m, 1), -1);
    assert_int_equal(sk_marks_get(m, 3), 0);
    sk_marks_set(m, 3, 1); /* two generations of two: 1 and 2, then 3 */
    sk_marks_set(m, 4, 1); /* 3 and 4 */
    assert_int_equal(sk_marks_get(m, 6), 0); /* nothing dropped yet */
    sk_marks_set(m, 5, 1); /* 1 and 2 dropped: no longer complete */
    assert_int_equal(sk_marks_get(m, 5), 1);
    assert_int_equal(sk_marks_get(m, 6), -1);
    assert_int_equal(sk_marks_get(m, 1), -1);
    assert_int_equal(sk_marks_get(m, 2), -1);
    assert_int_equal(sk_marks_get(m, 3), 1);
    sk_marks_complete(m); /* a read that ended after a drop proves nothing */
    assert_int_equal(sk_marks_get(m, 6), -1);
    sk_marks_free(m);
}

/* The forgotten slot of a complete map outlives a first rotation (it goes
 * with its generation, which ends completeness). */
static void forgotten_game_stays_unknown(void **state)
{
    (void)state;
    struct sk_marks *m = sk_marks_new(4);
    sk_marks_complete(m);
    sk_marks_forget(m, 7);
    sk_marks_set(m, 8, 1);
    sk_marks_set(m, 9, 1); /* rotates: 7 and 8 in the older generation */
    assert_int_equal(sk_marks_get(m, 7), -1);
    assert_int_equal(sk_marks_get(m, 10), 0);
    sk_marks_free(m);
}

/* 100,000 distinct games through a map of 1000: never more than that, and
 * the newest are there. */
static void many_games_small_bound(void **state)
{
    (void)state;
    struct sk_marks *m = sk_marks_new(1000);
    size_t most = 0;
    for (int64_t g = 1; g <= 100000; g++) {
        sk_marks_set(m, g, 1);
        if (sk_marks_count(m) > most)
            most = sk_marks_count(m);
    }
    assert_true(most <= 1000);
    assert_true(most >= 999);
    for (int64_t g = 99501; g <= 100000; g++)
        assert_int_equal(sk_marks_get(m, g), 1);
    sk_marks_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_get_forget),
        cmocka_unit_test(full_map_forgets_the_idle_half),
        cmocka_unit_test(busy_games_stay),
        cmocka_unit_test(bound_changes),
        cmocka_unit_test(complete_map_knows_new_games),
        cmocka_unit_test(forgotten_game_stays_unknown),
        cmocka_unit_test(many_games_small_bound),
    };
    return cmocka_run_group_tests_name("marks", tests, NULL, NULL);
}
