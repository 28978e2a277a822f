/* known — bounded set of usernames, see include/known.h.  Open addressing
 * with linear probing; the table is twice the maximum, so probes stay
 * short, and it is never resized: a full set is cleared instead. */
#include "known.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    uint64_t hash; /* 0: empty */
    char *name;
    size_t len;
    int64_t id;
};

struct sk_known {
    struct slot *t;
    size_t cap; /* power of two */
    size_t n, max;
};

static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

struct sk_known *sk_known_new(size_t max_entries)
{
    struct sk_known *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->max = max_entries ? max_entries : 1;
    k->cap = 16;
    while (k->cap < 2 * k->max)
        k->cap *= 2;
    k->t = calloc(k->cap, sizeof *k->t);
    if (!k->t) {
        free(k);
        return NULL;
    }
    return k;
}

void sk_known_clear(struct sk_known *k)
{
    for (size_t i = 0; i < k->cap; i++)
        free(k->t[i].name);
    memset(k->t, 0, k->cap * sizeof *k->t);
    k->n = 0;
}

void sk_known_free(struct sk_known *k)
{
    if (!k)
        return;
    sk_known_clear(k);
    free(k->t);
    free(k);
}

static struct slot *probe(const struct sk_known *k, uint64_t h, const char *name, size_t len)
{
    for (size_t i = h & (k->cap - 1);; i = (i + 1) & (k->cap - 1)) {
        struct slot *s = &k->t[i];
        if (!s->hash || (s->hash == h && s->len == len && !memcmp(s->name, name, len)))
            return s;
    }
}

int64_t sk_known_id(const struct sk_known *k, const char *name, size_t len)
{
    const struct slot *s = probe(k, hash(name, len), name, len);
    return s->hash ? s->id : 0;
}

void sk_known_add(struct sk_known *k, const char *name, size_t len, int64_t id)
{
    uint64_t h = hash(name, len);
    struct slot *s = probe(k, h, name, len);
    if (s->hash) {
        s->id = id;
        return;
    }
    if (k->n >= k->max) {
        sk_known_clear(k);
        s = probe(k, h, name, len);
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return; /* only an optimization: forget it */
    memcpy(copy, name, len);
    copy[len] = '\0';
    *s = (struct slot){.hash = h, .name = copy, .len = len, .id = id};
    k->n++;
}

size_t sk_known_count(const struct sk_known *k) { return k->n; }
