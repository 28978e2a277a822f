/* apply_users — the users transaction, see include/apply.h.
 *
 * User events are fenced by user_offsets, the next offset applied per
 * (topic, partition, username), as score events are by game_offsets.  Every
 * users transaction first locks the marks of its (partition, user) pairs,
 * in key order, creating the missing ones at 0: a mark row exists whether
 * or not the user does (a user deleted, or never created), so it is the
 * user's mutex, and every decision below is made against marks no other
 * users transaction can move until this one ends.  Nothing is written for
 * an event below its mark: such an event is a duplicate, and must not
 * create a user that a later event deleted.
 *
 * A batch without tombstones takes one round trip, each write decided in
 * SQL against the marks (a table of its rows joined to the marks, keeping
 * the rows with no mark above their event).  A
 * batch with a tombstone takes two: the marks and the users' rows (locked)
 * are read first, the events folded here in C in transaction order, and the
 * rows deleted, created and renamed in the second round trip, which also
 * moves the marks and commits.  A user's row is deleted with its
 * game_players rows, those first (the foreign key), after the users row
 * was locked: a score transaction adding a row for the user waits for that
 * lock in its foreign-key check, and fails (1452) once the user is gone.
 * The lock order is marks, then users rows, then game_players rows; a
 * score transaction holding a game_players row the delete wants while it
 * waits for the users row is a deadlock the server breaks, and the loser
 * runs again (txnpolicy.h). */
#include "apply_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One row a tombstone batch creates for a user: a user who did not exist
 * (or was deleted just before, in the same transaction) and an event at or
 * above the mark that names it. */
struct ugen {
    unsigned user;   /* index into users */
    int nick;        /* the msg whose nickname it gets, -1: none (NULL) */
    bool kept;       /* still there at the end; else deleted by a later tombstone */
    int stmt;        /* not kept: the statement that reads its id */
    int64_t id;
};

/* One row of the table a fenced write selects from: (name[, nickname],
 * partition, offset).  nick: NULL for none, else the msg whose nickname it
 * is. */
static void fence_row(struct sk_buf *sql, const struct sk_apply *a, const struct poff *o,
                      const struct sk_msg *nick, int64_t off, unsigned row)
{
    const struct user *u = &a->users[o->game];
    apply_table_row(sql, row);
    sk_buf_sql_str(sql, u->name, u->len);
    if (row == 0)
        sk_buf_puts(sql, " AS n");
    if (nick) {
        sk_buf_putc(sql, ',');
        if (nick->ev.nick == SK_NICK_SET)
            sk_buf_sql_str(sql, nick->ev.nickname, nick->ev.nickname_len);
        else
            sk_buf_puts(sql, "NULL");
        if (row == 0)
            sk_buf_puts(sql, " AS k");
    }
    sk_buf_puts(sql, row ? "," : ", ");
    sk_buf_i64(sql, o->partition);
    sk_buf_puts(sql, row ? "," : " AS p, ");
    sk_buf_i64(sql, off);
    sk_buf_puts(sql, row ? ")" : " AS o");
}

/* The fence of the rows: only those with no mark above their event.  One
 * join to user_offsets on its key instead of a NOT EXISTS per row, which
 * cost the server a query block to optimise per row. */
static void fence_join(struct sk_buf *sql, const struct sk_apply *a)
{
    sk_buf_puts(sql, ") AS v LEFT JOIN user_offsets m ON m.topic = ");
    sk_buf_sql_str(sql, a->topic, strlen(a->topic));
    sk_buf_puts(sql, " AND m.`partition` = v.p AND m.username = v.n AND m.next_offset > v.o"
                     " WHERE m.username IS NULL");
}

/* INSERT INTO user_offsets of every (partition, user) mark, in key order:
 * at 0 (a mark that does not exist yet, to lock it), or moved past the
 * transaction's last event. */
static void mark_values(struct sk_buf *sql, const struct sk_apply *a, bool moved)
{
    for (unsigned k = 0; k < a->noffs; k++) {
        const struct poff *o = &a->offs[k];
        sk_buf_puts(sql, k ? ",(" : "INSERT INTO user_offsets (topic, `partition`, username, next_offset) VALUES (");
        sk_buf_sql_str(sql, a->topic, strlen(a->topic));
        sk_buf_printf(sql, ",%d,", (int)o->partition);
        sk_buf_sql_str(sql, a->users[o->game].name, a->users[o->game].len);
        sk_buf_putc(sql, ',');
        sk_buf_i64(sql, moved ? o->batch_max + 1 : 0);
        sk_buf_putc(sql, ')');
    }
}

/* START TRANSACTION; lock (creating at 0) and read every (partition, user)
 * mark, in key order: statements 0 to 2. */
static void lock_marks(struct sk_buf *sql, struct sk_apply *a)
{
    sk_buf_puts(sql, "START TRANSACTION;\n");
    mark_values(sql, a, false);
    /* an exclusive lock also on a row that exists */
    sk_buf_puts(sql, " ON DUPLICATE KEY UPDATE next_offset = next_offset;\n" IN_AS_TABLE
                     "SELECT `partition`, username, next_offset FROM user_offsets WHERE topic = ");
    sk_buf_sql_str(sql, a->topic, strlen(a->topic));
    sk_buf_puts(sql, " AND (`partition`, username) IN (");
    for (unsigned k = 0; k < a->noffs; k++) {
        sk_buf_printf(sql, "%s(%d,", k ? "," : "", (int)a->offs[k].partition);
        sk_buf_sql_str(sql, a->users[a->offs[k].game].name, a->users[a->offs[k].game].len);
        sk_buf_putc(sql, ')');
    }
    sk_buf_puts(sql, ")");
    a->st_offsets = 2;
}

/* Move the marks past the transaction's events; read the ids; COMMIT. */
static void move_marks_and_commit(struct sk_buf *sql, struct sk_apply *a, int stmt)
{
    mark_values(sql, a, true);
    sk_buf_puts(sql, " ON DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset, VALUES(next_offset))");
    sk_buf_puts(sql, ";\nSELECT id, username FROM users WHERE username IN (");
    apply_user_list(sql, a, ",");
    sk_buf_puts(sql, ");\nCOMMIT");
    a->st_unknown = stmt + 1;
}

/* (partition, user) pairs in the order their rows are written: by user
 * (byte order of names, the order of users row locks), then by what cmp
 * puts second. */
static int cmp_by_user(const void *x, const void *y, void *ctx)
{
    const struct sk_apply *a = ctx;
    const struct poff *p = &a->offs[*(const unsigned *)x], *q = &a->offs[*(const unsigned *)y];
    if (p->game != q->game)
        return p->game < q->game ? -1 : 1;
    /* a user's nickname candidates in transaction order: of two
     * partitions' candidates the later one written last wins */
    return (p->nick > q->nick) - (p->nick < q->nick);
}

/* The one round trip of a batch without tombstones:
 *   0-2. START TRANSACTION; lock and read the marks (for the outcome: an
 *        event below its mark is a duplicate);
 *   3. create the users whose last event in a partition is at or above its
 *      mark (a user is created by any event of its, but not by a duplicate);
 *      this locks their rows, in byte order of the names;
 *   4. write each nickname only from an event at or above its mark;
 *   5-6. move the marks forward; read the ids; COMMIT.
 * Within a partition the last event naming a nickname decides it: one
 * below the mark means every earlier one is below it too.  A user's events
 * are in one partition unless partitions were added to the topic; then
 * each partition is fenced on its own, and the last candidate written
 * wins. */
static int first_upserts(struct sk_apply *a, struct sk_buf *sql)
{
    for (unsigned k = 0; k < a->noffs; k++)
        a->offs[k].nick = -1;
    for (unsigned i = 0; i < a->n; i++)
        if (a->msgs[i]->ev.nick != SK_NICK_ABSENT)
            a->offs[a->moff[i]].nick = (int)i;
    lock_marks(sql, a);
    int stmt = 2;
    unsigned *ord = malloc(a->noffs * sizeof *ord);
    if (!ord)
        return -ENOMEM;
    for (unsigned k = 0; k < a->noffs; k++)
        ord[k] = k;
    qsort_r(ord, a->noffs, sizeof *ord, cmp_by_user, a);
    sk_buf_puts(sql, ";\nINSERT INTO users (username) SELECT v.n FROM ");
    for (unsigned c = 0; c < a->noffs; c++)
        fence_row(sql, a, &a->offs[ord[c]], NULL, a->offs[ord[c]].batch_max, c);
    fence_join(sql, a);
    sk_buf_puts(sql, " ON DUPLICATE KEY UPDATE id = id");
    stmt++;
    unsigned rows = 0;
    for (unsigned c = 0; c < a->noffs; c++) {
        const struct poff *o = &a->offs[ord[c]];
        if (o->nick < 0)
            continue;
        const struct sk_msg *m = a->msgs[o->nick];
        if (!rows)
            sk_buf_puts(sql, ";\nINSERT INTO users (username, nickname) SELECT v.n, v.k FROM ");
        fence_row(sql, a, o, m, m->offset, rows++);
    }
    free(ord);
    if (rows) {
        fence_join(sql, a);
        sk_buf_puts(sql, " ON DUPLICATE KEY UPDATE nickname = VALUES(nickname)");
        stmt++;
    }
    sk_buf_puts(sql, ";\n");
    move_marks_and_commit(sql, a, stmt + 1);
    return sk_buf_failed(sql) ? -ENOMEM : 0;
}

/* The first round trip of a batch with a tombstone: the marks, and the
 * users' rows as they are, locked (statement 3). */
static int first_deletes(struct sk_apply *a, struct sk_buf *sql)
{
    lock_marks(sql, a);
    sk_buf_puts(sql, ";\nSELECT id, username FROM users WHERE username IN (");
    apply_user_list(sql, a, ",");
    sk_buf_puts(sql, ") FOR UPDATE");
    a->st_old = 3;
    return sk_buf_failed(sql) ? -ENOMEM : 0;
}

int apply_users_first(struct sk_apply *a, struct sk_buf *sql)
{
    a->st_old = -1;
    a->st_unknown = -1;
    free(a->gens);
    a->gens = NULL;
    a->ngens = 0;
    for (unsigned k = 0; k < a->nusers; k++)
        a->users[k].old = 0;
    return a->has_del ? first_deletes(a, sql) : first_upserts(a, sql);
}

void apply_users_row(struct sk_apply *a, int st, char **row, unsigned long *lengths, unsigned nf)
{
    if (nf < 2 || !row[0] || !row[1])
        return;
    if (st == a->st_offsets) {
        /* a user's mark: partition, username, next_offset */
        int64_t part, next;
        if (nf < 3 || !apply_parse_i64(row[0], lengths[0], &part) ||
            !apply_parse_i64(row[2], lengths[2], &next))
            return;
        long u = apply_find_user(a, row[1], lengths[1]);
        long i = u < 0 ? -1 : apply_find_off(a, (int32_t)part, u);
        if (i >= 0)
            a->offs[i].next = next;
        return;
    }
    /* (id, username): the rows before (st_old), a row made and deleted in
     * this transaction, or the rows at the end (st_unknown) */
    long u = apply_find_user(a, row[1], lengths[1]);
    int64_t id;
    if (u < 0 || !apply_parse_i64(row[0], lengths[0], &id))
        return;
    if (st == a->st_old) {
        a->users[u].old = id;
        return;
    }
    if (st == a->st_unknown) {
        a->users[u].uid = id;
        return;
    }
    for (unsigned g = 0; g < a->ngens; g++)
        if (a->gens[g].stmt == st)
            a->gens[g].id = id;
}

/* Fold a tombstone batch in transaction order against the marks read:
 * each event's outcome, and what each user's row goes through.  A user
 * exists at first when its row was read; a tombstone deletes what exists
 * (deleted) or finds nothing (not_found); an event that finds no user
 * creates one, with its nickname or none, as a new row; a nickname renames
 * what exists. */
static int fold_deletes(struct sk_apply *a)
{
    a->gens = calloc(a->n, sizeof *a->gens);
    if (!a->gens)
        return -ENOMEM;
    a->ngens = 0;
    for (unsigned k = 0; k < a->nusers; k++) {
        struct user *u = &a->users[k];
        u->exists = u->old > 0;
        u->gen = -1;
        u->nick = -1;
        u->del_old = false;
    }
    for (unsigned i = 0; i < a->n; i++) {
        struct sk_msg *m = a->msgs[i];
        struct user *u = &a->users[a->muser[i]];
        a->mgen[i] = -1;
        if (m->offset < a->offs[a->moff[i]].next) {
            m->status = SK_ST_DUPLICATE;
            continue;
        }
        if (m->ev.del) {
            if (!u->exists) {
                m->status = SK_ST_NOT_FOUND;
                continue;
            }
            m->status = SK_ST_DELETED;
            a->mgen[i] = u->gen;
            if (u->gen < 0)
                u->del_old = true;
            else
                a->gens[u->gen].kept = false;
            u->exists = false;
            continue;
        }
        if (!u->exists) {
            a->gens[a->ngens] = (struct ugen){.user = a->muser[i], .nick = -1, .kept = true,
                                              .stmt = -1};
            u->gen = (int)a->ngens++;
            u->exists = true;
        }
        if (m->ev.nick != SK_NICK_ABSENT) {
            if (u->gen < 0)
                u->nick = (int)i;
            else
                a->gens[u->gen].nick = (int)i;
        }
        m->status = SK_ST_APPLIED;
        a->mgen[i] = u->gen;
    }
    return 0;
}

/* A nickname as an SQL value: the msg's, or NULL. */
static void nick_value(struct sk_buf *sql, const struct sk_apply *a, int msg)
{
    const struct sk_event *ev = msg >= 0 ? &a->msgs[msg]->ev : NULL;
    if (ev && ev->nick == SK_NICK_SET)
        sk_buf_sql_str(sql, ev->nickname, ev->nickname_len);
    else
        sk_buf_puts(sql, "NULL");
}

/* A user's row as it ends: the nickname it keeps or gets (msg, -1: none)
 * and whether to create it; false when nothing is written. */
static bool final_row(const struct sk_apply *a, unsigned k, int *nick, bool *create)
{
    const struct user *u = &a->users[k];
    if (!u->exists)
        return false;
    if (u->gen < 0) { /* the row read first, renamed or left alone */
        *nick = u->nick;
        *create = false;
        return u->nick >= 0;
    }
    *nick = a->gens[u->gen].nick;
    *create = true;
    return true;
}

/* The second round trip of a tombstone batch:
 *   1. delete the rows read first that a tombstone deletes, their
 *      game_players rows first (by user id; the users rows are locked);
 *   2. each row made and deleted again in this transaction (a user created,
 *      then deleted, in one batch), one by one: create it, read its id,
 *      delete it with whatever game_players rows a score transaction gave
 *      it meanwhile;
 *   3. the rows that remain: renamed, or created (a user created before in
 *      this transaction, or by a score transaction since the first round
 *      trip, takes the nickname; a creation without one leaves it);
 *   4. move the marks; read the ids; COMMIT. */
static int second_deletes(struct sk_apply *a, struct sk_buf *sql)
{
    int r = fold_deletes(a);
    if (r < 0)
        return r;
    a->st_offsets = a->st_old = -1;
    sk_buf_reset(sql);
    int stmt = 0;
    for (int pass = 0; pass < 2; pass++) {
        bool any = false;
        for (unsigned k = 0; k < a->nusers; k++) {
            if (!a->users[k].del_old)
                continue;
            sk_buf_puts(sql, any ? "," : pass ? "DELETE FROM users WHERE id IN ("
                                              : "DELETE FROM game_players WHERE user_id IN (");
            any = true;
            sk_buf_i64(sql, a->users[k].old);
        }
        if (any) {
            sk_buf_puts(sql, ");\n");
            stmt++;
        }
    }
    for (unsigned g = 0; g < a->ngens; g++) {
        struct ugen *n = &a->gens[g];
        if (n->kept)
            continue;
        const struct user *u = &a->users[n->user];
        sk_buf_puts(sql, "INSERT INTO users (username, nickname) VALUES (");
        sk_buf_sql_str(sql, u->name, u->len);
        sk_buf_putc(sql, ',');
        nick_value(sql, a, n->nick);
        sk_buf_puts(sql, ") ON DUPLICATE KEY UPDATE nickname = VALUES(nickname);\n"
                         "SELECT id, username FROM users WHERE username = ");
        sk_buf_sql_str(sql, u->name, u->len);
        sk_buf_puts(sql, ";\nDELETE FROM game_players WHERE user_id = (SELECT id FROM users WHERE "
                         "username = ");
        sk_buf_sql_str(sql, u->name, u->len);
        sk_buf_puts(sql, ");\nDELETE FROM users WHERE username = ");
        sk_buf_sql_str(sql, u->name, u->len);
        sk_buf_puts(sql, ";\n");
        n->stmt = stmt + 1;
        stmt += 4;
    }
    /* pass 0: rows that get a nickname; pass 1: rows created without one */
    for (int pass = 0; pass < 2; pass++) {
        bool any = false;
        for (unsigned k = 0; k < a->nusers; k++) {
            int nick;
            bool create;
            if (!final_row(a, k, &nick, &create) || (nick < 0) != (pass == 1))
                continue;
            sk_buf_puts(sql, any ? ",(" : pass ? "INSERT INTO users (username) VALUES ("
                                               : "INSERT INTO users (username, nickname) VALUES (");
            any = true;
            sk_buf_sql_str(sql, a->users[k].name, a->users[k].len);
            if (!pass) {
                sk_buf_putc(sql, ',');
                nick_value(sql, a, nick);
            }
            sk_buf_putc(sql, ')');
        }
        if (any) {
            sk_buf_puts(sql, pass ? " ON DUPLICATE KEY UPDATE id = id;\n"
                                  : " ON DUPLICATE KEY UPDATE nickname = VALUES(nickname);\n");
            stmt++;
        }
    }
    move_marks_and_commit(sql, a, stmt);
    return sk_buf_failed(sql) ? -ENOMEM : 1;
}

int apply_users_second(struct sk_apply *a, struct sk_buf *sql, char *err, size_t errlen)
{
    if (a->has_del) {
        int r = second_deletes(a, sql);
        if (r < 0)
            snprintf(err, errlen, "out of memory building SQL");
        return r;
    }
    /* The writes were decided in SQL against these marks, read under the
     * same locks: an event below its mark changed nothing. */
    for (unsigned i = 0; i < a->n; i++) {
        struct sk_msg *m = a->msgs[i];
        m->status = m->offset < a->offs[a->moff[i]].next ? SK_ST_DUPLICATE : SK_ST_APPLIED;
        const struct user *u = &a->users[a->muser[i]];
        if (m->status == SK_ST_APPLIED && u->uid <= 0) {
            snprintf(err, errlen, "user \"%.64s\" was not found right after it was created",
                     u->name);
            return -EPROTO;
        }
    }
    return 0;
}

int64_t apply_users_id(const struct sk_apply *a, unsigned i)
{
    const struct user *u = &a->users[a->muser[i]];
    switch (a->msgs[i]->status) {
    case SK_ST_APPLIED:
    case SK_ST_DELETED:
        if (!a->has_del)
            break;
        /* the row the event applied to, which may be gone since */
        if (a->mgen[i] < 0)
            return u->old;
        if (!a->gens[a->mgen[i]].kept)
            return a->gens[a->mgen[i]].id;
        break;
    case SK_ST_NOT_FOUND:
        return 0;
    default:
        break;
    }
    return u->uid; /* the user as it is now; 0: there is none */
}

unsigned apply_users_deleted(const struct sk_apply *a)
{
    unsigned n = 0;
    for (unsigned i = 0; i < a->n; i++)
        n += a->msgs[i]->status == SK_ST_DELETED;
    return n;
}
