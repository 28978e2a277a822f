/* known — bounded set of usernames, see include/known.h.
 *
 * Open addressing with linear probing over 16-byte slots; the names live
 * back to back in one growing buffer (a 2-byte length, then the bytes), so
 * an entry costs about 16 bytes of table per half-load plus its name, and
 * no allocation of its own.  The table starts small and doubles at half
 * load up to twice the maximum, so memory follows the users actually seen
 * (100,000 users held 20 MB, measured in the daemon's memory map, with a
 * slot and a malloc'd copy per name in a table sized for the maximum up
 * front; now about 5 MB by the sizes: 262,144 slots and the names).  A full
 * set is cleared instead of evicting one by one. */
#include "known.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CAP 1024

struct slot {
    uint32_t tag; /* high bits of the hash, never 0; 0: empty */
    uint32_t off; /* the name's place in names */
    int64_t id;
};

struct sk_known {
    struct slot *t;
    size_t cap; /* power of two */
    size_t n, max;
    unsigned char *names;
    size_t names_len, names_cap;
};

static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint32_t tag_of(uint64_t h)
{
    uint32_t t = (uint32_t)(h >> 32);
    return t ? t : 1;
}

static bool same(const struct sk_known *k, const struct slot *s, const char *name, size_t len)
{
    const unsigned char *p = k->names + s->off;
    return (size_t)(p[0] | p[1] << 8) == len && !memcmp(p + 2, name, len);
}

/* The slot holding name, or the empty slot where it would go. */
static struct slot *probe(const struct sk_known *k, uint64_t h, const char *name, size_t len)
{
    uint32_t tag = tag_of(h);
    for (size_t i = (size_t)h & (k->cap - 1);; i = (i + 1) & (k->cap - 1)) {
        struct slot *s = &k->t[i];
        if (!s->tag || (s->tag == tag && same(k, s, name, len)))
            return s;
    }
}

static int set_table(struct sk_known *k, size_t cap)
{
    struct slot *t = calloc(cap, sizeof *t);
    if (!t)
        return -1;
    struct slot *old = k->t;
    size_t old_cap = k->cap;
    k->t = t;
    k->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].tag)
            continue;
        const unsigned char *p = k->names + old[i].off;
        const char *name = (const char *)p + 2;
        size_t len = (size_t)(p[0] | p[1] << 8);
        *probe(k, hash(name, len), name, len) = old[i];
    }
    free(old);
    return 0;
}

static size_t max_cap(const struct sk_known *k)
{
    size_t cap = MIN_CAP;
    while (cap < 2 * k->max)
        cap *= 2;
    return cap;
}

struct sk_known *sk_known_new(size_t max_entries)
{
    struct sk_known *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->max = max_entries ? max_entries : 1;
    if (set_table(k, MIN_CAP) < 0) {
        free(k);
        return NULL;
    }
    return k;
}

void sk_known_clear(struct sk_known *k)
{
    /* Back to a small table: after a clear the set refills from scratch. */
    struct slot *t = calloc(MIN_CAP, sizeof *t);
    if (t) {
        free(k->t);
        k->t = t;
        k->cap = MIN_CAP;
    } else {
        memset(k->t, 0, k->cap * sizeof *k->t);
    }
    free(k->names);
    k->names = NULL;
    k->names_len = k->names_cap = 0;
    k->n = 0;
}

void sk_known_free(struct sk_known *k)
{
    if (!k)
        return;
    free(k->t);
    free(k->names);
    free(k);
}

int64_t sk_known_id(const struct sk_known *k, const char *name, size_t len)
{
    const struct slot *s = probe(k, hash(name, len), name, len);
    return s->tag ? s->id : 0;
}

static bool keep_name(struct sk_known *k, const char *name, size_t len, uint32_t *off)
{
    size_t need = k->names_len + 2 + len;
    if (need > UINT32_MAX)
        return false;
    if (need > k->names_cap) {
        size_t cap = k->names_cap ? k->names_cap : 4096;
        while (cap < need)
            cap *= 2;
        unsigned char *p = realloc(k->names, cap);
        if (!p)
            return false;
        k->names = p;
        k->names_cap = cap;
    }
    unsigned char *p = k->names + k->names_len;
    p[0] = (unsigned char)(len & 0xff);
    p[1] = (unsigned char)(len >> 8);
    memcpy(p + 2, name, len);
    *off = (uint32_t)k->names_len;
    k->names_len = need;
    return true;
}

void sk_known_add(struct sk_known *k, const char *name, size_t len, int64_t id)
{
    if (len > 0xffff)
        return; /* longer than any valid username: not worth remembering */
    uint64_t h = hash(name, len);
    struct slot *s = probe(k, h, name, len);
    if (s->tag) {
        s->id = id;
        return;
    }
    if (k->n >= k->max)
        sk_known_clear(k);
    else if (2 * (k->n + 1) > k->cap && k->cap < max_cap(k) && set_table(k, k->cap * 2) < 0)
        return; /* only an optimization: forget it */
    uint32_t off;
    if (!keep_name(k, name, len, &off))
        return;
    s = probe(k, h, name, len);
    *s = (struct slot){.tag = tag_of(h), .off = off, .id = id};
    k->n++;
}

size_t sk_known_count(const struct sk_known *k) { return k->n; }
