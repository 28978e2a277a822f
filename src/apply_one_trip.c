/* apply_one_trip — the one-round-trip path of a score transaction, see
 * include/apply.h.
 *
 * When this instance committed every game of the transaction last (its
 * partitions' marks, see marks.h), it needs no read before writing: the
 * marks are checked in SQL and the deltas added in SQL, with the new scores
 * returned, and every event's running total follows from them.  Anything
 * this path cannot decide exactly makes the attempt take the read path
 * (src/apply.c) instead, before it starts or by failing a statement. */
#include "apply_int.h"

#include "marks.h"
#include "part.h"

#include <errno.h>
#include <stdio.h>

static uint64_t magnitude(int64_t v) { return v < 0 ? 0 - (uint64_t)v : (uint64_t)v; }

/* A swing beyond this takes the read path: the guard of
 * apply_one_trip_first needs |score| < 2^62 to hold exactly for the scores
 * it lets through. */
#define ONE_TRIP_SWING_MAX (UINT64_C(1) << 62)

/* Can this attempt take the one-round-trip path?  Every (partition, game)
 * has a mark this instance committed, and no event lies below it (a
 * possible duplicate must be read about first); the sums are small enough
 * for the guard; an overflow decided by known values (after a set) is left
 * to the read path, which rejects it alone. */
bool apply_one_trip_ok(struct sk_apply *a)
{
    for (unsigned k = 0; k < a->noffs; k++) {
        struct poff *o = &a->offs[k];
        int64_t mark = o->part->marks ? sk_marks_get(o->part->marks, o->game) : -1;
        if (mark < 0 || o->batch_min < mark)
            return false;
        o->next = mark;
    }
    for (unsigned k = 0; k < a->nplayers; k++) {
        struct player *p = &a->players[k];
        p->set = p->pre = p->got = false;
        p->acc = p->final = 0;
        p->swing = 0;
    }
    for (unsigned i = 0; i < a->n; i++) {
        const struct sk_event *ev = &a->msgs[i]->ev;
        struct player *p = &a->players[a->mplayer[i]];
        if (ev->op == SK_OP_SET) {
            p->set = true;
            p->acc = ev->value;
            continue;
        }
        if (!p->set)
            p->pre = true;
        if (__builtin_add_overflow(p->acc, ev->value, &p->acc))
            return false;
        if (!p->set && magnitude(p->acc) > p->swing)
            p->swing = magnitude(p->acc);
    }
    a->headroom = 0;
    for (unsigned k = 0; k < a->nplayers; k++) {
        const struct player *p = &a->players[k];
        if (p->set)
            continue;
        if (p->swing >= ONE_TRIP_SWING_MAX)
            return false;
        if (p->swing > a->headroom)
            a->headroom = p->swing;
    }
    return true;
}

static bool adds_deltas(const struct player *p) { return !p->set; }
static bool sets_score(const struct player *p) { return p->set; }

/* The old scores of the players with a delta before their first set (the
 * running totals up to the set need them). */
static bool needs_old_score(const struct sk_apply *a, const struct player *p)
{
    (void)a;
    return p->set && p->pre;
}

/* Move the games' applied offsets, and check on the way that nobody else
 * applied these games since this instance last did (another instance
 * after a rebalance): an existing row may move only from the mark this
 * instance holds for it, and a game taken as new must have no row.
 * Anything else sets NULL, which the NOT NULL column refuses (error 1048,
 * strict mode): the statement fails, the connection rolls the transaction
 * back and the attempt runs again on the read path.  The upsert reads the
 * latest committed row under its lock, so a writer that committed after
 * this transaction began is seen.  One statement instead of a separate
 * check saves the server a lookup per game and a compound statement per
 * transaction. */
static void upsert_offsets_from_marks(struct sk_buf *sql, const struct sk_apply *a)
{
    apply_offset_values(sql, a);
    bool marked = false;
    for (unsigned k = 0; k < a->noffs && !marked; k++)
        marked = a->offs[k].next > 0;
    if (!marked) { /* new games only: no mark to list, any row fails */
        sk_buf_puts(sql, " ON DUPLICATE KEY UPDATE next_offset = NULL");
        return;
    }
    sk_buf_puts(sql, " ON DUPLICATE KEY UPDATE next_offset = IF((`partition`, game_id, next_offset) IN (");
    apply_offset_keys(sql, a, true);
    sk_buf_puts(sql, "), VALUES(next_offset), NULL)");
}

/* The one round trip (users new to this instance were made, and their ids
 * read, in a round trip before it):
 *   START TRANSACTION; upsert the game rows (the per-game locks);
 *   read the old scores of the few players whose deltas come before a set;
 *   players without a set: score = score + (sum of their deltas),
 *     RETURNING the new score, from which every event's running total
 *     follows; a score too close to the BIGINT edge for the sums fails the
 *     statement (error 1690) and the attempt runs again on the read path,
 *     which rejects exactly the events that would leave the range;
 *   players with a set: score = what the last set and the deltas after it
 *     make (known here);
 *   move the marks, only from the marks this instance holds (else the
 *     statement fails and the attempt runs again on the read path: someone
 *     else applied events of these games, see upsert_offsets_from_marks);
 *   COMMIT.
 * Adding in SQL also keeps a score changed from outside between two
 * transactions: nothing here caches a score. */
int apply_one_trip_first(struct sk_apply *a, struct sk_buf *sql)
{
    int stmt = 0;
    apply_next_statement(sql);
    sk_buf_puts(sql, "START TRANSACTION");
    stmt++;
    stmt += apply_upsert_games(sql, a, true);
    stmt += apply_upsert_games(sql, a, false);
    a->st_unknown = -1;
    a->st_known = -1;
    if (apply_select_scores(sql, a, needs_old_score))
        a->st_known = stmt++;
    /* The guard: score * 4 overflows (error 1690) for every score outside
     * the range, as |score| >= 2^62 there. */
    char tail[256];
    snprintf(tail, sizeof tail,
             " ON DUPLICATE KEY UPDATE score = IF(score BETWEEN %lld AND %lld, score + VALUES(score), "
             "score * 4) RETURNING game_id, user_id, score",
             (long long)(INT64_MIN + (int64_t)a->headroom), (long long)(INT64_MAX - (int64_t)a->headroom));
    long r = apply_upsert_players(sql, a, adds_deltas, tail);
    if (r < 0)
        return -ENOMEM;
    a->st_returned = r ? stmt++ : -1;
    r = apply_upsert_players(sql, a, sets_score, " ON DUPLICATE KEY UPDATE score = VALUES(score)");
    if (r < 0)
        return -ENOMEM;
    stmt += r > 0;
    a->st_moved = stmt;
    upsert_offsets_from_marks(sql, a);
    sk_buf_puts(sql, ";\nCOMMIT");
    return sk_buf_failed(sql) ? -ENOMEM : 0;
}

/* Committed already: every event's running total follows from the new
 * score the upsert returned, less the sum of the deltas; or, with a set,
 * from the old score read (still 0 from sk_apply_first when not read or no
 * row: the set decides then). */
int apply_one_trip_scores(struct sk_apply *a, char *err, size_t errlen)
{
    for (unsigned k = 0; k < a->nplayers; k++) {
        struct player *p = &a->players[k];
        if (p->set)
            continue;
        if (!p->got || __builtin_sub_overflow(p->final, p->acc, &p->score)) {
            snprintf(err, errlen, "the score upsert of game %lld returned no new score for a "
                     "player", (long long)p->game);
            return -EPROTO;
        }
    }
    return 0;
}

bool sk_apply_one_trip(const struct sk_apply *a) { return a->one_trip; }

int sk_apply_mark_check_stmt(const struct sk_apply *a) { return a->one_trip ? a->st_moved : -1; }
