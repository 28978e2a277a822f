/* migrate — the SQL migrations sql/NNN_*.sql: apply them in order, each
 * once; show which are applied; show what applying would run; and, for the
 * daemon's start, say whether the database lacks one.
 *
 * Applied versions are recorded in schema_migrations; a file whose version
 * is recorded is skipped, so running migrate again changes nothing.  The
 * migrations are found in sql.dir, so the schema the daemon needs is the
 * one its release ships there: a new NNN_*.sql raises it with no code
 * change.  The commands run over the same non-blocking pool as the daemon,
 * on their own short loop (include/dbcmd.h); the daemon's check runs on
 * a connection of the daemon's pool, on its loop. */
#pragma once

#include "config.h"

struct sk_db_conn;

enum sk_migrate_mode {
    SK_MIGRATE_APPLY,   /* `migrate`: apply what is pending */
    SK_MIGRATE_STATUS,  /* `migrate status`: print every migration, applied or pending */
    SK_MIGRATE_DRY_RUN, /* `migrate --dry-run`: print the SQL migrate would send */
    SK_MIGRATE_CHECK,   /* the daemon's start (sk_migrate_check_*), not a command */
};

/* A command.  Returns a sysexits-style exit code: 0, 69 (database
 * unreachable, or lost while reading), 65 (a migration failed, or
 * schema_migrations could not be read), 66 (no migrations found, or one
 * unreadable), 70 (internal).  SK_MIGRATE_STATUS and SK_MIGRATE_DRY_RUN
 * print to stdout, change nothing and return 0 also when migrations are
 * pending. */
int sk_migrate_run(const struct sk_config *cfg, enum sk_migrate_mode mode);

/* The daemon's check that the database has every migration of sql.dir:
 * nothing may touch the database before it passes. */
struct sk_migrate_check;
/* Lists sql.dir.  0, or a negative errno when it cannot be read or holds
 * no migration (logged): a configuration error. */
int sk_migrate_check_new(const struct sk_config *cfg, struct sk_migrate_check **out);
/* Read schema_migrations on c, an acquired connection: it is released
 * before done(ud, verdict) runs, with verdict 0 (every migration applied),
 * 78 (some are not, or the table cannot be read for good: logged, naming
 * them and the command that applies them), 69 (the connection was lost:
 * start again on another one) or 70 (out of memory).  A negative errno
 * when the query cannot be sent (c stays the caller's). */
int sk_migrate_check_start(struct sk_migrate_check *check, struct sk_db_conn *c,
                           void (*done)(void *ud, int verdict), void *ud);
/* Between a start and its done. */
bool sk_migrate_check_running(const struct sk_migrate_check *check);
void sk_migrate_check_free(struct sk_migrate_check *check);
