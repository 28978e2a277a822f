/* preload — the users a starting daemon learns from `users` before its
 * transactions meet them.
 *
 * A daemon starts knowing no username (struct sk_known), so its first
 * transactions send every name to INSERT IGNORE (which InnoDB inserts and
 * rolls back for an existing row) and look every id up by name: restarted
 * on a populated database, its first transactions are much slower than
 * later ones, and the events queued behind them wait.  So it reads the newest users (by id,
 * newest first) in chunks of PRELOAD_CHUNK rows, one chunk at a time on one
 * connection, up to pipeline.known_users_preload.  Ids never change, so
 * what is read stays right; a user deleted later is handled as for any
 * known user (the map is cleared).
 *
 * Knows SQL text and rows, not connections: warmup.c runs the chunks. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "known.h"

#define PRELOAD_CHUNK 10000

struct sk_preload {
    size_t target;       /* users to learn in all (0: none) */
    size_t loaded;       /* rows learned so far */
    size_t chunk_rows;   /* rows of the chunk in flight */
    int64_t below;       /* the next chunk reads ids below this; 0: from the newest */
    bool wanted;         /* a chunk is due when a connection is free */
    uint64_t started;    /* monotonic usec of the first chunk, for the log */
    struct sk_buf sql;   /* the chunk in flight (Connector/C may still be sending it) */
};

void sk_preload_init(struct sk_preload *p, size_t target);
void sk_preload_free(struct sk_preload *p);
/* The next chunk's statement into p->sql; -ENOMEM. */
int sk_preload_sql(struct sk_preload *p);
/* One row of the chunk: id, username. */
void sk_preload_row(struct sk_preload *p, struct sk_known *k, char **row,
                    const unsigned long *lengths, unsigned nfields);
/* The chunk has been read; true when another one is wanted (p->wanted). */
bool sk_preload_chunk_done(struct sk_preload *p);
