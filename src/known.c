/* known — bounded map of usernames to ids, see include/known.h.
 *
 * Open addressing with linear probing over 16-byte slots; the names live
 * back to back in one growing buffer (a 2-byte length, then the bytes), so
 * an entry costs about 16 bytes of table per half-load plus its name, and
 * no allocation of its own.  A table starts small and doubles at half load,
 * so memory follows the users actually seen.
 *
 * Two generations of at most half the maximum each: names go into the
 * current one; a name found only in the previous one is copied into the
 * current one; when the current one is full, the previous one is dropped
 * and the current one becomes the previous.  A name used at least once
 * per generation is never forgotten, whereas clearing the whole set when
 * full would, with more active users than the maximum, make every user,
 * the busiest ones too, unknown again after each clear (and cost the
 * server an INSERT IGNORE for each). */
#include "known.h"

#include "hash.h"

#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CAP 1024

struct slot {
    uint32_t tag; /* high bits of the hash, never 0; 0: empty */
    uint32_t off; /* the name's place in names */
    int64_t id;
};

struct gen {
    struct slot *t;
    size_t cap; /* power of two */
    size_t n;
    unsigned char *names;
    size_t names_len, names_cap;
};

struct sk_known {
    struct gen cur, old; /* lookups try cur, then old */
    size_t gen_max;      /* entries per generation */
};

static uint32_t tag_of(uint64_t h)
{
    uint32_t t = (uint32_t)(h >> 32);
    return t ? t : 1;
}

static bool same(const struct gen *g, const struct slot *s, const char *name, size_t len)
{
    const unsigned char *p = g->names + s->off;
    return (size_t)(p[0] | p[1] << 8) == len && !memcmp(p + 2, name, len);
}

/* The slot holding name, or the empty slot where it would go. */
static struct slot *probe(const struct gen *g, uint64_t h, const char *name, size_t len)
{
    uint32_t tag = tag_of(h);
    for (size_t i = (size_t)h & (g->cap - 1);; i = (i + 1) & (g->cap - 1)) {
        struct slot *s = &g->t[i];
        if (!s->tag || (s->tag == tag && same(g, s, name, len)))
            return s;
    }
}

/* A table of cap slots with the entries rehashed into it; 0, or -ENOMEM
 * (the old table then kept). */
static int set_table(struct gen *g, size_t cap)
{
    struct slot *t = calloc(cap, sizeof *t);
    if (!t)
        return -ENOMEM;
    struct slot *old = g->t;
    size_t old_cap = g->cap;
    g->t = t;
    g->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].tag)
            continue;
        const unsigned char *p = g->names + old[i].off;
        const char *name = (const char *)p + 2;
        size_t len = (size_t)(p[0] | p[1] << 8);
        *probe(g, sk_hash_bytes(name, len), name, len) = old[i];
    }
    free(old);
    return 0;
}

/* Empty the generation, back to a small table. */
static void gen_reset(struct gen *g)
{
    struct slot *t = calloc(MIN_CAP, sizeof *t);
    if (t) {
        free(g->t);
        g->t = t;
        g->cap = MIN_CAP;
    } else {
        memset(g->t, 0, g->cap * sizeof *g->t);
    }
    free(g->names);
    g->names = NULL;
    g->names_len = g->names_cap = 0;
    g->n = 0;
}

struct sk_known *sk_known_new(size_t max_entries)
{
    struct sk_known *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->gen_max = max_entries > 1 ? (max_entries + 1) / 2 : 1;
    if (set_table(&k->cur, MIN_CAP) < 0 || set_table(&k->old, MIN_CAP) < 0) {
        sk_known_free(k);
        return NULL;
    }
    return k;
}

void sk_known_clear(struct sk_known *k)
{
    gen_reset(&k->cur);
    gen_reset(&k->old);
}

void sk_known_free(struct sk_known *k)
{
    if (!k)
        return;
    free(k->cur.t);
    free(k->cur.names);
    free(k->old.t);
    free(k->old.names);
    free(k);
}

static bool keep_name(struct gen *g, const char *name, size_t len, uint32_t *off)
{
    size_t need = g->names_len + 2 + len;
    if (need > UINT32_MAX)
        return false;
    if (need > g->names_cap) {
        size_t cap = g->names_cap ? g->names_cap : 4096;
        while (cap < need)
            cap *= 2;
        unsigned char *p = realloc(g->names, cap);
        if (!p)
            return false;
        g->names = p;
        g->names_cap = cap;
    }
    unsigned char *p = g->names + g->names_len;
    p[0] = (unsigned char)(len & 0xff);
    p[1] = (unsigned char)(len >> 8);
    memcpy(p + 2, name, len);
    *off = (uint32_t)g->names_len;
    g->names_len = need;
    return true;
}

/* The current generation is full: the previous one goes, the current one
 * takes its place, and an empty one starts. */
static void rotate(struct sk_known *k)
{
    struct gen g = k->old;
    k->old = k->cur;
    k->cur = g;
    gen_reset(&k->cur);
}

/* Put name -> id into the current generation. */
static void put(struct sk_known *k, uint64_t h, const char *name, size_t len, int64_t id)
{
    struct gen *g = &k->cur;
    struct slot *s = probe(g, h, name, len);
    if (s->tag) {
        s->id = id;
        return;
    }
    if (g->n >= k->gen_max)
        rotate(k);
    else if (2 * (g->n + 1) > g->cap &&
             g->cap < sk_hash_cap_for(MIN_CAP, k->gen_max) && set_table(g, g->cap * 2) < 0)
        return; /* only an optimization: forget it */
    uint32_t off;
    if (!keep_name(g, name, len, &off))
        return;
    s = probe(g, h, name, len);
    *s = (struct slot){.tag = tag_of(h), .off = off, .id = id};
    g->n++;
}

int64_t sk_known_id(struct sk_known *k, const char *name, size_t len)
{
    uint64_t h = sk_hash_bytes(name, len);
    const struct slot *s = probe(&k->cur, h, name, len);
    if (s->tag)
        return s->id;
    s = probe(&k->old, h, name, len);
    if (!s->tag)
        return 0;
    int64_t id = s->id;
    put(k, h, name, len, id); /* used again: it outlives the next rotation */
    return id;
}

void sk_known_add(struct sk_known *k, const char *name, size_t len, int64_t id)
{
    if (len > 0xffff)
        return; /* longer than any valid username: not worth remembering */
    put(k, sk_hash_bytes(name, len), name, len, id);
}

size_t sk_known_count(const struct sk_known *k) { return k->cur.n + k->old.n; }
