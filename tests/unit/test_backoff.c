/* Unit tests: backoff with jitter and its random source (backoff).
 *
 * The delay of attempt k is d = min(min_ms * 2^(k-1), max_ms), drawn
 * uniformly in [d - d/2, d] (the half rounded up).  Small delays are drawn often
 * enough that every value of the range shows up, which pins d exactly.
 * */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "backoff.h"

#define DRAWS 4000

/* Draw DRAWS delays; fail unless every one lies in [lo, hi] and, when
 * `all` is set, every value of [lo, hi] was drawn at least once. */
static void draws_cover(unsigned min_ms, unsigned max_ms, unsigned attempt, uint64_t lo,
                        uint64_t hi, bool all)
{
    struct sk_rng r;
    sk_rng_seed(&r, 42);
    uint64_t seen_lo = UINT64_MAX, seen_hi = 0;
    static bool hit[1024];
    memset(hit, 0, sizeof hit);
    for (int i = 0; i < DRAWS; i++) {
        uint64_t v = sk_backoff_ms(min_ms, max_ms, attempt, &r);
        if (v < lo || v > hi)
            fail_msg("backoff(%u, %u, attempt %u) = %llu, outside [%llu, %llu]", min_ms, max_ms,
                     attempt, (unsigned long long)v, (unsigned long long)lo,
                     (unsigned long long)hi);
        if (v < seen_lo)
            seen_lo = v;
        if (v > seen_hi)
            seen_hi = v;
        if (v - lo < sizeof hit / sizeof *hit)
            hit[v - lo] = true;
    }
    if (!all)
        return;
    assert_true(hi - lo < sizeof hit / sizeof *hit);
    for (uint64_t v = lo; v <= hi; v++)
        if (!hit[v - lo])
            fail_msg("backoff(%u, %u, attempt %u) never drew %llu of [%llu, %llu]", min_ms,
                     max_ms, attempt, (unsigned long long)v, (unsigned long long)lo,
                     (unsigned long long)hi);
}

/* d doubles per attempt from min: 8, 16, 32, 64 ... */
static void doubles_per_attempt(void **state)
{
    (void)state;
    draws_cover(8, 1000, 1, 4, 8, true);
    draws_cover(8, 1000, 2, 8, 16, true);
    draws_cover(8, 1000, 3, 16, 32, true);
    draws_cover(8, 1000, 4, 32, 64, true);
    draws_cover(8, 1000, 6, 128, 256, true);
    draws_cover(100, 100000, 5, 800, 1600, false);
}

/* ... until max: the last doubling is cut to max, then it stays there. */
static void capped_at_max(void **state)
{
    (void)state;
    draws_cover(8, 100, 4, 32, 64, true);
    draws_cover(8, 100, 5, 50, 100, true);  /* 128 cut to 100 */
    draws_cover(8, 100, 6, 50, 100, true);
    draws_cover(8, 100, 40, 50, 100, true);
    draws_cover(8, 100, 64, 50, 100, true); /* 8 << 63 would overflow */
    draws_cover(8, 100, 1000, 50, 100, true);
    draws_cover(8, 100, UINT32_MAX, 50, 100, true);
    /* the configuration's outer limits */
    draws_cover(60000, 600000, UINT32_MAX, 300000, 600000, false);
    draws_cover(UINT32_MAX, UINT32_MAX, 3, UINT32_MAX / 2, UINT32_MAX, false);
}

/* Attempt 0 is attempt 1: same delay from the same random state. */
static void attempt_zero_is_one(void **state)
{
    (void)state;
    draws_cover(40, 1000, 0, 20, 40, true);
    struct sk_rng a, b;
    sk_rng_seed(&a, 7);
    sk_rng_seed(&b, 7);
    for (int i = 0; i < 100; i++)
        assert_int_equal(sk_backoff_ms(100, 5000, 0, &a), sk_backoff_ms(100, 5000, 1, &b));
}

/* max below min is taken as min: d = min for every attempt. */
static void max_below_min(void **state)
{
    (void)state;
    draws_cover(64, 10, 1, 32, 64, true);
    draws_cover(64, 10, 2, 32, 64, true);
    draws_cover(64, 10, 30, 32, 64, true);
    draws_cover(64, 0, 5, 32, 64, true);
    draws_cover(64, 64, 5, 32, 64, true); /* max == min: the same */
}

/* min 1 (the configuration allows it): d = 1, 2, 4 ... */
static void min_one(void **state)
{
    (void)state;
    draws_cover(1, 10000, 1, 0, 1, false);
    draws_cover(1, 10000, 2, 1, 2, true);
    draws_cover(1, 10000, 3, 2, 4, true);
    draws_cover(1, 10000, 11, 512, 1024, false);
    draws_cover(1, 1, 9, 0, 1, false);
    /* min 0 never waits (and does not spin through a huge attempt count) */
    draws_cover(0, 0, UINT32_MAX, 0, 0, true);
}

/* The jitter range is [d/2, d] with the half rounded up: for d = 1 that
 * is 1 ms, never a retry at once (with the half rounded down, min_ms = 1
 * gave a first retry after 0 ms, and an odd d was never drawn). */
static void odd_delays_reach_d(void **state)
{
    (void)state;
    draws_cover(1, 10000, 1, 1, 1, true);
    draws_cover(3, 10000, 1, 2, 3, true);
    draws_cover(5, 10000, 1, 3, 5, true);
}

/* Jitter spreads the whole range roughly uniformly: mean near 3d/4, and
 * each quarter of the range gets its share. */
static void jitter_uniform(void **state)
{
    (void)state;
    struct sk_rng r;
    sk_rng_seed(&r, 1);
    const uint64_t d = 1000;
    uint64_t sum = 0;
    unsigned quarter[4] = {0};
    const unsigned n = 20000;
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = sk_backoff_ms(1000, 1000, 1, &r);
        assert_in_range(v, d / 2, d);
        sum += v;
        size_t q = (size_t)((v - d / 2) * 4 / (d / 2 + 1));
        quarter[q]++;
    }
    uint64_t mean = sum / n;
    assert_in_range(mean, 740, 760);
    for (size_t q = 0; q < 4; q++)
        assert_in_range(quarter[q], n / 4 - n / 20, n / 4 + n / 20);
}

/* The jitter actually varies: many distinct values, no long repeats. */
static void jitter_varies(void **state)
{
    (void)state;
    struct sk_rng r;
    sk_rng_seed(&r, 0); /* 0 works as a seed */
    uint64_t prev = UINT64_MAX;
    unsigned same_as_prev = 0;
    static bool seen[501];
    memset(seen, 0, sizeof seen);
    unsigned distinct = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t v = sk_backoff_ms(1000, 1000, 1, &r);
        assert_in_range(v, 500, 1000);
        if (!seen[v - 500]) {
            seen[v - 500] = true;
            distinct++;
        }
        if (v == prev)
            same_as_prev++;
        prev = v;
    }
    assert_true(distinct > 300);
    assert_true(same_as_prev < 20);
}

/* The same seed gives the same sequence; different seeds differ. */
static void deterministic_per_seed(void **state)
{
    (void)state;
    struct sk_rng a, b, c;
    sk_rng_seed(&a, 12345);
    sk_rng_seed(&b, 12345);
    sk_rng_seed(&c, 12346);
    unsigned differ = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t x = sk_rng_next(&a), y = sk_rng_next(&b), z = sk_rng_next(&c);
        assert_int_equal(x, y);
        differ += x != z;
    }
    assert_true(differ > 190);

    sk_rng_seed(&a, 99);
    sk_rng_seed(&b, 99);
    for (unsigned i = 1; i < 200; i++)
        assert_int_equal(sk_backoff_ms(100, 10000, i % 12, &a),
                         sk_backoff_ms(100, 10000, i % 12, &b));
}

/* Every seed works: 0, and the one whose scrambled state would be 0. */
static void no_stuck_seed(void **state)
{
    (void)state;
    /* seed * K ^ C == 0 for seed = C * K^-1 (mod 2^64); K is odd, so it
     * has an inverse, found by Newton's iteration */
    const uint64_t k = UINT64_C(0x9E3779B97F4A7C15), c = UINT64_C(0x2545F4914F6CDD1D);
    uint64_t inv = k;
    for (int i = 0; i < 6; i++)
        inv *= 2 - k * inv;
    assert_int_equal(k * inv, 1);
    const uint64_t seeds[] = {0, 1, UINT64_MAX, c * inv};
    for (size_t s = 0; s < sizeof seeds / sizeof *seeds; s++) {
        struct sk_rng r;
        sk_rng_seed(&r, seeds[s]);
        assert_int_not_equal(r.s, 0);
        uint64_t first = sk_rng_next(&r);
        unsigned changed = 0;
        for (int i = 0; i < 50; i++)
            changed += sk_rng_next(&r) != first;
        assert_true(changed >= 49);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(doubles_per_attempt),
        cmocka_unit_test(capped_at_max),
        cmocka_unit_test(attempt_zero_is_one),
        cmocka_unit_test(max_below_min),
        cmocka_unit_test(min_one),
        cmocka_unit_test(odd_delays_reach_d),
        cmocka_unit_test(jitter_uniform),
        cmocka_unit_test(jitter_varies),
        cmocka_unit_test(deterministic_per_seed),
        cmocka_unit_test(no_stuck_seed),
    };
    return cmocka_run_group_tests_name("backoff", tests, NULL, NULL);
}
