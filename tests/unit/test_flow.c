/* Unit tests: the consumer's backpressure rules (flow).
 *
 * A partition is full at its share of live events, at SK_FLOW_SPAN_SHARES
 * shares of span, or when the daemon is at max_inflight; it is low again
 * only at half of both, so a partition that has just become full is never
 * low at the same time (no pause/resume flapping).  The same holds for the
 * bytes its events hold, against their share of max_inflight_bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "flow.h"

#define BIG ((size_t)1 << 40) /* a total nobody reaches */

static void share_among_partitions(void **state)
{
    (void)state;
    /* no active partition yet: the first one may take it all */
    assert_int_equal(sk_flow_share(1000, 0), 1000);
    assert_int_equal(sk_flow_share(1000, 1), 1000);
    assert_int_equal(sk_flow_share(1000, 2), 500);
    assert_int_equal(sk_flow_share(1000, 3), 333); /* rounded down */
    assert_int_equal(sk_flow_share(1000, 7), 142);
    assert_int_equal(sk_flow_share(1000, 1000), 1);
}

/* More partitions than events allowed: each still gets one. */
static void share_at_least_one(void **state)
{
    (void)state;
    assert_int_equal(sk_flow_share(1000, 1001), 1);
    assert_int_equal(sk_flow_share(1000, 5000), 1);
    assert_int_equal(sk_flow_share(1, 2), 1);
    assert_int_equal(sk_flow_share(0, 0), 1);
    assert_int_equal(sk_flow_share(0, 3), 1);
    assert_int_equal(sk_flow_share(SIZE_MAX, 1), SIZE_MAX);
}

static void full_by_live(void **state)
{
    (void)state;
    assert_false(sk_flow_full(99, 0, 99, BIG, 100));
    assert_true(sk_flow_full(100, 0, 100, BIG, 100));
    assert_true(sk_flow_full(101, 0, 101, BIG, 100));
    assert_false(sk_flow_full(0, 0, 0, BIG, 1));
    assert_true(sk_flow_full(1, 0, 1, BIG, 1));
}

/* One slow event: live stays small while the span grows. */
static void full_by_span(void **state)
{
    (void)state;
    assert_int_equal(SK_FLOW_SPAN_SHARES, 4);
    assert_false(sk_flow_full(1, 399, 1, BIG, 100));
    assert_true(sk_flow_full(1, 400, 1, BIG, 100));
    assert_true(sk_flow_full(1, 1000, 1, BIG, 100));
    assert_false(sk_flow_full(0, 3, 0, BIG, 1));
    assert_true(sk_flow_full(0, 4, 0, BIG, 1));
}

/* The total is a hard cap whatever the partition holds. */
static void full_by_total(void **state)
{
    (void)state;
    assert_false(sk_flow_full(10, 10, 999, 1000, 100));
    assert_true(sk_flow_full(10, 10, 1000, 1000, 100));
    assert_true(sk_flow_full(0, 0, 1001, 1000, 100));
    /* start-up: shares computed over one partition, two others fill the total */
    assert_true(sk_flow_full(0, 0, 1000, 1000, sk_flow_share(1000, 1)));
}

static void low_needs_both_halves(void **state)
{
    (void)state;
    /* share 100: live <= 50 and span <= 200 */
    assert_true(sk_flow_low(0, 0, 100));
    assert_true(sk_flow_low(50, 200, 100));
    assert_false(sk_flow_low(51, 200, 100));  /* live too high */
    assert_false(sk_flow_low(50, 201, 100));  /* span too high */
    assert_false(sk_flow_low(51, 201, 100));
    assert_false(sk_flow_low(0, 399, 100));   /* slow event still holding */
    /* share 1: live 0, span <= 2 */
    assert_true(sk_flow_low(0, 2, 1));
    assert_false(sk_flow_low(1, 0, 1));
    assert_false(sk_flow_low(0, 3, 1));
    /* odd share: halves round down */
    assert_true(sk_flow_low(3, 14, 7));
    assert_false(sk_flow_low(4, 14, 7));
    assert_false(sk_flow_low(3, 15, 7));
}

/* Hysteresis: whatever makes a partition full by its own numbers (live or
 * span) keeps it from being low, for every small share; and between the
 * two there is a band where it is neither (it keeps its state). */
static void just_full_is_not_low(void **state)
{
    (void)state;
    for (size_t share = 1; share <= 64; share++) {
        size_t neither = 0;
        for (size_t live = 0; live <= 2 * share; live++)
            for (size_t span = 0; span <= 5 * share; span++) {
                bool full = sk_flow_full(live, span, live, BIG, share);
                bool low = sk_flow_low(live, span, share);
                if (full && low)
                    fail_msg("share %zu, live %zu, span %zu: full and low at once", share, live,
                             span);
                neither += !full && !low;
            }
        assert_true(neither > 0);
    }
    /* the exact edges, share 100 */
    assert_true(sk_flow_full(100, 100, 100, BIG, 100));
    assert_false(sk_flow_low(100, 100, 100));
    assert_true(sk_flow_full(1, 400, 1, BIG, 100));
    assert_false(sk_flow_low(1, 400, 100));
    /* between: not full, not low */
    assert_false(sk_flow_full(75, 300, 75, BIG, 100));
    assert_false(sk_flow_low(75, 300, 100));
}

/* Bytes: full at the partition's share or at the daemon's total. */
static void full_by_bytes(void **state)
{
    (void)state;
    size_t share = sk_flow_share(32u << 20, 2); /* 16 MiB */
    assert_int_equal(share, 16u << 20);
    assert_false(sk_flow_full_bytes(share - 1, share - 1, 32u << 20, share));
    assert_true(sk_flow_full_bytes(share, share, 32u << 20, share));
    /* the other partition holds the rest: the total is a hard cap */
    assert_false(sk_flow_full_bytes(1000, (32u << 20) - 1, 32u << 20, share));
    assert_true(sk_flow_full_bytes(1000, 32u << 20, 32u << 20, share));
    assert_true(sk_flow_full_bytes(0, (32u << 20) + 1, 32u << 20, share));
}

/* Released at half of its share of bytes; a partition just full by bytes
 * is never low. */
static void low_bytes_at_half(void **state)
{
    (void)state;
    assert_true(sk_flow_low_bytes(0, 100));
    assert_true(sk_flow_low_bytes(50, 100));
    assert_false(sk_flow_low_bytes(51, 100));
    assert_true(sk_flow_low_bytes(3, 7));
    assert_false(sk_flow_low_bytes(4, 7));
    for (size_t share = 1; share <= 4096; share++)
        for (size_t bytes = share; bytes <= share + 2; bytes++)
            if (sk_flow_full_bytes(bytes, bytes, BIG, share) && sk_flow_low_bytes(bytes, share))
                fail_msg("share %zu, bytes %zu: full and low at once", share, bytes);
    /* between: neither (the partition keeps its state) */
    assert_false(sk_flow_full_bytes(75, 75, BIG, 100));
    assert_false(sk_flow_low_bytes(75, 100));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(share_among_partitions),
        cmocka_unit_test(share_at_least_one),
        cmocka_unit_test(full_by_live),
        cmocka_unit_test(full_by_span),
        cmocka_unit_test(full_by_total),
        cmocka_unit_test(low_needs_both_halves),
        cmocka_unit_test(just_full_is_not_low),
        cmocka_unit_test(full_by_bytes),
        cmocka_unit_test(low_bytes_at_half),
    };
    return cmocka_run_group_tests_name("flow", tests, NULL, NULL);
}
