/* preload — newest users first, in chunks; see include/preload.h. */
#include "preload.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

void sk_preload_init(struct sk_preload *p, size_t target)
{
    *p = (struct sk_preload){.target = target, .wanted = target > 0};
    sk_buf_init(&p->sql);
}

void sk_preload_free(struct sk_preload *p) { sk_buf_free(&p->sql); }

/* Rows the next chunk asks for: a full chunk, or what is left of the target. */
static size_t chunk_asked(const struct sk_preload *p)
{
    size_t n = p->target - p->loaded;
    return n < PRELOAD_CHUNK ? n : PRELOAD_CHUNK;
}

int sk_preload_sql(struct sk_preload *p)
{
    sk_buf_reset(&p->sql);
    sk_buf_puts(&p->sql, "SELECT id, username FROM users");
    /* keyset paging on the primary key: each chunk is one index range */
    if (p->below > 0)
        sk_buf_printf(&p->sql, " WHERE id < %" PRId64, p->below);
    sk_buf_printf(&p->sql, " ORDER BY id DESC LIMIT %zu", chunk_asked(p));
    p->chunk_rows = 0;
    return sk_buf_failed(&p->sql) ? -ENOMEM : 0;
}

void sk_preload_row(struct sk_preload *p, struct sk_known *k, char **row,
                    const unsigned long *lengths, unsigned nfields)
{
    if (nfields != 2 || !row[0] || !row[1])
        return;
    char *end;
    errno = 0;
    long long id = strtoll(row[0], &end, 10);
    if (errno || *end || id <= 0)
        return;
    p->chunk_rows++;
    if (p->below == 0 || id < p->below)
        p->below = id;
    sk_known_add(k, row[1], lengths[1], id);
}

bool sk_preload_chunk_done(struct sk_preload *p)
{
    size_t asked = chunk_asked(p);
    p->loaded += p->chunk_rows;
    /* a short chunk means the table has no older users */
    p->wanted = p->chunk_rows == asked && p->loaded < p->target;
    return p->wanted;
}
