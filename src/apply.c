/* apply — a transaction's tables and SQL, the read path and the users
 * transaction, see include/apply.h.
 *
 * The read path reads before writing: how far each game was applied and
 * the players' current scores in the first round trip, the events folded
 * here in C, the new scores and offsets written in the second.  The
 * one-round-trip path lives in apply_one_trip.c; the tables and SQL pieces
 * both paths share are declared in apply_int.h. */
#include "apply_int.h"
#include "log.h"

#include "known.h"
#include "part.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

/* A player's key, (game, user), in order: players and their sort keys. */
static int cmp_game_user(int64_t g1, unsigned u1, int64_t g2, unsigned u2)
{
    if (g1 != g2)
        return g1 < g2 ? -1 : 1;
    return (u1 > u2) - (u1 < u2);
}

static int cmp_player(const void *x, const void *y)
{
    const struct player *a = x, *b = y;
    return cmp_game_user(a->game, a->user, b->game, b->user);
}

static int cmp_game(const void *x, const void *y)
{
    const struct game *a = x, *b = y;
    return (a->id > b->id) - (a->id < b->id);
}

static int cmp_poff(const void *x, const void *y)
{
    const struct poff *a = x, *b = y;
    if (a->partition != b->partition)
        return a->partition < b->partition ? -1 : 1;
    return (a->game > b->game) - (a->game < b->game);
}

/* The index of the user named name in a->users, -1 when absent. */
long apply_find_user(const struct sk_apply *a, const char *name, size_t len)
{
    size_t lo = 0, hi = a->nusers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_bytes(a->users[mid].name, a->users[mid].len, name, len);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* bsearch over a sorted array with a key of the element type: the index
 * of the element, -1 when absent */
static long find(const void *base, size_t n, size_t size, const void *key,
                 int (*cmp)(const void *, const void *))
{
    const char *p = bsearch(key, base, n, size, cmp);
    return p ? (long)((p - (const char *)base) / (ptrdiff_t)size) : -1;
}

/* Drop each element equal to the one before it; returns the new count. */
static unsigned drop_repeats(void *base, unsigned n, size_t size,
                             int (*cmp)(const void *, const void *))
{
    char *b = base;
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++)
        if (k == 0 || cmp(b + (k - 1) * size, b + i * size) != 0)
            memmove(b + (k++) * size, b + i * size, size);
    return k;
}

/* Sort and drop duplicates; returns the new count.  Runs of equal
 * neighbours go first: a game's events sit together, so its game and
 * offset entries shrink to about one per batch before the sort, which
 * otherwise is a visible part of the daemon's CPU time. */
static unsigned uniq(void *base, unsigned n, size_t size, int (*cmp)(const void *, const void *))
{
    n = drop_repeats(base, n, size, cmp);
    qsort(base, n, size, cmp);
    return drop_repeats(base, n, size, cmp);
}

/* Sort keys for building the tables: an index into a->msgs with what it
 * is sorted by, small enough for qsort to move them itself.  A username's
 * key is its first 8 bytes, big-endian and zero-padded, so that most
 * comparisons of two names are one of two integers. */
struct user_key {
    uint64_t prefix;
    unsigned msg;
};

struct player_key {
    int64_t game;
    unsigned user;
    unsigned msg;
};

static uint64_t name_prefix(const char *s, size_t len)
{
    uint64_t k = 0;
    size_t n = len < 8 ? len : 8;
    for (size_t i = 0; i < 8; i++)
        k = k << 8 | (i < n ? (unsigned char)s[i] : 0u);
    return k;
}

/* Names with equal prefixes: as cmp_bytes, the length alone decides when
 * both fit in the prefix. */
static int cmp_same_prefix(const struct sk_event *e, const struct sk_event *f)
{
    if (e->username_len <= 8 && f->username_len <= 8)
        return (e->username_len > f->username_len) - (e->username_len < f->username_len);
    return cmp_bytes(e->username, e->username_len, f->username, f->username_len);
}

static int cmp_user_key(const void *x, const void *y, void *ctx)
{
    const struct user_key *p = x, *q = y;
    if (p->prefix != q->prefix)
        return p->prefix < q->prefix ? -1 : 1;
    const struct sk_apply *a = ctx;
    return cmp_same_prefix(&a->msgs[p->msg]->ev, &a->msgs[q->msg]->ev);
}

static int cmp_player_key(const void *x, const void *y)
{
    const struct player_key *p = x, *q = y;
    return cmp_game_user(p->game, p->user, q->game, q->user);
}

/* users (unique, in byte order of the names) and muser. */
static void build_users(struct sk_apply *a, struct user_key *k)
{
    for (unsigned i = 0; i < a->n; i++)
        k[i] = (struct user_key){name_prefix(a->msgs[i]->ev.username, a->msgs[i]->ev.username_len), i};
    qsort_r(k, a->n, sizeof *k, cmp_user_key, a);
    a->nusers = 0;
    for (unsigned j = 0; j < a->n; j++) {
        const struct sk_event *ev = &a->msgs[k[j].msg]->ev;
        if (!j || k[j].prefix != k[j - 1].prefix ||
            cmp_same_prefix(ev, &a->msgs[k[j - 1].msg]->ev) != 0)
            a->users[a->nusers++] = (struct user){.name = ev->username, .len = ev->username_len};
        a->muser[k[j].msg] = a->nusers - 1;
    }
}

/* players (unique (game, user), in that order) and mplayer; after users. */
static void build_players(struct sk_apply *a, struct player_key *k)
{
    for (unsigned i = 0; i < a->n; i++)
        k[i] = (struct player_key){a->msgs[i]->ev.game_id, a->muser[i], i};
    qsort(k, a->n, sizeof *k, cmp_player_key);
    a->nplayers = 0;
    for (unsigned j = 0; j < a->n; j++) {
        if (!j || cmp_player_key(&k[j], &k[j - 1]) != 0)
            a->players[a->nplayers++] = (struct player){.game = k[j].game, .user = k[j].user};
        a->mplayer[k[j].msg] = a->nplayers - 1;
    }
}

struct sk_apply *sk_apply_new(struct sk_batch *const *bs, unsigned nb)
{
    struct sk_apply *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    for (unsigned k = 0; k < nb; k++)
        a->n += bs[k]->n;
    a->kind = bs[0]->head->ev.kind;
    a->topic = bs[0]->head->part->topic;
    a->shared = nb > 1;
    size_t n = a->n;
    a->msgs = malloc(n * sizeof *a->msgs);
    a->users = malloc(n * sizeof *a->users);
    a->players = malloc(n * sizeof *a->players);
    a->offs = malloc(n * sizeof *a->offs);
    a->games = malloc(n * sizeof *a->games);
    a->mplayer = malloc(n * sizeof *a->mplayer);
    a->muser = malloc(n * sizeof *a->muser);
    a->moff = malloc(n * sizeof *a->moff);
    a->by_uid = malloc(n * sizeof *a->by_uid);
    a->mgen = malloc(n * sizeof *a->mgen);
    void *keys = malloc(n * (sizeof(struct user_key) > sizeof(struct player_key)
                                 ? sizeof(struct user_key) : sizeof(struct player_key)));
    if (!a->msgs || !a->users || !a->players || !a->offs || !a->games || !a->mplayer || !a->muser ||
        !a->moff || !a->by_uid || !a->mgen || !keys) {
        free(keys);
        sk_apply_free(a);
        return NULL;
    }
    unsigned i = 0;
    for (unsigned k = 0; k < nb; k++)
        for (struct sk_msg *m = bs[k]->head; m; m = m->next) {
            a->has_del |= m->ev.del;
            a->msgs[i++] = m;
        }
    for (i = 0; i < a->n; i++)
        a->games[i] = (struct game){.id = a->msgs[i]->ev.game_id};
    a->ngames = uniq(a->games, a->n, sizeof *a->games, cmp_game);
    /* In partition order: the last name wins.  A game's events sit
     * together (a batch is one game's), so the lookup is made once a run. */
    long g = -1;
    for (i = 0; i < a->n; i++) {
        const struct sk_event *ev = &a->msgs[i]->ev;
        if (g < 0 || a->games[g].id != ev->game_id) {
            struct game k = {.id = ev->game_id};
            g = find(a->games, a->ngames, sizeof *a->games, &k, cmp_game);
        }
        if (g >= 0 && ev->game_name_len)
            a->games[g].named = ev;
    }
    /* Users in byte order of their names: the order in which every
     * transaction takes locks on users rows. */
    build_users(a, keys);
    for (i = 0; i < a->n; i++) {
        const struct sk_msg *m = a->msgs[i];
        /* user events are fenced per (partition, user), see apply_users.c */
        a->offs[i] = (struct poff){.partition = m->part->partition,
                                   .game = a->kind == SK_EV_USER ? a->muser[i] : m->ev.game_id,
                                   .part = m->part};
    }
    a->noffs = uniq(a->offs, a->n, sizeof *a->offs, cmp_poff);
    long at = -1;
    for (i = 0; i < a->n; i++) {
        const struct sk_msg *m = a->msgs[i];
        struct poff k = {.partition = m->part->partition,
                         .game = a->kind == SK_EV_USER ? a->muser[i] : m->ev.game_id};
        if (at < 0 || cmp_poff(&a->offs[at], &k) != 0)
            at = find(a->offs, a->noffs, sizeof *a->offs, &k, cmp_poff);
        a->moff[i] = (unsigned)at;
    }
    for (unsigned k = 0; k < a->noffs; k++) {
        a->offs[k].batch_max = -1;
        a->offs[k].batch_min = INT64_MAX;
    }
    for (i = 0; i < a->n; i++) {
        struct poff *o = &a->offs[a->moff[i]];
        /* One copy of each offset, in order: a copy consumed again after a
         * revocation must never share a transaction with the old one. */
        if (a->msgs[i]->offset <= o->batch_max) {
            char what[96];
            const struct user *u = a->kind == SK_EV_USER ? &a->users[o->game] : NULL;
            if (u)
                snprintf(what, sizeof what, "user \"%.*s\"", (int)(u->len > 64 ? 64 : u->len), u->name);
            else
                snprintf(what, sizeof what, "game %lld", (long long)o->game);
            log_error("transaction: offset %lld of %s [%d] for %s follows %lld: the events "
                      "of a partition and %s must arrive in order, once",
                      (long long)a->msgs[i]->offset, a->topic, (int)o->partition, what,
                      (long long)o->batch_max, a->kind == SK_EV_USER ? "user" : "game");
            abort();
        }
        o->batch_max = a->msgs[i]->offset;
        if (a->msgs[i]->offset < o->batch_min)
            o->batch_min = a->msgs[i]->offset;
    }
    build_players(a, keys);
    free(keys);
    return a;
}

void sk_apply_free(struct sk_apply *a)
{
    if (!a)
        return;
    free(a->msgs);
    free(a->users);
    free(a->players);
    free(a->offs);
    free(a->games);
    free(a->mplayer);
    free(a->muser);
    free(a->moff);
    free(a->by_uid);
    free(a->mgen);
    free(a->gens);
    free(a);
}

/* The usernames, in order, each after sep but the first: "," for an SQL
 * list, "),(" for the rows of a VALUES list. */
void apply_user_list(struct sk_buf *sql, const struct sk_apply *a, const char *sep)
{
    for (unsigned k = 0; k < a->nusers; k++) {
        if (k)
            sk_buf_puts(sql, sep);
        sk_buf_sql_str(sql, a->users[k].name, a->users[k].len);
    }
}

/* Prefix of a lock-taking statement in a shared transaction. */
#define SHORT_WAIT "SET STATEMENT innodb_lock_wait_timeout = 1 FOR "

bool apply_upsert_games(struct sk_buf *sql, const struct sk_apply *a, bool named)
{
    bool any = false;
    for (unsigned k = 0; k < a->ngames; k++) {
        const struct game *g = &a->games[k];
        if ((g->named != NULL) != named)
            continue;
        if (!any)
            sk_buf_puts(sql, a->shared ? ";\n" SHORT_WAIT "INSERT INTO games (id, name) VALUES ("
                                       : ";\nINSERT INTO games (id, name) VALUES (");
        else
            sk_buf_puts(sql, ",(");
        any = true;
        sk_buf_i64(sql, g->id);
        sk_buf_putc(sql, ',');
        if (g->named)
            sk_buf_sql_str(sql, g->named->game_name, g->named->game_name_len);
        else
            sk_buf_printf(sql, "'unnamed game %lld'", (long long)g->id);
        sk_buf_putc(sql, ')');
    }
    if (any)
        sk_buf_puts(sql, named ? " ON DUPLICATE KEY UPDATE name = VALUES(name)"
                               : " ON DUPLICATE KEY UPDATE id = id");
    return any;
}

static int cmp_uid_idx(const void *x, const void *y, void *ctx)
{
    const struct sk_apply *a = ctx;
    int64_t u = a->users[*(const unsigned *)x].uid, v = a->users[*(const unsigned *)y].uid;
    return (u > v) - (u < v);
}

/* Index the users that have an id by it (rows name users by id). */
static void index_uids(struct sk_apply *a)
{
    a->nindexed = 0;
    for (unsigned k = 0; k < a->nusers; k++)
        if (a->users[k].uid > 0)
            a->by_uid[a->nindexed++] = k;
    qsort_r(a->by_uid, a->nindexed, sizeof *a->by_uid, cmp_uid_idx, a);
    a->uids_changed = false;
}

/* The index in a->users of the user with id uid, -1 when absent. */
static long find_uid(const struct sk_apply *a, int64_t uid)
{
    size_t lo = 0, hi = a->nindexed;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t v = a->users[a->by_uid[mid]].uid;
        if (v == uid)
            return (long)a->by_uid[mid];
        if (v < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* game_players rows in key order: (game_id, user_id). */
static int cmp_row(const void *x, const void *y, void *ctx)
{
    const struct sk_apply *a = ctx;
    const struct player *const *p = x, *const *q = y;
    if ((*p)->game != (*q)->game)
        return (*p)->game < (*q)->game ? -1 : 1;
    int64_t u = a->users[(*p)->user].uid, v = a->users[(*q)->user].uid;
    return (u > v) - (u < v);
}

void apply_next_statement(struct sk_buf *sql)
{
    if (sql->len)
        sk_buf_puts(sql, ";\n");
}

void apply_table_row(struct sk_buf *sql, unsigned row)
{
    sk_buf_puts(sql, row == 0 ? "(SELECT " : row == 1 ? " UNION ALL VALUES (" : ",(");
}

long apply_upsert_players(struct sk_buf *sql, const struct sk_apply *a,
                          bool (*pick)(const struct player *), const char *tail)
{
    struct player **rows = malloc((a->nplayers ? a->nplayers : 1) * sizeof *rows);
    if (!rows)
        return -ENOMEM;
    unsigned n = 0;
    for (unsigned k = 0; k < a->nplayers; k++)
        if (pick(&a->players[k]))
            rows[n++] = &a->players[k];
    qsort_r(rows, n, sizeof *rows, cmp_row, (void *)(uintptr_t)a);
    for (unsigned k = 0; k < n; k++) {
        if (!k) {
            apply_next_statement(sql);
            if (a->shared)
                sk_buf_puts(sql, SHORT_WAIT);
            sk_buf_puts(sql, "INSERT INTO game_players (game_id, user_id, score) VALUES (");
        } else {
            sk_buf_puts(sql, ",(");
        }
        sk_buf_i64(sql, rows[k]->game);
        sk_buf_putc(sql, ',');
        sk_buf_i64(sql, a->users[rows[k]->user].uid);
        sk_buf_putc(sql, ',');
        /* the one-round-trip path: the sum of the deltas, or the score the sets make */
        sk_buf_i64(sql, a->one_trip ? rows[k]->acc : rows[k]->score);
        sk_buf_putc(sql, ')');
    }
    free(rows);
    if (n)
        sk_buf_puts(sql, tail);
    return n;
}

void apply_offset_keys(struct sk_buf *sql, const struct sk_apply *a, bool marked)
{
    unsigned n = 0;
    for (unsigned k = 0; k < a->noffs; k++) {
        if (marked && a->offs[k].next <= 0)
            continue;
        sk_buf_printf(sql, "%s(%d,", n++ ? "," : "", (int)a->offs[k].partition);
        sk_buf_i64(sql, a->offs[k].game);
        if (marked) {
            sk_buf_putc(sql, ',');
            sk_buf_i64(sql, a->offs[k].next);
        }
        sk_buf_putc(sql, ')');
    }
}

void apply_offset_values(struct sk_buf *sql, const struct sk_apply *a)
{
    apply_next_statement(sql);
    for (unsigned k = 0; k < a->noffs; k++) {
        sk_buf_puts(sql, k ? ",(" : "INSERT INTO game_offsets (topic, `partition`, game_id, next_offset) VALUES (");
        sk_buf_sql_str(sql, a->topic, strlen(a->topic));
        sk_buf_printf(sql, ",%d,", (int)a->offs[k].partition);
        sk_buf_i64(sql, a->offs[k].game);
        sk_buf_putc(sql, ',');
        sk_buf_i64(sql, a->offs[k].batch_max + 1);
        sk_buf_putc(sql, ')');
    }
}

/* Point lookups of the scores of the players pick() chooses (users with
 * an id); returns whether any was asked for. */
bool apply_select_scores(struct sk_buf *sql, const struct sk_apply *a,
                         bool (*pick)(const struct sk_apply *, const struct player *))
{
    bool any = false;
    for (unsigned k = 0; k < a->nplayers; k++) {
        if (!pick(a, &a->players[k]))
            continue;
        sk_buf_puts(sql, any ? ",("
                             : ";\n" IN_AS_TABLE "SELECT game_id, user_id, score FROM game_players "
                               "WHERE (game_id, user_id) IN ((");
        any = true;
        sk_buf_i64(sql, a->players[k].game);
        sk_buf_putc(sql, ',');
        sk_buf_i64(sql, a->users[a->players[k].user].uid);
        sk_buf_putc(sql, ')');
    }
    if (any)
        sk_buf_putc(sql, ')');
    return any;
}

void apply_unknown_user_list(struct sk_buf *sql, const struct sk_apply *a)
{
    bool any = false;
    for (unsigned k = 0; k < a->nusers; k++) {
        if (a->users[k].uid > 0)
            continue;
        if (any)
            sk_buf_putc(sql, ',');
        any = true;
        sk_buf_sql_str(sql, a->users[k].name, a->users[k].len);
    }
}

static bool known_user_player(const struct sk_apply *a, const struct player *p)
{
    return a->users[p->user].cached;
}

/* A user's last event in one (partition, game): the one its mark decides. */
struct upos {
    unsigned user, off;
    int64_t offset;
};

static int cmp_upos(const void *x, const void *y)
{
    const struct upos *p = x, *q = y;
    if (p->user != q->user)
        return p->user < q->user ? -1 : 1;
    if (p->off != q->off)
        return p->off < q->off ? -1 : 1;
    return (p->offset > q->offset) - (p->offset < q->offset);
}

/* INSERT IGNORE of the users the caller's map does not know, in byte
 * order of their names, each only when one of its events may apply (lies
 * at or above its game's mark; no mark: it may): a score event below the
 * mark is a duplicate, and must not bring back a user that a tombstone
 * deleted since.  The marks only move forward, so what this read, before
 * the transaction, still holds in it.
 *
 * One statement: a table of (user, partition, game, offset), a row per
 * user and game, joined once to game_offsets on its key; a user named in
 * two games may be selected twice, and IGNORE makes the second a no-op.  A
 * SELECT per user with its own subquery cost the server a query block to
 * optimise per user, more than the rest of the transaction.  Returns
 * whether it wrote the statement, -ENOMEM. */
static int create_users(struct sk_buf *sql, const struct sk_apply *a)
{
    if (a->ncached == a->nusers)
        return 0;
    struct upos *pos = malloc(a->n * sizeof *pos);
    if (!pos)
        return -ENOMEM;
    unsigned n = 0;
    for (unsigned i = 0; i < a->n; i++)
        if (!a->users[a->muser[i]].cached)
            pos[n++] = (struct upos){a->muser[i], a->moff[i], a->msgs[i]->offset};
    qsort(pos, n, sizeof *pos, cmp_upos);
    unsigned rows = 0;
    for (unsigned i = 0; i < n; i++) {
        if (i + 1 < n && pos[i + 1].user == pos[i].user && pos[i + 1].off == pos[i].off)
            continue; /* the last of them decides */
        const struct poff *o = &a->offs[pos[i].off];
        const struct user *u = &a->users[pos[i].user];
        if (rows == 0)
            sk_buf_puts(sql, "INSERT IGNORE INTO users (username) SELECT v.u FROM ");
        apply_table_row(sql, rows);
        sk_buf_sql_str(sql, u->name, u->len);
        sk_buf_puts(sql, rows ? "," : " AS u, ");
        sk_buf_i64(sql, o->partition);
        sk_buf_puts(sql, rows ? "," : " AS p, ");
        sk_buf_i64(sql, o->game);
        sk_buf_puts(sql, rows ? "," : " AS g, ");
        sk_buf_i64(sql, pos[i].offset);
        sk_buf_puts(sql, rows ? ")" : " AS o");
        rows++;
    }
    free(pos);
    sk_buf_puts(sql, ") AS v LEFT JOIN game_offsets m ON m.topic = ");
    sk_buf_sql_str(sql, a->topic, strlen(a->topic));
    sk_buf_puts(sql, " AND m.`partition` = v.p AND m.game_id = v.g AND m.next_offset > v.o"
                     " WHERE m.game_id IS NULL");
    return 1;
}

/* The first round trip of a score transaction: create the users the
 * caller's map does not know, then either the whole one-round-trip path or
 * the read path's reads. */
/* The read path's first round trip: create the users not cached, then
 * read how far each game was applied and the players' scores. */
static int read_path_first(struct sk_apply *a, struct sk_buf *sql)
{
    int stmt = create_users(sql, a);
    if (stmt < 0)
        return -ENOMEM;
    for (unsigned k = 0; k < a->noffs; k++)
        a->offs[k].next = -1;
    apply_next_statement(sql);
    sk_buf_puts(sql, "START TRANSACTION");
    stmt++;
    stmt += apply_upsert_games(sql, a, true);
    stmt += apply_upsert_games(sql, a, false);
    /* how far each game was applied, per partition: point lookups on the
     * primary key (topic, partition, game_id) */
    sk_buf_puts(sql, ";\n" IN_AS_TABLE "SELECT `partition`, game_id, next_offset FROM game_offsets "
                     "WHERE topic = ");
    sk_buf_sql_str(sql, a->topic, strlen(a->topic));
    sk_buf_puts(sql, " AND (`partition`, game_id) IN (");
    apply_offset_keys(sql, a, false);
    sk_buf_puts(sql, ")");
    a->st_offsets = stmt++;
    /* scores of known users: point lookups on (game_id, user_id) */
    a->st_known = apply_select_scores(sql, a, known_user_player) ? stmt++ : -1;
    /* the other users: ids, and current scores where a row exists */
    a->st_unknown = -1;
    if (a->ncached < a->nusers) {
        sk_buf_puts(sql, ";\nSELECT u.id, u.username, gp.game_id, gp.score FROM users u LEFT JOIN "
                         "game_players gp ON gp.user_id = u.id AND gp.game_id IN (");
        for (unsigned k = 0; k < a->ngames; k++) {
            if (k)
                sk_buf_putc(sql, ',');
            sk_buf_i64(sql, a->games[k].id);
        }
        sk_buf_puts(sql, ") WHERE u.username IN (");
        apply_unknown_user_list(sql, a);
        sk_buf_puts(sql, ")");
        a->st_unknown = stmt++;
    }
    return sk_buf_failed(sql) ? -ENOMEM : 0;
}

/* The users whose id is known are cached from now on (read, or from the
 * caller's map). */
static void cache_ids(struct sk_apply *a)
{
    a->ncached = 0;
    for (unsigned k = 0; k < a->nusers; k++) {
        struct user *u = &a->users[k];
        u->cached = u->uid > 0;
        a->ncached += u->cached;
    }
}

/* The first round trip of a score transaction: the read path's, or the
 * one-round-trip path's, which users new to the caller's map precede. */
static int first_score(struct sk_apply *a, struct sk_buf *sql, struct sk_known *known)
{
    for (unsigned k = 0; k < a->nusers; k++)
        a->users[k].uid = known ? sk_known_id(known, a->users[k].name, a->users[k].len) : 0;
    cache_ids(a);
    index_uids(a);
    a->st_returned = a->st_moved = -1;
    a->one_trip = apply_one_trip_ok(a);
    a->pre_users = a->one_trip && a->ncached < a->nusers;
    if (!a->one_trip)
        return read_path_first(a, sql);
    if (!a->pre_users)
        return apply_one_trip_first(a, sql);
    /* Users new to the map are made, and their ids read, in a round trip
     * of their own ahead of the transaction, so that its upserts name
     * every player by id: finding the ids by name inside it (a table
     * joined to users per upsert) cost the server more than this round
     * trip. */
    if (create_users(sql, a) < 0)
        return -ENOMEM;
    sk_buf_puts(sql, ";\nSELECT id, username FROM users WHERE username IN (");
    apply_unknown_user_list(sql, a);
    sk_buf_putc(sql, ')');
    a->st_unknown = 1;
    a->st_known = a->st_offsets = -1;
    return sk_buf_failed(sql) ? -ENOMEM : 0;
}

int sk_apply_first(struct sk_apply *a, struct sk_buf *sql, struct sk_known *known)
{
    for (unsigned k = 0; k < a->nusers; k++) {
        a->users[k].uid = 0;
        a->users[k].cached = false;
    }
    for (unsigned k = 0; k < a->nplayers; k++) {
        a->players[k].score = 0;
        a->players[k].touched = false;
    }
    for (unsigned k = 0; k < a->noffs; k++)
        a->offs[k].next = -1;
    sk_buf_reset(sql);
    return a->kind == SK_EV_SCORE ? first_score(a, sql, known) : apply_users_first(a, sql);
}

long apply_find_off(const struct sk_apply *a, int32_t partition, int64_t game)
{
    struct poff k = {.partition = partition, .game = game};
    return find(a->offs, a->noffs, sizeof *a->offs, &k, cmp_poff);
}

/* Parsed by hand (one or two numbers per event of a transaction): no
 * strtoll with its locale and copy, no division per digit. */
bool apply_parse_i64(const char *s, unsigned long len, int64_t *out)
{
    if (!s || len == 0 || len > 20)
        return false;
    bool neg = s[0] == '-';
    unsigned long i = neg;
    if (i == len || len - i > 19) /* 19 digits cannot overflow 64 bits */
        return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9)
            return false;
        v = v * 10 + d;
    }
    if (v > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

void sk_apply_row(struct sk_apply *a, unsigned stmt, char **row, unsigned long *lengths,
                  unsigned nfields)
{
    int st = (int)stmt;
    if (a->kind == SK_EV_SCORE && st == a->st_offsets) {
        int64_t part, game, next;
        if (nfields < 3 || !apply_parse_i64(row[0], lengths[0], &part) ||
            !apply_parse_i64(row[1], lengths[1], &game) || !apply_parse_i64(row[2], lengths[2], &next))
            return;
        struct poff k = {.partition = (int32_t)part, .game = game};
        long i = find(a->offs, a->noffs, sizeof *a->offs, &k, cmp_poff);
        if (i >= 0)
            a->offs[i].next = next;
        return;
    }
    if (a->kind == SK_EV_SCORE && (st == a->st_known || st == a->st_returned)) {
        int64_t game, uid, score;
        if (nfields < 3 || !apply_parse_i64(row[0], lengths[0], &game) ||
            !apply_parse_i64(row[1], lengths[1], &uid) || !apply_parse_i64(row[2], lengths[2], &score))
            return;
        if (a->uids_changed)
            index_uids(a);
        long u = find_uid(a, uid);
        struct player k = {.game = game, .user = (unsigned)u};
        long p = u < 0 ? -1 : find(a->players, a->nplayers, sizeof *a->players, &k, cmp_player);
        if (p < 0)
            return;
        if (st == a->st_known) {
            a->players[p].score = score;
        } else {
            a->players[p].final = score;
            a->players[p].got = true;
        }
        return;
    }
    if (a->kind == SK_EV_USER) {
        apply_users_row(a, st, row, lengths, nfields);
        return;
    }
    if (st != a->st_unknown)
        return;
    /* users (id, username), or players of unknown users (id, username,
     * game_id, score) */
    if (nfields < 2 || !row[0] || !row[1])
        return;
    long u = apply_find_user(a, row[1], lengths[1]);
    if (u < 0)
        return;
    if (!apply_parse_i64(row[0], lengths[0], &a->users[u].uid))
        a->users[u].uid = 0;
    a->uids_changed = true;
    if (nfields == 4 && row[2] && row[3]) {
        int64_t game, score;
        if (!apply_parse_i64(row[2], lengths[2], &game) || !apply_parse_i64(row[3], lengths[3], &score))
            return;
        struct player k = {.game = game, .user = (unsigned)u};
        long p = find(a->players, a->nplayers, sizeof *a->players, &k, cmp_player);
        if (p >= 0)
            a->players[p].score = score;
    }
}

/* Every event gets the total right after it; one that would leave BIGINT
 * is rejected alone, the others apply. */
void apply_fold(struct sk_apply *a)
{
    for (unsigned i = 0; i < a->n; i++) {
        struct sk_msg *m = a->msgs[i];
        struct player *p = &a->players[a->mplayer[i]];
        struct poff *o = &a->offs[a->moff[i]];
        if (m->offset < o->next) {
            /* Applied before (a retry after an ambiguous commit, or
             * consumed again after a crash or rebalance): never twice. */
            m->status = SK_ST_DUPLICATE;
            m->score = p->score;
            continue;
        }
        /* The mark moves with each event decided, so that nothing below it
         * is decided twice. */
        o->next = m->offset + 1;
        m->status = SK_ST_APPLIED;
        int64_t sum;
        if (m->ev.op == SK_OP_SET) {
            p->score = m->ev.value;
        } else if (!__builtin_add_overflow(p->score, m->ev.value, &sum)) {
            p->score = sum;
        } else {
            /* the score stays as it was (__builtin_add_overflow would have
             * stored the wrapped sum) */
            char msg[160];
            snprintf(msg, sizeof msg, "adding %lld to the current score %lld leaves the BIGINT range",
                     (long long)m->ev.value, (long long)p->score);
            sk_msg_reject(m, SK_E_SCORE_OVERFLOW, msg);
            continue;
        }
        p->touched = true;
        m->score = p->score;
    }
}

static bool is_touched(const struct player *p) { return p->touched; }

int sk_apply_second(struct sk_apply *a, struct sk_buf *sql, char *err, size_t errlen)
{
    if (a->kind == SK_EV_USER)
        return apply_users_second(a, sql, err, errlen);
    if (a->pre_users) {
        /* The users are made: now the transaction.  A user still without an
         * id (its events below a mark that moved, or deleted right after)
         * leaves the one-round-trip path: the read path decides event by
         * event, as after any doubt. */
        a->pre_users = false;
        cache_ids(a);
        a->one_trip = a->ncached == a->nusers;
        sk_buf_reset(sql);
        if ((a->one_trip ? apply_one_trip_first(a, sql) : read_path_first(a, sql)) < 0) {
            snprintf(err, errlen, "out of memory building SQL");
            return -ENOMEM;
        }
        return 2;
    }
    /* A user not created (every event of it below its mark: duplicates),
     * or deleted right after its creation (then it runs again). */
    for (unsigned i = 0; i < a->n; i++) {
        const struct user *u = &a->users[a->muser[i]];
        if (u->uid <= 0 && a->msgs[i]->offset >= a->offs[a->moff[i]].next) {
            snprintf(err, errlen, "user \"%.64s\" was not found right after it was created",
                     u->name);
            return -EPROTO;
        }
    }
    if (a->one_trip) {
        int r = apply_one_trip_scores(a, err, errlen);
        if (r < 0)
            return r;
        apply_fold(a);
        return 0;
    }
    apply_fold(a);
    sk_buf_reset(sql);
    long r = apply_upsert_players(sql, a, is_touched, " ON DUPLICATE KEY UPDATE score = VALUES(score)");
    /* In the same transaction as the rows they describe; the rows were
     * read (and locked) first, so the offsets only move forward. */
    apply_offset_values(sql, a);
    sk_buf_puts(sql, " ON DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset, VALUES(next_offset))");
    sk_buf_puts(sql, ";\nCOMMIT");
    if (r < 0 || sk_buf_failed(sql)) {
        snprintf(err, errlen, "out of memory building SQL");
        return -ENOMEM;
    }
    return 1;
}

void sk_apply_users(const struct sk_apply *a,
                    void (*each)(void *ud, const char *name, size_t len, int64_t id), void *ud)
{
    for (unsigned k = 0; k < a->nusers; k++)
        each(ud, a->users[k].name, a->users[k].len, a->users[k].uid);
}

void sk_apply_outcome(struct sk_apply *a)
{
    for (unsigned i = 0; i < a->n; i++) {
        struct sk_msg *m = a->msgs[i];
        m->user_id = a->kind == SK_EV_USER ? apply_users_id(a, i) : a->users[a->muser[i]].uid;
    }
}

unsigned sk_apply_deleted(const struct sk_apply *a)
{
    return a->kind == SK_EV_USER ? apply_users_deleted(a) : 0;
}

void sk_apply_marks(const struct sk_apply *a,
                    void (*each)(void *ud, struct sk_part *part, int64_t game, int64_t next), void *ud)
{
    if (a->kind != SK_EV_SCORE)
        return;
    for (unsigned k = 0; k < a->noffs; k++) {
        const struct poff *o = &a->offs[k];
        each(ud, o->part, o->game, o->next > o->batch_max ? o->next : o->batch_max + 1);
    }
}
