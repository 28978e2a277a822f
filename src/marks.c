/* marks — per-partition map of games to applied offsets, see include/marks.h.
 *
 * Open addressing with linear probing; a forgotten game keeps its slot with
 * the value -1 (no tombstones to manage), and a full map is cleared.  Game
 * ids are any int64; the slot's used flag tells an empty slot apart. */
#include "marks.h"

#include "hash.h"

#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>

#define MIN_CAP 64

struct slot {
    int64_t game;
    int64_t next; /* -1: forgotten */
    bool used;
};

struct sk_marks {
    struct slot *t;
    size_t cap; /* power of two, at least twice n */
    size_t n;   /* used slots */
    size_t max;
    size_t known; /* used slots with a mark */
    bool complete; /* a game without a slot has no game_offsets row (mark 0) */
};

static struct slot *probe(const struct sk_marks *m, int64_t game)
{
    for (size_t i = sk_hash_u64((uint64_t)game) & (m->cap - 1);; i = (i + 1) & (m->cap - 1))
        if (!m->t[i].used || m->t[i].game == game)
            return &m->t[i];
}

/* A table of cap slots with the entries rehashed into it; 0, or -ENOMEM
 * (the old table then kept). */
static int set_table(struct sk_marks *m, size_t cap)
{
    struct slot *t = calloc(cap, sizeof *t);
    if (!t)
        return -ENOMEM;
    struct slot *old = m->t;
    size_t old_cap = m->cap;
    m->t = t;
    m->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].used)
            *probe(m, old[i].game) = old[i];
    free(old);
    return 0;
}

struct sk_marks *sk_marks_new(size_t max_entries)
{
    struct sk_marks *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->max = max_entries ? max_entries : 1;
    if (set_table(m, MIN_CAP) < 0) {
        free(m);
        return NULL;
    }
    return m;
}

void sk_marks_free(struct sk_marks *m)
{
    if (!m)
        return;
    free(m->t);
    free(m);
}

int64_t sk_marks_get(const struct sk_marks *m, int64_t game)
{
    const struct slot *s = probe(m, game);
    if (s->used)
        return s->next;
    return m->complete ? 0 : -1;
}

void sk_marks_complete(struct sk_marks *m) { m->complete = true; }

static void clear(struct sk_marks *m)
{
    for (size_t i = 0; i < m->cap; i++)
        m->t[i] = (struct slot){0};
    m->n = m->known = 0;
    m->complete = false; /* what was cleared is not known to be absent */
}

/* The game's slot, taken if it had none (its value -1); NULL when the map
 * was full and cleared, or could not grow. */
static struct slot *take(struct sk_marks *m, int64_t game)
{
    struct slot *s = probe(m, game);
    if (s->used)
        return s;
    if (m->n >= m->max) {
        clear(m);
        return NULL;
    }
    if (2 * (m->n + 1) > m->cap && set_table(m, m->cap * 2) < 0)
        return NULL;
    s = probe(m, game);
    *s = (struct slot){.game = game, .next = -1, .used = true};
    m->n++;
    return s;
}

void sk_marks_set(struct sk_marks *m, int64_t game, int64_t next)
{
    if (next < 0) {
        sk_marks_forget(m, game);
        return;
    }
    struct slot *s = take(m, game);
    if (!s && !(s = take(m, game))) /* cleared when full: take again */
        return; /* only a hint: do without it */
    if (s->next < 0)
        m->known++;
    s->next = next;
}

void sk_marks_forget(struct sk_marks *m, int64_t game)
{
    /* In a complete map a game without a slot reads as new: a forgotten one
     * keeps a slot saying unknown (unless the map had to be cleared). */
    struct slot *s = m->complete ? take(m, game) : probe(m, game);
    if (s && s->used && s->next >= 0) {
        s->next = -1;
        m->known--;
    }
}

size_t sk_marks_count(const struct sk_marks *m) { return m->known; }
