/* flow — the consumer's backpressure rules, as pure functions.
 *
 * pipeline.max_inflight_events is shared among the partitions that carry
 * traffic: each may hold its share of live events (consumed, result not yet
 * delivered).  A partition is held (its queue no longer read) when it
 * reaches its share, when one slow event has held its committable prefix
 * back for SK_FLOW_SPAN_SHARES shares (so the offset ring and the replay
 * after a crash stay bounded), or when the whole daemon is at the limit.
 * It is released at half of both, so that the work in hand overlaps with
 * reading more.
 *
 * pipeline.max_inflight_bytes bounds the same events by the memory they
 * hold (the consumer's charge per event, see msg.h), shared the same way:
 * a partition is also held at its share of bytes, or when the daemon is at
 * the limit, and released only once its bytes are at half of its share
 * too.  Events of a few bytes reach the count first, large ones the bytes:
 * memory is bounded either way. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define SK_FLOW_SPAN_SHARES 4

/* One partition's share of max_inflight among n_active partitions (>= 1). */
size_t sk_flow_share(size_t max_inflight, size_t n_active);
/* live: its events in flight; span: its offsets from the oldest not done
 * to the newest consumed; inflight: the daemon's events in flight. */
bool sk_flow_full(size_t live, size_t span, size_t inflight, size_t max_inflight, size_t share);
bool sk_flow_low(size_t live, size_t span, size_t share);
/* The same in bytes: bytes, the partition's; total, the daemon's; share
 * from sk_flow_share(max_bytes, n_active). */
bool sk_flow_full_bytes(size_t bytes, size_t total, size_t max_bytes, size_t share);
bool sk_flow_low_bytes(size_t bytes, size_t share);
