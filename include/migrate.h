/* migrate — apply sql/NNN_*.sql migrations in order, each once.
 *
 * Applied versions are recorded in schema_migrations; a file whose version
 * is recorded is skipped, so running migrate again changes nothing.  Runs
 * over the same non-blocking pool as the daemon, on its own short loop. */
#pragma once

#include "config.h"

/* Returns a sysexits-style exit code: 0, 69 (database unreachable), 65
 * (a migration failed), 66 (no migrations found), 70 (internal). */
int sk_migrate_run(const struct sk_config *cfg);
