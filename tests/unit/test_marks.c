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
    sk_marks_forget(m, 42);    /* twice: still one less */
    sk_marks_forget(m, 1000);  /* never seen */
    assert_int_equal(sk_marks_get(m, 42), -1);
    assert_int_equal(sk_marks_count(m), 2);
    sk_marks_set(m, -7, -1);   /* a negative mark is no mark */
    assert_int_equal(sk_marks_get(m, -7), -1);
    assert_int_equal(sk_marks_count(m), 1);
    sk_marks_set(m, 42, 3);    /* a forgotten game can come back */
    assert_int_equal(sk_marks_get(m, 42), 3);
    sk_marks_free(m);
}

/* The table grows past its first size; a full map starts over. */
static void grows_then_clears_when_full(void **state)
{
    (void)state;
    struct sk_marks *m = sk_marks_new(1000);
    for (int64_t g = 1; g <= 1000; g++)
        sk_marks_set(m, g * 1000003, g);
    assert_int_equal(sk_marks_count(m), 1000);
    for (int64_t g = 1; g <= 1000; g++)
        assert_int_equal(sk_marks_get(m, g * 1000003), g);
    sk_marks_set(m, 5, 5); /* the 1001st game */
    assert_int_equal(sk_marks_count(m), 1);
    assert_int_equal(sk_marks_get(m, 5), 5);
    assert_int_equal(sk_marks_get(m, 1000003), -1);
    sk_marks_free(m);
}

/* Marks read in full at assignment: a game without one is new (0), until
 * it is forgotten (in doubt: -1) or the map is cleared. */
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
    sk_marks_set(m, 3, 1);
    sk_marks_set(m, 4, 1); /* four slots: full */
    sk_marks_set(m, 5, 1); /* cleared, and no longer complete */
    assert_int_equal(sk_marks_get(m, 5), 1);
    assert_int_equal(sk_marks_get(m, 6), -1);
    assert_int_equal(sk_marks_get(m, 3), -1);
    sk_marks_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_get_forget),
        cmocka_unit_test(grows_then_clears_when_full),
        cmocka_unit_test(complete_map_knows_new_games),
    };
    return cmocka_run_group_tests_name("marks", tests, NULL, NULL);
}
