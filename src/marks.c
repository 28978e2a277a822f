/* marks — per-partition map of games to applied offsets, see include/marks.h.
 *
 * Two generations of at most half the bound each, as in known.c: marks go
 * into the current one (every commit sets its games' marks again); when
 * the current one is full, the previous one is dropped and the current one
 * takes its place.  A game committed at least once per generation keeps
 * its mark, and the games idle the longest are forgotten, about half of
 * the map at a time, whereas clearing the whole map when full would, with
 * more busy games than the bound, make the busiest ones read first again
 * after each clear.
 *
 * Each generation is a table with linear probing over 16-byte slots that
 * starts small, doubles at half load and starts small again at each
 * rotation, so memory follows the games seen lately.  A slot holds the
 * mark plus 2: 0 is an empty slot (as calloc leaves it), 1 a game whose
 * mark is in doubt (forgotten); no tombstones to manage.  Game ids are any
 * int64. */
#include "marks.h"

#include "hash.h"

#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CAP 64
#define EMPTY 0
#define FORGOTTEN 1 /* the stored value of the mark -1 */

struct slot {
    int64_t game;
    uint64_t v; /* the mark + 2; EMPTY, FORGOTTEN */
};

struct gen {
    struct slot *t;
    size_t cap; /* power of two */
    size_t n;   /* used slots */
};

struct sk_marks {
    struct gen cur, old; /* lookups try cur, then old */
    size_t gen_max;      /* entries per generation */
    bool complete; /* a game without a slot has no game_offsets row (mark 0) */
    bool dropped;  /* marks were dropped: what is absent may have had one */
};

static int64_t mark_of(uint64_t v) { return v == FORGOTTEN ? -1 : (int64_t)(v - 2); }

static struct slot *probe(const struct gen *g, int64_t game)
{
    for (size_t i = sk_hash_u64((uint64_t)game) & (g->cap - 1);; i = (i + 1) & (g->cap - 1))
        if (g->t[i].v == EMPTY || g->t[i].game == game)
            return &g->t[i];
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
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].v != EMPTY)
            *probe(g, old[i].game) = old[i];
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
    g->n = 0;
}

struct sk_marks *sk_marks_new(size_t max_entries)
{
    struct sk_marks *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    sk_marks_set_max(m, max_entries);
    if (set_table(&m->cur, MIN_CAP) < 0 || set_table(&m->old, MIN_CAP) < 0) {
        sk_marks_free(m);
        return NULL;
    }
    return m;
}

void sk_marks_free(struct sk_marks *m)
{
    if (!m)
        return;
    free(m->cur.t);
    free(m->old.t);
    free(m);
}

void sk_marks_set_max(struct sk_marks *m, size_t max_entries)
{
    m->gen_max = max_entries >= 2 ? max_entries / 2 : 1;
}

size_t sk_marks_load_max(const struct sk_marks *m) { return m->gen_max; }

/* The current generation is full: the previous one goes (with it, what a
 * complete map knew of the games it does not hold), the current one takes
 * its place, and an empty one starts. */
static void rotate(struct sk_marks *m)
{
    if (m->old.n) {
        m->dropped = true;
        m->complete = false;
    }
    struct gen g = m->old;
    m->old = m->cur;
    m->cur = g;
    gen_reset(&m->cur);
}

/* Store v for the game in the current generation; false when a table
 * could not grow (a mark is only a hint: do without it). */
static bool put(struct sk_marks *m, int64_t game, uint64_t v)
{
    struct gen *g = &m->cur;
    struct slot *s = probe(g, game);
    if (s->v == EMPTY) {
        if (g->n >= m->gen_max)
            rotate(m);
        else if (2 * (g->n + 1) > g->cap &&
                 g->cap < sk_hash_cap_for(MIN_CAP, m->gen_max) && set_table(g, g->cap * 2) < 0)
            return false;
        s = probe(g, game);
        s->game = game;
        g->n++;
    }
    s->v = v;
    return true;
}

int64_t sk_marks_get(const struct sk_marks *m, int64_t game)
{
    const struct slot *s = probe(&m->cur, game);
    if (s->v == EMPTY)
        s = probe(&m->old, game);
    if (s->v == EMPTY)
        return m->complete ? 0 : -1;
    return mark_of(s->v);
}

void sk_marks_complete(struct sk_marks *m)
{
    if (!m->dropped)
        m->complete = true;
}

void sk_marks_set(struct sk_marks *m, int64_t game, int64_t next)
{
    if (next < 0)
        sk_marks_forget(m, game);
    else
        (void)put(m, game, (uint64_t)next + 2);
}

void sk_marks_forget(struct sk_marks *m, int64_t game)
{
    bool held = false;
    struct gen *gens[] = {&m->cur, &m->old};
    for (size_t i = 0; i < 2; i++) {
        struct slot *s = probe(gens[i], game);
        if (s->v != EMPTY) {
            s->v = FORGOTTEN;
            held = true;
        }
    }
    /* In a complete map a game without a slot reads as new: a forgotten one
     * keeps a slot saying unknown (until its generation is dropped, which
     * ends completeness). */
    if (!held && m->complete)
        (void)put(m, game, FORGOTTEN);
}

size_t sk_marks_count(const struct sk_marks *m) { return m->cur.n + m->old.n; }
