/* backoff — see include/backoff.h. */
#include "backoff.h"

void sk_rng_seed(struct sk_rng *r, uint64_t seed)
{
    r->s = seed * UINT64_C(0x9E3779B97F4A7C15) ^ UINT64_C(0x2545F4914F6CDD1D);
    if (!r->s)
        r->s = 1; /* xorshift stays at 0 forever */
}

uint64_t sk_rng_next(struct sk_rng *r)
{
    /* xorshift64*: jitter only, no need for quality */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * UINT64_C(2685821657736338717);
}

uint64_t sk_backoff_ms(unsigned min_ms, unsigned max_ms, unsigned attempt, struct sk_rng *r)
{
    uint64_t max = max_ms > min_ms ? max_ms : min_ms;
    uint64_t d = min_ms;
    for (unsigned i = 1; i < attempt && d < max; i++)
        d *= 2;
    if (d > max)
        d = max;
    uint64_t lo = d - d / 2; /* the half rounded up: an odd delay can still be drawn whole */
    return lo + sk_rng_next(r) % (d - lo + 1);
}
