/* migrate — schema migrations, see include/migrate.h. */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysqld_error.h>

#include "buf.h"
#include "db.h"
#include "dbcmd.h"
#include "log.h"

#define EX_DATAERR 65
#define EX_NOINPUT 66
#define EX_UNAVAILABLE 69
#define EX_SOFTWARE 70
#define EX_CONFIG 78

struct migration {
    unsigned version;
    char name[128];
    char path[4096];
    char applied_at[32]; /* "" while pending */
};

/* A version the database records that sql.dir has no file for (applied by
 * a newer release, or its file removed). */
struct stranger {
    unsigned version;
    char name[128];
    char applied_at[32];
};

struct mig {
    enum sk_migrate_mode mode;
    const char *dir;
    struct sk_dbcmd *cmd;   /* a command's connection, or: */
    struct sk_db_conn *c;   /* the daemon's check: a connection of its pool, */
    void (*done)(void *ud, int verdict); /* and whom to tell */
    void *done_ud;
    struct migration *list; /* sql.dir, by version */
    size_t n, next;
    struct stranger *strangers; /* by version */
    size_t n_strangers;
    unsigned top;  /* the highest version recorded, 0 none */
    bool no_table; /* schema_migrations does not exist: nothing applied */
    bool oom;
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
        log_error("cannot open migrations directory %s (sql.dir): %s", dir, strerror(e));
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
        v[cnt].applied_at[0] = '\0';
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

/* The one request that applies x: its file's statements, then the record
 * of its version, so that a failure leaves it unrecorded and retried next
 * time.  What `migrate` sends is what `migrate --dry-run` prints. */
static int migration_sql(const struct migration *x, struct sk_buf *b)
{
    sk_buf_reset(b);
    int r = read_file(x->path, b);
    if (r < 0)
        return r;
    /* An empty statement (";;") is a syntax error: drop the file's own
     * trailing terminator before appending ours. */
    while (b->len && strchr(" \t\r\n;", b->p[b->len - 1]))
        b->p[--b->len] = '\0';
    sk_buf_printf(b, ";\nINSERT IGNORE INTO schema_migrations (version, name) VALUES (%u, ",
                  x->version);
    sk_buf_sql_str(b, x->name, strlen(x->name));
    sk_buf_puts(b, ")");
    return sk_buf_failed(b) ? -ENOMEM : 0;
}

static size_t count_pending(const struct mig *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += !m->list[i].applied_at[0];
    return n;
}

static void finish(struct mig *m, int rc)
{
    if (m->cmd) {
        sk_dbcmd_finish(m->cmd, rc);
        return;
    }
    sk_db_release(m->c);
    m->c = NULL;
    m->done(m->done_ud, rc);
}

/* ---- migrate ------------------------------------------------------------ */

static void apply_next(struct mig *m);

static void on_applied(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    (void)c;
    struct mig *m = ud;
    struct migration *x = &m->list[m->next];
    if (err) {
        log_error("migration %s failed: %s (error %u); later migrations were not applied", x->name,
                  err->message, err->code);
        finish(m, EX_DATAERR);
        return;
    }
    log_info("applied migration %s", x->name);
    m->next++;
    apply_next(m);
}

static void apply_next(struct mig *m)
{
    while (m->next < m->n && m->list[m->next].applied_at[0])
        m->next++;
    if (m->next == m->n) {
        log_info("database is at version %03u", m->n ? m->list[m->n - 1].version : 0);
        finish(m, 0);
        return;
    }
    int r = migration_sql(&m->list[m->next], &m->sql);
    if (r < 0) {
        finish(m, r == -ENOMEM ? EX_SOFTWARE : EX_NOINPUT);
        return;
    }
    if (sk_db_query(m->cmd->c, m->sql.p, m->sql.len, NULL, on_applied, m) < 0)
        finish(m, EX_SOFTWARE);
}

/* ---- status, --dry-run, the daemon's check -------------------------------- */

/* The table of applied migrations; migrate creates it when missing. */
static const char create_table[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL PRIMARY KEY, "
    "name VARCHAR(200) NOT NULL, applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

static void print_status(const struct mig *m)
{
    printf("%-8s %-40s %s\n", "VERSION", "NAME", "APPLIED");
    size_t i = 0, j = 0;
    while (i < m->n || j < m->n_strangers) {
        if (j == m->n_strangers || (i < m->n && m->list[i].version < m->strangers[j].version)) {
            const struct migration *x = &m->list[i++];
            printf("%03u      %-40s %s\n", x->version, x->name,
                   x->applied_at[0] ? x->applied_at : "pending");
        } else {
            const struct stranger *y = &m->strangers[j++];
            printf("%03u      %-40s %s (no such file in sql.dir)\n", y->version, y->name,
                   y->applied_at);
        }
    }
    size_t pending = count_pending(m);
    if (m->no_table)
        printf("the database has no schema_migrations table: it was never migrated\n");
    if (pending)
        printf("database at version %03u; %zu of the %zu migrations in %s pending: run "
               "`scorekeeper migrate`\n",
               m->top, pending, m->n, m->dir);
    else
        printf("database at version %03u; the %zu migrations in %s are applied\n", m->top, m->n,
               m->dir);
}

/* The requests `migrate` would send, as one SQL script; 0 or an exit code. */
static int print_dry_run(struct mig *m)
{
    size_t pending = count_pending(m);
    printf("-- scorekeeper migrate --dry-run: database at version %03u; %zu of the %zu "
           "migrations in %s would be applied, in this order; nothing was changed\n",
           m->top, pending, m->n, m->dir);
    if (!pending)
        return 0;
    printf("%s;\n", create_table);
    for (size_t i = 0; i < m->n; i++) {
        const struct migration *x = &m->list[i];
        if (x->applied_at[0])
            continue;
        int r = migration_sql(x, &m->sql);
        if (r < 0)
            return r == -ENOMEM ? EX_SOFTWARE : EX_NOINPUT;
        printf("\n-- migration %s, from %s\n%s;\n", x->name, x->path, sk_buf_cstr(&m->sql));
    }
    return 0;
}

/* The daemon's start: every migration in sql.dir must be applied, else the
 * code would run against tables it was not written for. */
static int check_schema(const struct mig *m)
{
    if (m->oom) {
        log_error("out of memory reading schema_migrations; not starting");
        return EX_SOFTWARE;
    }
    size_t pending = count_pending(m);
    if (!pending) {
        log_info("database schema at version %03u: the %zu migrations in %s are applied", m->top,
                 m->n, m->dir);
        return 0;
    }
    char names[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < m->n && len < sizeof names; i++)
        if (!m->list[i].applied_at[0])
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "",
                                    m->list[i].name);
    log_error("the database schema is at version %03u%s, this scorekeeper needs %03u (sql.dir "
              "%s): not applied: %s; apply them with `scorekeeper migrate` and an administrative "
              "account in db.url (`scorekeeper migrate status` lists them); not starting",
              m->top, m->no_table ? " (no schema_migrations table: never migrated)" : "",
              m->list[m->n - 1].version, m->dir, names);
    return EX_CONFIG;
}

/* ---- reading what is applied ---------------------------------------------- */

static void on_version_row(void *ud, unsigned stmt, char **row, unsigned long *len, unsigned nf)
{
    (void)stmt;
    (void)len;
    struct mig *m = ud;
    if (nf < 3 || !row[0])
        return;
    unsigned v = (unsigned)strtoul(row[0], NULL, 10);
    const char *at = row[2] ? row[2] : "?";
    if (v > m->top)
        m->top = v;
    for (size_t i = 0; i < m->n; i++)
        if (m->list[i].version == v) {
            snprintf(m->list[i].applied_at, sizeof m->list[i].applied_at, "%s", at);
            return;
        }
    struct stranger *nv = realloc(m->strangers, (m->n_strangers + 1) * sizeof *nv);
    if (!nv) {
        m->oom = true;
        return;
    }
    m->strangers = nv;
    nv[m->n_strangers].version = v;
    snprintf(nv[m->n_strangers].name, sizeof nv->name, "%s", row[1] ? row[1] : "?");
    snprintf(nv[m->n_strangers].applied_at, sizeof nv->applied_at, "%s", at);
    m->n_strangers++;
}

static void on_versions(void *ud, struct sk_db_conn *c, const struct sk_db_error *err)
{
    (void)c;
    struct mig *m = ud;
    if (err && err->code == ER_NO_SUCH_TABLE && m->mode != SK_MIGRATE_APPLY) {
        m->no_table = true; /* nothing applied yet */
    } else if (err && m->mode == SK_MIGRATE_CHECK) {
        /* a lost connection or a statement timeout: again on the next
         * free connection; anything else (grants) will not heal */
        bool again = err->fault == SK_DB_CONN || err->fault == SK_DB_RETRY ||
                     sk_db_fault_loses_conn(err->fault);
        log_error("cannot read schema_migrations: %s (error %u); %s", err->message, err->code,
                  again ? "reading it again on another connection"
                        : "the runtime account needs SELECT on it (sql/grants.sql); not starting");
        finish(m, again ? EX_UNAVAILABLE : EX_CONFIG);
        return;
    } else if (err) {
        log_error("cannot read schema_migrations: %s (error %u)", err->message, err->code);
        finish(m, err->fault == SK_DB_CONN ? EX_UNAVAILABLE : EX_DATAERR);
        return;
    }
    if (m->oom) {
        log_error("out of memory reading schema_migrations");
        finish(m, EX_SOFTWARE);
        return;
    }
    switch (m->mode) {
    case SK_MIGRATE_APPLY: apply_next(m); return;
    case SK_MIGRATE_STATUS: print_status(m); finish(m, 0); return;
    case SK_MIGRATE_DRY_RUN: finish(m, print_dry_run(m)); return;
    case SK_MIGRATE_CHECK: finish(m, check_schema(m)); return;
    }
}

/* Read what the database records, on c; then on_versions goes on. */
static int read_versions(struct mig *m, struct sk_db_conn *c)
{
    m->top = 0;
    m->no_table = m->oom = false;
    m->n_strangers = 0;
    for (size_t i = 0; i < m->n; i++)
        m->list[i].applied_at[0] = '\0';
    /* Only `migrate` itself changes anything, the table included. */
    sk_buf_reset(&m->sql);
    if (m->mode == SK_MIGRATE_APPLY)
        sk_buf_printf(&m->sql, "%s;\n", create_table);
    sk_buf_puts(&m->sql, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version");
    if (sk_buf_failed(&m->sql))
        return -ENOMEM;
    return sk_db_query(c, m->sql.p, m->sql.len, on_version_row, on_versions, m);
}

static void start(struct sk_dbcmd *cmd)
{
    struct mig *m = cmd->ud;
    m->cmd = cmd;
    if (read_versions(m, cmd->c) < 0)
        finish(m, EX_SOFTWARE);
}

/* sql.dir's migrations into m; logs why it fails. */
static int load(struct mig *m, const struct sk_config *cfg, enum sk_migrate_mode mode)
{
    *m = (struct mig){.mode = mode, .dir = cfg->sql_dir};
    sk_buf_init(&m->sql);
    int r = list_migrations(cfg->sql_dir, &m->list, &m->n);
    if (r < 0)
        return r;
    if (m->n == 0) {
        log_error("no migrations (NNN_name.sql) found in %s (sql.dir)", cfg->sql_dir);
        free(m->list);
        return -ENOENT;
    }
    return 0;
}

static void unload(struct mig *m)
{
    sk_buf_free(&m->sql);
    free(m->list);
    free(m->strangers);
}

int sk_migrate_run(const struct sk_config *cfg, enum sk_migrate_mode mode)
{
    static const char *const nothing_done[] = {
        [SK_MIGRATE_APPLY] = "nothing was migrated",
        [SK_MIGRATE_STATUS] = "no status to show",
        [SK_MIGRATE_DRY_RUN] = "nothing to show",
    };
    struct mig m;
    if (mode == SK_MIGRATE_CHECK || load(&m, cfg, mode) < 0)
        return EX_NOINPUT;
    int rc = sk_dbcmd_run(cfg, nothing_done[mode], start, &m);
    unload(&m);
    return rc;
}

/* ---- the daemon's check ----------------------------------------------------- */

struct sk_migrate_check {
    struct mig m;
};

int sk_migrate_check_new(const struct sk_config *cfg, struct sk_migrate_check **out)
{
    struct sk_migrate_check *check = malloc(sizeof *check);
    if (!check) {
        log_error("out of memory");
        return -ENOMEM;
    }
    int r = load(&check->m, cfg, SK_MIGRATE_CHECK);
    if (r < 0) {
        free(check);
        return r;
    }
    *out = check;
    return 0;
}

int sk_migrate_check_start(struct sk_migrate_check *check, struct sk_db_conn *c,
                           void (*done)(void *ud, int verdict), void *ud)
{
    struct mig *m = &check->m;
    m->c = c;
    m->done = done;
    m->done_ud = ud;
    int r = read_versions(m, c);
    if (r < 0)
        m->c = NULL; /* still the caller's */
    return r;
}

bool sk_migrate_check_running(const struct sk_migrate_check *check)
{
    return check && check->m.c;
}

void sk_migrate_check_free(struct sk_migrate_check *check)
{
    if (!check)
        return;
    unload(&check->m);
    free(check);
}
