/* Unit tests for src/preload.c: the chunks' statements (keyset paging,
 * newest first, the last chunk cut to the target), rows into the known map,
 * bad rows skipped, and when it stops (target reached, table exhausted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "preload.h"

/* Feed rows ids from..to (descending) named u<id> as the server would. */
static void feed(struct sk_preload *p, struct sk_known *k, long from, long to)
{
    for (long id = from; id >= to; id--) {
        char ids[24], name[24];
        snprintf(ids, sizeof ids, "%ld", id);
        snprintf(name, sizeof name, "u%ld", id);
        char *row[2] = {ids, name};
        unsigned long len[2] = {strlen(ids), strlen(name)};
        sk_preload_row(p, k, row, len, 2);
    }
}

static void pages_newest_first_up_to_the_target(void **state)
{
    (void)state;
    struct sk_known *k = sk_known_new(100000);
    struct sk_preload p;
    sk_preload_init(&p, 25000);
    assert_true(p.wanted);
    assert_int_equal(sk_preload_sql(&p), 0);
    assert_string_equal(p.sql.p, "SELECT id, username FROM users ORDER BY id DESC LIMIT 10000");
    feed(&p, k, 90000, 80001);
    assert_true(sk_preload_chunk_done(&p));
    assert_int_equal(sk_preload_sql(&p), 0);
    assert_string_equal(p.sql.p,
                        "SELECT id, username FROM users WHERE id < 80001 ORDER BY id DESC LIMIT 10000");
    feed(&p, k, 80000, 70001);
    assert_true(sk_preload_chunk_done(&p));
    /* the last chunk asks only for what is left of the target */
    assert_int_equal(sk_preload_sql(&p), 0);
    assert_string_equal(p.sql.p,
                        "SELECT id, username FROM users WHERE id < 70001 ORDER BY id DESC LIMIT 5000");
    feed(&p, k, 70000, 65001);
    assert_false(sk_preload_chunk_done(&p));
    assert_false(p.wanted);
    assert_int_equal(p.loaded, 25000);
    assert_int_equal(sk_known_count(k), 25000);
    assert_int_equal(sk_known_id(k, "u90000", 6), 90000);
    assert_int_equal(sk_known_id(k, "u65001", 6), 65001);
    assert_int_equal(sk_known_id(k, "u65000", 6), 0);
    sk_preload_free(&p);
    sk_known_free(k);
}

static void stops_when_the_table_runs_out(void **state)
{
    (void)state;
    struct sk_known *k = sk_known_new(100000);
    struct sk_preload p;
    sk_preload_init(&p, 50000);
    assert_int_equal(sk_preload_sql(&p), 0);
    feed(&p, k, 10000, 1);
    assert_true(sk_preload_chunk_done(&p)); /* a full chunk: there may be more */
    assert_int_equal(sk_preload_sql(&p), 0);
    assert_false(sk_preload_chunk_done(&p)); /* empty: done */
    assert_int_equal(p.loaded, 10000);
    /* a short first chunk ends it at once */
    struct sk_preload q;
    sk_preload_init(&q, 50000);
    assert_int_equal(sk_preload_sql(&q), 0);
    feed(&q, k, 3, 1);
    assert_false(sk_preload_chunk_done(&q));
    assert_int_equal(q.loaded, 3);
    sk_preload_free(&q);
    sk_preload_free(&p);
    sk_known_free(k);
}

static void off_and_bad_rows(void **state)
{
    (void)state;
    struct sk_preload p;
    sk_preload_init(&p, 0);
    assert_false(p.wanted);
    sk_preload_free(&p);

    struct sk_known *k = sk_known_new(100);
    sk_preload_init(&p, 10);
    assert_int_equal(sk_preload_sql(&p), 0);
    char *nul[2] = {NULL, "x"}, *bad[2] = {"12x", "y"}, *neg[2] = {"-4", "z"}, *ok[2] = {"7", "w"};
    unsigned long len[2] = {2, 1};
    sk_preload_row(&p, k, nul, len, 2);
    sk_preload_row(&p, k, bad, len, 2);
    sk_preload_row(&p, k, neg, len, 2);
    sk_preload_row(&p, k, ok, len, 1); /* wrong shape */
    assert_int_equal(sk_known_count(k), 0);
    len[0] = 1;
    sk_preload_row(&p, k, ok, len, 2);
    assert_int_equal(sk_known_id(k, "w", 1), 7);
    assert_false(sk_preload_chunk_done(&p));
    assert_int_equal(p.loaded, 1);
    sk_preload_free(&p);
    sk_known_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pages_newest_first_up_to_the_target),
        cmocka_unit_test(stops_when_the_table_runs_out),
        cmocka_unit_test(off_and_bad_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
