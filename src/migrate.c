/* migrate — schema migrations, see include/migrate.h. */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "db.h"
#include "dbcmd.h"
#include "log.h"

struct migration {
    unsigned version;
    char name[128];
    char path[4096];
};

struct mig {
    struct sk_dbcmd *cmd;
    struct migration *list;
    size_t n, next;
    bool *applied; /* by index in list */
    struct sk_buf sql;
};

static int cmp_mig(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* NNN_name.sql, NNN a positive number: the only files taken.  Logs why it
 * fails (the caller only picks the exit code): the error of opendir,
 * -ENOMEM, or -EINVAL for two files of one version. */
static int list_migrations(const char *dir, struct migration **out, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        log_error("cannot open migrations directory %s: %s", dir, strerror(e));
        return -e;
    }
    struct migration *v = NULL;
    size_t cnt = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *s = e->d_name;
        size_t len = strlen(s);
        if (len < 9 || strcmp(s + len - 4, ".sql") || s[3] != '_')
            continue;
        if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9')
            continue;
        struct migration *nv = realloc(v, (cnt + 1) * sizeof *nv);
        if (!nv) {
            log_error("out of memory listing the migrations in %s", dir);
            free(v);
            closedir(d);
            return -ENOMEM;
        }
        v = nv;
        v[cnt].version = (unsigned)((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
        snprintf(v[cnt].name, sizeof v[cnt].name, "%.*s", (int)(len - 4), s);
        snprintf(v[cnt].path, sizeof v[cnt].path, "%s/%s", dir, s);
        cnt++;
    }
    closedir(d);
    qsort(v, cnt, sizeof *v, cmp_mig);
    for (size_t i = 1; i < cnt; i++)
        if (v[i].version == v[i - 1].version) {
            log_error("two migrations with version %03u: %s and %s", v[i].version, v[i - 1].name,
                      v[i].name);
            free(v);
            return -EINVAL;
        }
    *out = v;
    *n = cnt;
    return 0;
}

/* Append the file to b.  Logs why it fails: the error of fopen, -EIO, or
 * -ENOMEM. */
static int read_file(const char *path, struct sk_buf *b)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        log_error("cannot read %s: %s", path, strerror(e));
        return -e;
    }
    char tmp[8192];
    size_t r;
    while ((r = fread(tmp, 1, sizeof tmp, f)) > 0)
        sk_buf_append(b, tmp, r);
    int bad = ferror(f);
    fclose(f);
    if (bad || sk_buf_failed(b)) {
        log_error("cannot read %s", path);
        return bad ? -EIO : -ENOMEM;
    }
    return 0;
}

static void finish(struct mig *m, int rc) { sk_dbcmd_finish(m->cmd, rc); }

static void apply_next(struct mig *m);

static void on_applied(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    (void)c;
    struct mig *m = ud;
    struct migration *x = &m->list[m->next];
    if (err) {
        log_error("migration %s failed: %s (error %u); later migrations were not applied", x->name,
                  err->message, err->code);
        finish(m, 65);
        return;
    }
    log_info("applied migration %s", x->name);
    m->next++;
    apply_next(m);
}

static void apply_next(struct mig *m)
{
    while (m->next < m->n && m->applied[m->next])
        m->next++;
    if (m->next == m->n) {
        log_info("database is at version %03u", m->n ? m->list[m->n - 1].version : 0);
        finish(m, 0);
        return;
    }
    struct migration *x = &m->list[m->next];
    sk_buf_reset(&m->sql);
    if (read_file(x->path, &m->sql) < 0) {
        finish(m, 66);
        return;
    }
    /* An empty statement (";;") is a syntax error: drop the file's own
     * trailing terminator before appending ours. */
    while (m->sql.len && strchr(" \t\r\n;", m->sql.p[m->sql.len - 1]))
        m->sql.p[--m->sql.len] = '\0';
    /* Record the version in the same request, after the file's own
     * statements, so a failure leaves it unrecorded and retried next time. */
    sk_buf_printf(&m->sql, ";\nINSERT IGNORE INTO schema_migrations (version, name) VALUES (%u, ",
                  x->version);
    sk_buf_sql_str(&m->sql, x->name, strlen(x->name));
    sk_buf_puts(&m->sql, ")");
    if (sk_db_query(m->cmd->c, m->sql.p, m->sql.len, NULL, on_applied, m) < 0)
        finish(m, 70);
}

static void on_version_row(void *ud, unsigned stmt, char **row, unsigned long *len, unsigned nf)
{
    (void)stmt;
    (void)len;
    struct mig *m = ud;
    if (nf < 1 || !row[0])
        return;
    unsigned v = (unsigned)strtoul(row[0], NULL, 10);
    for (size_t i = 0; i < m->n; i++)
        if (m->list[i].version == v)
            m->applied[i] = true;
}

static void on_versions(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    (void)c;
    struct mig *m = ud;
    if (err) {
        log_error("cannot read schema_migrations: %s (error %u)", err->message, err->code);
        finish(m, 65);
        return;
    }
    apply_next(m);
}

static void start(struct sk_dbcmd *cmd)
{
    struct mig *m = cmd->ud;
    m->cmd = cmd;
    static const char q[] =
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL PRIMARY KEY, "
        "name VARCHAR(200) NOT NULL, applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
        " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\nSELECT version FROM schema_migrations";
    if (sk_db_query(cmd->c, q, sizeof q - 1, on_version_row, on_versions, m) < 0)
        finish(m, 70);
}

int sk_migrate_run(const struct sk_config *cfg)
{
    struct mig m = {0};
    sk_buf_init(&m.sql);
    if (list_migrations(cfg->sql_dir, &m.list, &m.n) < 0)
        return 66;
    if (m.n == 0) {
        log_error("no migrations (NNN_name.sql) found in %s", cfg->sql_dir);
        free(m.list);
        return 66;
    }
    m.applied = calloc(m.n, sizeof *m.applied);
    int rc = m.applied ? sk_dbcmd_run(cfg, "nothing was migrated", start, &m) : 70;
    sk_buf_free(&m.sql);
    free(m.list);
    free(m.applied);
    return rc;
}
