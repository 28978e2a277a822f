/* backoff — exponential backoff with jitter: the one rule every retry in
 * the daemon follows (reconnects, failed transactions), and the small
 * random source it draws the jitter from.
 *
 * The delay doubles from min_ms with each attempt up to max_ms, then a
 * uniform draw in [d/2, d] spreads the retries of instances or
 * transactions that failed together, so they do not collide again. */
#pragma once
#include <stdint.h>

struct sk_rng {
    uint64_t s;
};

/* Any seed works, 0 included. */
void sk_rng_seed(struct sk_rng *r, uint64_t seed);
uint64_t sk_rng_next(struct sk_rng *r);

/* The delay before attempt number `attempt` (1 = the first retry; 0 is
 * taken as 1).  max_ms below min_ms is taken as min_ms. */
uint64_t sk_backoff_ms(unsigned min_ms, unsigned max_ms, unsigned attempt, struct sk_rng *r);
