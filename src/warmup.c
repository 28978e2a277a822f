/* warmup — known users and partitions' marks, see include/warmup.h. */
#include "warmup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "preload.h"

struct marks_load {
    struct sk_warmup *w;
    struct sk_part *part; /* NULL once revoked: the rows are not for anyone */
    char *topic;          /* for the log, whatever happens to the partition */
    int32_t partition;
    bool running;
    size_t n;
    size_t limit; /* rows asked for: fewer is all of them (sk_marks_load_max) */
    int64_t top; /* the highest mark read, -1 none */
    struct sk_buf sql; /* Connector/C may still be sending it after the call returns */
    struct marks_load *next;
};

struct sk_warmup {
    sd_event *loop;
    const struct sk_config *cfg;
    struct sk_db *db;
    struct sk_known *known;
    void (*again)(void *ud);
    void (*marks_read)(void *ud, struct sk_part *p);
    void *ud;
    struct marks_load *loads; /* due or running */
    struct sk_preload preload;
};

static uint64_t now_usec(const struct sk_warmup *w)
{
    uint64_t t = 0;
    sd_event_now(w->loop, CLOCK_MONOTONIC, &t);
    return t;
}

/* ---- marks ------------------------------------------------------------ */

static void load_free(struct sk_warmup *w, struct marks_load *l)
{
    for (struct marks_load **pp = &w->loads; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    free(l->topic);
    sk_buf_free(&l->sql);
    free(l);
}

static void on_marks_row(void *ud, unsigned stmt, char **row, unsigned long *lengths,
                         unsigned nfields)
{
    (void)lengths;
    struct marks_load *l = ud;
    if (stmt == 0) { /* the highest mark, NULL when the partition has none */
        l->top = nfields == 1 && row[0] ? strtoll(row[0], NULL, 10) : -1;
        return;
    }
    if (nfields != 2 || !row[0] || !row[1] || !l->part)
        return;
    int64_t game = strtoll(row[0], NULL, 10), next = strtoll(row[1], NULL, 10);
    if (next > 0 && sk_marks_get(l->part->marks, game) < 0)
        sk_marks_set(l->part->marks, game, next);
    l->n++;
}

/* The read of p's marks ended: its reuse check may be decided (top -1:
 * no marks, or they could not be read: nothing to check against). */
static void marks_done(struct sk_warmup *w, struct sk_part *p, int64_t top)
{
    p->marks_read = true;
    p->top_mark = top;
    w->marks_read(w->ud, p);
}

static void on_marks_done(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    struct marks_load *l = ud;
    struct sk_warmup *w = l->w;
    struct sk_log_ctx x = SK_LOG_CTX_NONE;
    x.topic = l->topic;
    x.partition = l->partition;
    sk_db_release(c);
    l->running = false;
    if (err) {
        /* a lost connection (rebuilt by the pool) or a statement the server
         * ended (a lock held past max_statement_time): read again on the
         * next free connection; anything else is logged and done without */
        bool again = l->part && (err->fault == SK_DB_CONN || err->fault == SK_DB_RETRY);
        x.db_errno = err->code;
        sk_logc(SK_LOG_WARNING, &x, "cannot read the applied offsets of %s [%d]: %s; %s", l->topic,
                (int)l->partition, err->message,
                again ? "reading them again on another connection"
                      : "its games' first batches read first, and its offsets are not checked "
                        "against the end of its log");
        if (again) {
            l->n = 0;
            l->top = -1;
            w->again(w->ud);
            return;
        }
        if (l->part)
            marks_done(w, l->part, -1);
    } else {
        if (l->part && l->n < l->limit)
            sk_marks_complete(l->part->marks);
        char top[40] = "";
        if (l->top >= 0)
            snprintf(top, sizeof top, ", the highest %lld", (long long)l->top);
        sk_logc(SK_LOG_INFO, &x, "read the applied offsets of %s [%d]: %zu games%s", l->topic,
                (int)l->partition, l->n, top);
        if (l->part)
            marks_done(w, l->part, l->top);
    }
    load_free(w, l);
    w->again(w->ud);
}

/* The highest mark (for the reuse check, consumer.c), then the marks. */
static int marks_sql(struct marks_load *l)
{
    sk_buf_reset(&l->sql);
    sk_buf_puts(&l->sql, "SELECT MAX(next_offset) FROM game_offsets WHERE topic = ");
    sk_buf_sql_str(&l->sql, l->topic, strlen(l->topic));
    sk_buf_printf(&l->sql, " AND `partition` = %d;\n", (int)l->partition);
    sk_buf_puts(&l->sql, "SELECT game_id, next_offset FROM game_offsets WHERE topic = ");
    sk_buf_sql_str(&l->sql, l->topic, strlen(l->topic));
    l->limit = sk_marks_load_max(l->part->marks);
    sk_buf_printf(&l->sql, " AND `partition` = %d LIMIT %zu", (int)l->partition, l->limit);
    return sk_buf_failed(&l->sql) ? -ENOMEM : 0;
}

void sk_warmup_marks(struct sk_warmup *w, struct sk_part *p)
{
    if (!p->marks) {
        marks_done(w, p, -1); /* nothing kept, nothing to check against */
        return;
    }
    struct marks_load *l = calloc(1, sizeof *l);
    if (l)
        l->topic = strdup(p->topic);
    if (!l || !l->topic) {
        log_warning("cannot read the applied offsets of %s [%d] (out of memory); its games' "
                    "first batches read first, and its offsets are not checked against the end "
                    "of its log",
                    p->topic, (int)p->partition);
        free(l);
        marks_done(w, p, -1);
        return;
    }
    l->w = w;
    l->part = p;
    l->top = -1;
    l->partition = p->partition;
    sk_buf_init(&l->sql);
    l->next = w->loads;
    w->loads = l;
}

void sk_warmup_forget(struct sk_warmup *w, const struct sk_part *p)
{
    struct marks_load *l = w->loads;
    while (l) {
        struct marks_load *next = l->next;
        if (l->part == p) {
            l->part = NULL;
            if (!l->running)
                load_free(w, l);
        }
        l = next;
    }
}

/* Starts the marks reads due, one per free connection; false when the
 * connections ran out first. */
static bool run_marks(struct sk_warmup *w)
{
    struct marks_load *l = w->loads;
    while (l) {
        struct marks_load *next = l->next;
        if (l->running) {
            l = next;
            continue;
        }
        struct sk_db_conn *c = sk_db_acquire(w->db);
        if (!c)
            return false;
        l->running = true;
        if (marks_sql(l) < 0 || sk_db_query(c, l->sql.p, l->sql.len, on_marks_row, on_marks_done, l) < 0) {
            log_warning("cannot read the applied offsets of %s [%d] (out of memory or connection "
                        "not ready); its games' first batches read first, and its offsets are "
                        "not checked against the end of its log",
                        l->topic, (int)l->partition);
            sk_db_release(c);
            if (l->part)
                marks_done(w, l->part, -1);
            load_free(w, l);
        }
        l = next;
    }
    return true;
}

/* ---- known users ------------------------------------------------------ */

static void on_preload_row(void *ud, unsigned stmt, char **row, unsigned long *lengths,
                           unsigned nfields)
{
    (void)stmt;
    struct sk_warmup *w = ud;
    sk_preload_row(&w->preload, w->known, row, lengths, nfields);
}

static void on_preload_done(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    struct sk_warmup *w = ud;
    struct sk_preload *p = &w->preload;
    sk_db_release(c);
    if (err) {
        /* a lost connection, or a statement the server ended: this chunk
         * is read again on the next free connection; anything else ends the
         * preload */
        p->wanted = err->fault == SK_DB_CONN || err->fault == SK_DB_RETRY;
        struct sk_log_ctx x = SK_LOG_CTX_NONE;
        x.db_errno = err->code;
        sk_logc(SK_LOG_WARNING, &x, "cannot read known users (%zu read): %s; %s", p->loaded,
                err->message,
                p->wanted ? "reading on another connection"
                          : "the rest are learned from the transactions");
    } else if (!sk_preload_chunk_done(p)) {
        log_info("knew %zu users from the database in %.0f ms (known users: %zu)", p->loaded,
                 (double)(now_usec(w) - p->started) / 1000.0, sk_known_count(w->known));
    }
    w->again(w->ud);
}

/* Starts the next chunk of known users when one is due; false when no
 * connection was free for it. */
static bool run_preload(struct sk_warmup *w)
{
    struct sk_preload *p = &w->preload;
    if (!p->wanted)
        return true;
    struct sk_db_conn *c = sk_db_acquire(w->db);
    if (!c)
        return false;
    p->wanted = false;
    if (!p->started)
        p->started = now_usec(w);
    if (sk_preload_sql(p) < 0 ||
        sk_db_query(c, p->sql.p, p->sql.len, on_preload_row, on_preload_done, w) < 0) {
        log_warning("cannot read known users (%zu read): out of memory or connection not "
                    "ready; the rest are learned from the transactions",
                    p->loaded);
        sk_db_release(c);
    }
    return true;
}

bool sk_warmup_run(struct sk_warmup *w) { return run_marks(w) && run_preload(w); }

size_t sk_warmup_preloaded(const struct sk_warmup *w) { return w->preload.loaded; }

int sk_warmup_new(sd_event *loop, const struct sk_config *cfg, struct sk_db *db,
                  struct sk_known *known, void (*again)(void *ud),
                  void (*marks_read)(void *ud, struct sk_part *p), void *ud,
                  struct sk_warmup **out)
{
    struct sk_warmup *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    *w = (struct sk_warmup){.loop = loop, .cfg = cfg, .db = db, .known = known,
                            .again = again, .marks_read = marks_read, .ud = ud};
    /* At most half the known-users map, one generation of it (known.c): the
     * users met later start the next one, and the preloaded names that are
     * used are carried into it. */
    size_t half = cfg->known_users / 2;
    sk_preload_init(&w->preload, cfg->known_users_preload < half ? cfg->known_users_preload : half);
    *out = w;
    return 0;
}

void sk_warmup_free(struct sk_warmup *w)
{
    if (!w)
        return;
    while (w->loads)
        load_free(w, w->loads);
    sk_preload_free(&w->preload);
    free(w);
}
