/* resetmarks — deleting a topic's marks, see include/resetmarks.h. */
#include "resetmarks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysqld_error.h>

#include "buf.h"
#include "db.h"
#include "dbcmd.h"
#include "log.h"

#define EX_UNAVAILABLE 69
#define EX_SOFTWARE 70
#define EX_NOPERM 77

struct reset {
    struct sk_dbcmd *cmd;
    const char *topic;
    int32_t partition;
    struct sk_buf sql;
    unsigned parts;      /* partitions that held marks */
    unsigned long games; /* marks deleted */
};

static void finish(struct reset *r, int rc) { sk_dbcmd_finish(r->cmd, rc); }

/* Statement 1: what each partition holds, before it goes. */
static void on_row(void *ud, unsigned stmt, char **row, unsigned long *lengths, unsigned nf)
{
    (void)lengths;
    struct reset *r = ud;
    if (stmt != 1 || nf != 3 || !row[0] || !row[1] || !row[2])
        return;
    printf("%s [%s]: marks of games: %s, the highest: %s\n", r->topic, row[0], row[1], row[2]);
    r->parts++;
    r->games += strtoul(row[1], NULL, 10);
}

static void on_done(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    (void)c;
    struct reset *r = ud;
    if (err && err->code == ER_TABLEACCESS_DENIED_ERROR) /* "DELETE command denied" */ {
        log_error("cannot reset the marks: %s; the runtime account may only SELECT, INSERT and "
                  "UPDATE (sql/grants.sql): run reset-marks with an administrative account in "
                  "db.url; nothing was deleted",
                  err->message);
        finish(r, EX_NOPERM);
        return;
    }
    if (err) {
        log_error("cannot reset the marks: %s (error %u); nothing was deleted", err->message,
                  err->code);
        finish(r, err->fault == SK_DB_CONN ? EX_UNAVAILABLE : EXIT_FAILURE);
        return;
    }
    char part[32] = "";
    if (r->partition >= 0)
        snprintf(part, sizeof part, " [%d]", (int)r->partition);
    printf("deleted %s%s's marks: %lu, of partitions: %u; a daemon that refused a partition "
           "applies it once reloaded (SIGHUP) or restarted\n",
           r->topic, part, r->games, r->parts);
    log_notice("reset the marks of %s%s: %lu deleted in %u partitions", r->topic, part, r->games,
               r->parts);
    finish(r, 0);
}

static int reset_sql(struct reset *r)
{
    struct sk_buf where;
    sk_buf_init(&where);
    sk_buf_puts(&where, " FROM game_offsets WHERE topic = ");
    sk_buf_sql_str(&where, r->topic, strlen(r->topic));
    if (r->partition >= 0)
        sk_buf_printf(&where, " AND `partition` = %d", (int)r->partition);
    /* One transaction: the rows reported are the rows deleted. */
    sk_buf_puts(&r->sql, "START TRANSACTION;\nSELECT `partition`, COUNT(*), MAX(next_offset)");
    sk_buf_append(&r->sql, where.p, where.len);
    sk_buf_puts(&r->sql, " GROUP BY `partition` ORDER BY `partition` FOR UPDATE;\nDELETE");
    sk_buf_append(&r->sql, where.p, where.len);
    sk_buf_puts(&r->sql, ";\nCOMMIT");
    int bad = sk_buf_failed(&where) || sk_buf_failed(&r->sql);
    sk_buf_free(&where);
    return bad ? -ENOMEM : 0;
}

static void start(struct sk_dbcmd *cmd)
{
    struct reset *r = cmd->ud;
    r->cmd = cmd;
    if (reset_sql(r) < 0 || sk_db_query(cmd->c, r->sql.p, r->sql.len, on_row, on_done, r) < 0)
        finish(r, EX_SOFTWARE);
}

int sk_resetmarks_run(const struct sk_config *cfg, const char *topic, int32_t partition)
{
    struct reset r = {.topic = topic, .partition = partition};
    sk_buf_init(&r.sql);
    int rc = sk_dbcmd_run(cfg, "nothing was deleted", start, &r);
    sk_buf_free(&r.sql);
    return rc;
}
