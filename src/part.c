/* part — partition offset tracking, see include/part.h. */
#include "part.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct sk_part *sk_part_new(const char *topic, int32_t partition, enum sk_event_kind kind,
                            size_t max_marks)
{
    struct sk_part *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->topic = strdup(topic);
    if (!p->topic) {
        free(p);
        return NULL;
    }
    if (kind == SK_EV_SCORE && !(p->marks = sk_marks_new(max_marks))) {
        free(p->topic);
        free(p);
        return NULL;
    }
    p->partition = partition;
    p->kind = kind;
    p->next_commit = -1;
    p->committed = -1;
    p->lag = -1;
    p->top_mark = -1;
    p->check = kind == SK_EV_SCORE ? SK_PART_CHECKING : SK_PART_CHECKED;
    return p;
}

void sk_part_free(struct sk_part *p)
{
    if (!p)
        return;
    free(p->offs);
    free(p->done);
    sk_marks_free(p->marks);
    free(p->topic);
    free(p);
}

void sk_part_unref(struct sk_part *p)
{
    if (p->refs > 0)
        p->refs--;
    if (p->revoked && p->refs == 0)
        sk_part_free(p);
}

static int grow(struct sk_part *p)
{
    size_t cap = p->cap ? p->cap * 2 : 1024;
    int64_t *offs = malloc(cap * sizeof *offs);
    bool *done = malloc(cap * sizeof *done);
    if (!offs || !done) {
        free(offs);
        free(done);
        return -ENOMEM;
    }
    /* Unroll the ring into the new arrays, oldest first. */
    for (size_t i = 0; i < p->count; i++) {
        size_t j = (p->head + i) % p->cap;
        offs[i] = p->offs[j];
        done[i] = p->done[j];
    }
    free(p->offs);
    free(p->done);
    p->offs = offs;
    p->done = done;
    p->head = 0;
    p->cap = cap;
    return 0;
}

int sk_part_track(struct sk_part *p, int64_t offset)
{
    if (p->count == p->cap && grow(p) < 0)
        return -ENOMEM;
    size_t j = (p->head + p->count) % p->cap;
    p->offs[j] = offset;
    p->done[j] = false;
    p->count++;
    p->refs++;
    if (p->next_commit < 0)
        p->next_commit = offset;
    return 0;
}

void sk_part_done(struct sk_part *p, int64_t offset)
{
    /* Offsets in a partition are mostly consecutive: where it would be if
     * they were, checked first; else a binary search, as the ring holds
     * strictly increasing offsets. */
    size_t lo = 0, hi = p->count;
    if (p->count && offset >= p->offs[p->head] &&
        (uint64_t)(offset - p->offs[p->head]) < p->count) {
        size_t guess = (size_t)(offset - p->offs[p->head]);
        if (p->offs[(p->head + guess) % p->cap] == offset)
            lo = hi = guess;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t v = p->offs[(p->head + mid) % p->cap];
        if (v < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == p->count || p->offs[(p->head + lo) % p->cap] != offset)
        return; /* not tracked (already popped): nothing to do */
    p->done[(p->head + lo) % p->cap] = true;
    while (p->count && p->done[p->head]) {
        p->next_commit = p->offs[p->head] + 1;
        p->head = (p->head + 1) % p->cap;
        p->count--;
    }
    if (p->count)
        p->next_commit = p->offs[p->head];
}

size_t sk_part_live(const struct sk_part *p) { return p->refs; }

size_t sk_part_span(const struct sk_part *p) { return p->count; }
