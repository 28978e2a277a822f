/* Unit tests for src/known.c: lookups through table growth, names that
 * share a prefix or differ only in length, the two generations, updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "known.h"

static size_t name(char *buf, size_t n, int i)
{
    return (size_t)snprintf(buf, n, "player-%d", i);
}

/* player-FROM .. player-TO, each with its number as id */
static void add_players(struct sk_known *k, int from, int to)
{
    char buf[32];
    for (int i = from; i <= to; i++)
        sk_known_add(k, buf, name(buf, sizeof buf, i), i);
}

static void grows_and_finds_everything(void **state)
{
    (void)state;
    struct sk_known *k = sk_known_new(50000);
    assert_non_null(k);
    char buf[32];
    /* 20,000 names: the table doubles several times past its first 1,024 slots. */
    for (int i = 1; i <= 20000; i++)
        sk_known_add(k, buf, name(buf, sizeof buf, i), i * 7);
    assert_int_equal(sk_known_count(k), 20000);
    for (int i = 1; i <= 20000; i++)
        assert_int_equal(sk_known_id(k, buf, name(buf, sizeof buf, i)), i * 7);
    assert_int_equal(sk_known_id(k, "player-0", 8), 0);
    assert_int_equal(sk_known_id(k, "player-20001", 12), 0);
    /* prefixes and embedded bytes are different names */
    assert_int_equal(sk_known_id(k, "player-1", 7), 0);
    assert_int_equal(sk_known_id(k, "player-12\0", 10), 0);
    assert_int_equal(sk_known_id(k, "", 0), 0);
    sk_known_free(k);
}

static void update_and_empty_name(void **state)
{
    (void)state;
    struct sk_known *k = sk_known_new(10);
    sk_known_add(k, "ana", 3, 5);
    sk_known_add(k, "ana", 3, 6); /* the same name again: the id moves, no new entry */
    assert_int_equal(sk_known_count(k), 1);
    assert_int_equal(sk_known_id(k, "ana", 3), 6);
    sk_known_add(k, "an", 2, 9);
    assert_int_equal(sk_known_id(k, "an", 2), 9);
    assert_int_equal(sk_known_id(k, "ana", 3), 6);
    char big[70000];
    memset(big, 'x', sizeof big);
    sk_known_add(k, big, sizeof big, 1); /* too long to keep: ignored */
    assert_int_equal(sk_known_id(k, big, sizeof big), 0);
    assert_int_equal(sk_known_count(k), 2);
    sk_known_free(k);
}

static void full_generation_rotates(void **state)
{
    (void)state;
    /* 100 entries: two generations of 50 */
    struct sk_known *k = sk_known_new(100);
    add_players(k, 1, 50);
    assert_int_equal(sk_known_count(k), 50);
    /* the 51st starts a new generation; the first 50 are still found */
    sk_known_add(k, "newcomer", 8, 1000);
    assert_int_equal(sk_known_count(k), 51);
    assert_int_equal(sk_known_id(k, "newcomer", 8), 1000);
    assert_int_equal(sk_known_id(k, "player-1", 8), 1); /* used: copied forward */
    assert_int_equal(sk_known_count(k), 52);
    /* fill the new generation: the next rotation drops the old one, except
     * player-1, which was looked up in between */
    add_players(k, 101, 148);
    assert_int_equal(sk_known_count(k), 100);
    sk_known_add(k, "late", 4, 2000);
    assert_int_equal(sk_known_count(k), 51);
    assert_int_equal(sk_known_id(k, "player-1", 8), 1);
    assert_int_equal(sk_known_id(k, "newcomer", 8), 1000);
    assert_int_equal(sk_known_id(k, "player-148", 10), 148);
    assert_int_equal(sk_known_id(k, "player-2", 8), 0); /* not used for a generation */
    assert_int_equal(sk_known_id(k, "player-50", 9), 0);
    assert_int_equal(sk_known_id(k, "late", 4), 2000);
    /* an id added again moves, whichever generation held it */
    sk_known_add(k, "player-101", 10, -101);
    assert_int_equal(sk_known_id(k, "player-101", 10), -101);
    sk_known_clear(k);
    assert_int_equal(sk_known_count(k), 0);
    assert_int_equal(sk_known_id(k, "newcomer", 8), 0);
    assert_int_equal(sk_known_id(k, "late", 4), 0);
    sk_known_free(k);
}

static void never_more_than_the_maximum(void **state)
{
    (void)state;
    struct sk_known *k = sk_known_new(1000);
    char buf[32];
    for (int i = 1; i <= 100000; i++) {
        sk_known_add(k, buf, name(buf, sizeof buf, i), i);
        if (i % 3 == 0) /* a hot name, looked up all along */
            assert_int_equal(sk_known_id(k, "player-3", 8), 3);
        assert_true(sk_known_count(k) <= 1000);
    }
    assert_int_equal(sk_known_id(k, "player-100000", 13), 100000);
    assert_int_equal(sk_known_id(k, "player-5", 8), 0);
    /* one entry at most: each name replaces the last */
    struct sk_known *one = sk_known_new(1);
    sk_known_add(one, "a", 1, 1);
    sk_known_add(one, "b", 1, 2);
    sk_known_add(one, "c", 1, 3);
    assert_true(sk_known_count(one) <= 2);
    assert_int_equal(sk_known_id(one, "c", 1), 3);
    assert_int_equal(sk_known_id(one, "a", 1), 0);
    sk_known_free(one);
    sk_known_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grows_and_finds_everything),
        cmocka_unit_test(update_and_empty_name),
        cmocka_unit_test(full_generation_rotates),
        cmocka_unit_test(never_more_than_the_maximum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
