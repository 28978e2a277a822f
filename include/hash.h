/* hash — the hash functions of the daemon's in-memory tables (sched's
 * groups, marks, known users, the log's rate limiter), in one place so
 * that no table carries its own copy.
 *
 * Fast and well spread, not keyed: a table that hashes strings a stranger
 * chooses must bound its own size (they all do). */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Fibonacci hashing of a 64-bit key: the product's high half is the well
 * mixed part, so that is what is returned; mask it for a power-of-two
 * table. */
static inline uint32_t sk_hash_u64(uint64_t x)
{
    return (uint32_t)((x * UINT64_C(0x9E3779B97F4A7C15)) >> 32);
}

/* 64-bit FNV-1a of p[0..len). */
static inline uint64_t sk_hash_bytes(const void *p, size_t len)
{
    const unsigned char *s = p;
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/* The largest power-of-two table, from min_cap up, that a table of at
 * most entries needs to stay at most half full. */
static inline size_t sk_hash_cap_for(size_t min_cap, size_t entries)
{
    size_t cap = min_cap;
    while (cap < 2 * entries)
        cap *= 2;
    return cap;
}
