/* apply — SQL of a batch and the fold of its events, see include/apply.h. */
#include "apply.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct player {
    const char *name;
    size_t len;
    int64_t uid;      /* 0 until read back */
    int64_t score;    /* running total during the fold */
    bool has_row;     /* a game_players row existed before the batch */
    bool touched;     /* at least one event of this batch applies to it */
    int nick_last;    /* user batch: index of the last msg setting the nickname, -1 none */
};

/* The applied position of this batch's game in one input partition. */
struct poff {
    int32_t partition;
    int64_t next;      /* first offset not applied yet, as read (-1: none) */
    int64_t batch_max; /* highest offset of the batch in this partition */
};

struct sk_apply {
    struct sk_batch *b;
    enum sk_event_kind kind;
    const char *topic;    /* input topic of the batch (score batches: one) */
    struct poff *offs;    /* one per partition present in the batch */
    unsigned noffs;
    struct sk_msg **msgs; /* batch order */
    unsigned *pidx;       /* msgs[i] belongs to players[pidx[i]] */
    struct player *players; /* sorted by username bytes */
    unsigned np;
    bool folded;
};

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

static int cmp_player(const void *x, const void *y)
{
    const struct player *a = x, *b = y;
    return cmp_bytes(a->name, a->len, b->name, b->len);
}

static long find_player(const struct sk_apply *a, const char *name, size_t len)
{
    size_t lo = 0, hi = a->np;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_bytes(a->players[mid].name, a->players[mid].len, name, len);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

struct sk_apply *sk_apply_new(struct sk_batch *b)
{
    struct sk_apply *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->b = b;
    a->kind = b->head->ev.kind;
    a->topic = b->head->part->topic;
    a->msgs = malloc(b->n * sizeof *a->msgs);
    a->pidx = malloc(b->n * sizeof *a->pidx);
    a->players = malloc(b->n * sizeof *a->players);
    a->offs = calloc(b->n, sizeof *a->offs);
    if (!a->msgs || !a->pidx || !a->players || !a->offs) {
        sk_apply_free(a);
        return NULL;
    }
    unsigned i = 0;
    for (struct sk_msg *m = b->head; m && i < b->n; m = m->next, i++) {
        a->msgs[i] = m;
        a->players[i] = (struct player){.name = m->ev.username, .len = m->ev.username_len};
        struct poff *o = NULL;
        for (unsigned k = 0; k < a->noffs && !o; k++)
            if (a->offs[k].partition == m->part->partition)
                o = &a->offs[k];
        if (!o) {
            o = &a->offs[a->noffs++];
            o->partition = m->part->partition;
        }
        if (m->offset > o->batch_max)
            o->batch_max = m->offset;
    }
    /* Unique players in byte order of their names: the order every lock
     * on users is taken in, by every batch, so that batches cannot wait on
     * each other in a cycle. */
    qsort(a->players, b->n, sizeof *a->players, cmp_player);
    unsigned np = 0;
    for (unsigned k = 0; k < b->n; k++)
        if (np == 0 || cmp_player(&a->players[np - 1], &a->players[k]) != 0)
            a->players[np++] = a->players[k];
    a->np = np;
    for (unsigned k = 0; k < b->n; k++)
        a->pidx[k] = (unsigned)find_player(a, a->msgs[k]->ev.username, a->msgs[k]->ev.username_len);
    return a;
}

void sk_apply_free(struct sk_apply *a)
{
    if (!a)
        return;
    free(a->msgs);
    free(a->pidx);
    free(a->players);
    free(a->offs);
    free(a);
}

static void name_list(struct sk_buf *sql, const struct sk_apply *a)
{
    for (unsigned k = 0; k < a->np; k++) {
        if (k)
            sk_buf_putc(sql, ',');
        sk_buf_sql_str(sql, a->players[k].name, a->players[k].len);
    }
}

static int first_score(struct sk_apply *a, struct sk_buf *sql)
{
    int64_t game = a->b->key;
    /* Missing users are created by a statement of their own, before the
     * transaction (autocommit): its locks last only as long as it runs, so
     * batches of different games sharing players never hold locks on the
     * same users rows while they wait on each other. */
    sk_buf_puts(sql, "INSERT IGNORE INTO users (username) VALUES ");
    for (unsigned k = 0; k < a->np; k++) {
        sk_buf_puts(sql, k ? ",(" : "(");
        sk_buf_sql_str(sql, a->players[k].name, a->players[k].len);
        sk_buf_putc(sql, ')');
    }
    /* The upsert of the game row takes its exclusive lock first in the
     * transaction: that lock is the per-game mutex every writer of the
     * game's rows goes through, so the scores read below cannot change
     * before this transaction commits.  The last game_name of the batch
     * wins; without one the game is created with a name that says so, and
     * an existing name is kept. */
    const struct sk_event *named = NULL;
    for (unsigned i = 0; i < a->b->n; i++)
        if (a->msgs[i]->ev.game_name_len)
            named = &a->msgs[i]->ev;
    sk_buf_puts(sql, ";\nSTART TRANSACTION;\nINSERT INTO games (id, name) VALUES (");
    sk_buf_i64(sql, game);
    sk_buf_putc(sql, ',');
    if (named) {
        sk_buf_sql_str(sql, named->game_name, named->game_name_len);
        sk_buf_puts(sql, ") ON DUPLICATE KEY UPDATE name = VALUES(name)");
    } else {
        sk_buf_printf(sql, "'unnamed game %lld') ON DUPLICATE KEY UPDATE id = id", (long long)game);
    }
    /* statement 3: how far this game has been applied, per partition */
    sk_buf_puts(sql, ";\nSELECT `partition`, next_offset FROM game_offsets WHERE topic = ");
    sk_buf_sql_str(sql, a->topic, strlen(a->topic));
    sk_buf_puts(sql, " AND game_id = ");
    sk_buf_i64(sql, game);
    /* statement 4: the players */
    sk_buf_puts(sql, ";\nSELECT u.id, u.username, gp.score FROM users u LEFT JOIN game_players gp"
                     " ON gp.game_id = ");
    sk_buf_i64(sql, game);
    sk_buf_puts(sql, " AND gp.user_id = u.id WHERE u.username IN (");
    name_list(sql, a);
    sk_buf_puts(sql, ")");
    return sk_buf_failed(sql) ? -ENOMEM : 0;
}

static int first_user(struct sk_apply *a, struct sk_buf *sql)
{
    /* Fold: the last event that names a nickname (or null) decides it. */
    for (unsigned k = 0; k < a->np; k++)
        a->players[k].nick_last = -1;
    for (unsigned i = 0; i < a->b->n; i++)
        if (a->msgs[i]->ev.nick != SK_NICK_ABSENT)
            a->players[a->pidx[i]].nick_last = (int)i;
    sk_buf_puts(sql, "START TRANSACTION");
    bool any = false;
    for (unsigned k = 0; k < a->np; k++) {
        const struct player *p = &a->players[k];
        if (p->nick_last < 0)
            continue;
        const struct sk_event *ev = &a->msgs[p->nick_last]->ev;
        sk_buf_puts(sql, any ? ",(" : ";\nINSERT INTO users (username, nickname) VALUES (");
        any = true;
        sk_buf_sql_str(sql, p->name, p->len);
        sk_buf_putc(sql, ',');
        if (ev->nick == SK_NICK_SET)
            sk_buf_sql_str(sql, ev->nickname, ev->nickname_len);
        else
            sk_buf_puts(sql, "NULL");
        sk_buf_putc(sql, ')');
    }
    if (any)
        sk_buf_puts(sql, " ON DUPLICATE KEY UPDATE nickname = VALUES(nickname)");
    any = false;
    for (unsigned k = 0; k < a->np; k++) {
        const struct player *p = &a->players[k];
        if (p->nick_last >= 0)
            continue;
        sk_buf_puts(sql, any ? ",(" : ";\nINSERT IGNORE INTO users (username) VALUES (");
        any = true;
        sk_buf_sql_str(sql, p->name, p->len);
        sk_buf_putc(sql, ')');
    }
    sk_buf_puts(sql, ";\nSELECT id, username FROM users WHERE username IN (");
    name_list(sql, a);
    sk_buf_puts(sql, ");\nCOMMIT");
    return sk_buf_failed(sql) ? -ENOMEM : 0;
}

int sk_apply_first(struct sk_apply *a, struct sk_buf *sql)
{
    for (unsigned k = 0; k < a->noffs; k++)
        a->offs[k].next = -1;
    for (unsigned k = 0; k < a->np; k++) {
        a->players[k].uid = 0;
        a->players[k].score = 0;
        a->players[k].has_row = false;
        a->players[k].touched = false;
    }
    a->folded = false;
    sk_buf_reset(sql);
    return a->kind == SK_EV_SCORE ? first_score(a, sql) : first_user(a, sql);
}

static bool parse_i64(const char *s, unsigned long len, int64_t *out)
{
    if (!s || len == 0 || len > 20)
        return false;
    char tmp[24];
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* Statement numbers of the first round trip of a score batch. */
enum { STMT_OFFSETS = 3, STMT_PLAYERS = 4 };

static void offset_row(struct sk_apply *a, char **row, unsigned long *lengths)
{
    int64_t part, next;
    if (!parse_i64(row[0], lengths[0], &part) || !parse_i64(row[1], lengths[1], &next))
        return;
    for (unsigned k = 0; k < a->noffs; k++)
        if (a->offs[k].partition == part)
            a->offs[k].next = next;
}

void sk_apply_row(struct sk_apply *a, unsigned stmt, char **row, unsigned long *lengths,
                  unsigned nfields)
{
    if (nfields < 2 || !row[0] || !row[1])
        return;
    if (a->kind == SK_EV_SCORE && stmt == STMT_OFFSETS) {
        offset_row(a, row, lengths);
        return;
    }
    if (a->kind == SK_EV_SCORE && stmt != STMT_PLAYERS)
        return;
    long k = find_player(a, row[1], lengths[1]);
    if (k < 0)
        return;
    struct player *p = &a->players[k];
    if (!parse_i64(row[0], lengths[0], &p->uid))
        p->uid = 0;
    if (nfields >= 3 && row[2]) {
        p->has_row = parse_i64(row[2], lengths[2], &p->score);
        if (!p->has_row)
            p->score = 0;
    }
}

static int64_t next_offset(const struct sk_apply *a, int32_t partition)
{
    for (unsigned k = 0; k < a->noffs; k++)
        if (a->offs[k].partition == partition)
            return a->offs[k].next;
    return -1;
}

static int cmp_uid(const void *x, const void *y)
{
    const struct player *const *a = x, *const *b = y;
    return ((*a)->uid > (*b)->uid) - ((*a)->uid < (*b)->uid);
}

int sk_apply_second(struct sk_apply *a, struct sk_buf *sql, char *err, size_t errlen)
{
    for (unsigned k = 0; k < a->np; k++) {
        if (a->players[k].uid <= 0) {
            snprintf(err, errlen, "user \"%.64s\" was not found right after it was created",
                     a->players[k].name);
            return -1;
        }
    }
    if (a->kind != SK_EV_SCORE)
        return 0;
    /* Fold in partition order: every event gets the total right after it;
     * one that would leave BIGINT is rejected alone, the others apply. */
    for (unsigned i = 0; i < a->b->n; i++) {
        struct sk_msg *m = a->msgs[i];
        struct player *p = &a->players[a->pidx[i]];
        if (m->offset < next_offset(a, m->part->partition)) {
            /* Applied before (a retry after an ambiguous commit, or
             * consumed again after a crash or rebalance): never twice. */
            m->status = SK_ST_DUPLICATE;
            m->score = p->score;
            continue;
        }
        m->status = SK_ST_APPLIED;
        int64_t sum;
        if (m->ev.op == SK_OP_SET) {
            p->score = m->ev.value;
        } else if (!__builtin_add_overflow(p->score, m->ev.value, &sum)) {
            p->score = sum;
        } else {
            /* the score stays as it was: __builtin_add_overflow would have
             * stored the wrapped sum */
            char msg[160];
            snprintf(msg, sizeof msg, "adding %lld to the current score %lld leaves the BIGINT range",
                     (long long)m->ev.value, (long long)p->score);
            sk_msg_reject(m, SK_E_SCORE_OVERFLOW, msg);
            continue;
        }
        p->touched = true;
        m->score = p->score;
    }
    a->folded = true;
    sk_buf_reset(sql);
    struct player **order = malloc(a->np * sizeof *order);
    if (!order)
        return -1;
    unsigned n = 0;
    for (unsigned k = 0; k < a->np; k++)
        if (a->players[k].touched)
            order[n++] = &a->players[k];
    /* Rows in key order (game_id, user_id): two writers of overlapping rows
     * then take their locks in the same order. */
    qsort(order, n, sizeof *order, cmp_uid);
    for (unsigned k = 0; k < n; k++) {
        sk_buf_puts(sql, k ? ",(" : "INSERT INTO game_players (game_id, user_id, score) VALUES (");
        sk_buf_i64(sql, a->b->key);
        sk_buf_putc(sql, ',');
        sk_buf_i64(sql, order[k]->uid);
        sk_buf_putc(sql, ',');
        sk_buf_i64(sql, order[k]->score);
        sk_buf_putc(sql, ')');
    }
    free(order);
    if (n)
        sk_buf_puts(sql, " ON DUPLICATE KEY UPDATE score = VALUES(score);\n");
    /* The mark moves in the same transaction as the rows it describes. */
    for (unsigned k = 0; k < a->noffs; k++) {
        sk_buf_puts(sql, k ? ",(" : "INSERT INTO game_offsets (topic, `partition`, game_id, next_offset) VALUES (");
        sk_buf_sql_str(sql, a->topic, strlen(a->topic));
        sk_buf_printf(sql, ",%d,", (int)a->offs[k].partition);
        sk_buf_i64(sql, a->b->key);
        sk_buf_putc(sql, ',');
        sk_buf_i64(sql, a->offs[k].batch_max + 1);
        sk_buf_putc(sql, ')');
    }
    sk_buf_puts(sql, " ON DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset, VALUES(next_offset));\n"
                     "COMMIT");
    if (sk_buf_failed(sql)) {
        snprintf(err, errlen, "out of memory building SQL");
        return -1;
    }
    return 1;
}

void sk_apply_outcome(struct sk_apply *a)
{
    for (unsigned i = 0; i < a->b->n; i++) {
        struct sk_msg *m = a->msgs[i];
        m->user_id = a->players[a->pidx[i]].uid;
        if (a->kind == SK_EV_USER)
            m->status = SK_ST_APPLIED;
    }
}
