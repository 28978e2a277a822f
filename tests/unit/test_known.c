/* Unit tests for src/known.c: lookups through table growth, names that
 * share a prefix or differ only in length, the clear when full, updates. */
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

static void full_set_is_cleared(void **state)
{
    (void)state;
    struct sk_known *k = sk_known_new(100);
    char buf[32];
    for (int i = 1; i <= 100; i++)
        sk_known_add(k, buf, name(buf, sizeof buf, i), i);
    assert_int_equal(sk_known_count(k), 100);
    sk_known_add(k, "newcomer", 8, 1000); /* one past the maximum: start over */
    assert_int_equal(sk_known_count(k), 1);
    assert_int_equal(sk_known_id(k, "newcomer", 8), 1000);
    assert_int_equal(sk_known_id(k, "player-1", 8), 0);
    /* and it fills again normally */
    for (int i = 1; i <= 50; i++)
        sk_known_add(k, buf, name(buf, sizeof buf, i), -i);
    assert_int_equal(sk_known_id(k, "player-50", 9), -50);
    sk_known_clear(k);
    assert_int_equal(sk_known_count(k), 0);
    assert_int_equal(sk_known_id(k, "newcomer", 8), 0);
    sk_known_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grows_and_finds_everything),
        cmocka_unit_test(update_and_empty_name),
        cmocka_unit_test(full_set_is_cleared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
