/* flow — see include/flow.h. */
#include "flow.h"

size_t sk_flow_share(size_t max_inflight, size_t n_active)
{
    /* An idle partition (say, a quiet users topic) does not hold back a
     * share it never uses. */
    size_t lim = max_inflight / (n_active ? n_active : 1);
    return lim ? lim : 1;
}

bool sk_flow_full(size_t live, size_t span, size_t inflight, size_t max_inflight, size_t share)
{
    /* The total is a hard cap too: shares are computed over the partitions
     * seen so far, and at start-up the first ones would each take it all. */
    return live >= share || span >= SK_FLOW_SPAN_SHARES * share || inflight >= max_inflight;
}

bool sk_flow_low(size_t live, size_t span, size_t share)
{
    return live <= share / 2 && span <= SK_FLOW_SPAN_SHARES * share / 2;
}

bool sk_flow_full_bytes(size_t bytes, size_t total, size_t max_bytes, size_t share)
{
    return bytes >= share || total >= max_bytes;
}

bool sk_flow_low_bytes(size_t bytes, size_t share) { return bytes <= share / 2; }
