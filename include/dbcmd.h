/* dbcmd — the one database connection of a command (migrate, reset-marks):
 * a loop of its own, a pool of one, and a deadline to be connected by.
 *
 * The command's start callback runs once, with the connection acquired
 * (cmd->c); it runs its queries there and ends the run with
 * sk_dbcmd_finish.  Not the daemon's loop: a command may wait. */
#pragma once
#include <systemd/sd-event.h>

#include "config.h"
#include "db.h"

struct sk_dbcmd {
    const struct sk_config *cfg;
    sd_event *loop;
    struct sk_db *db;
    struct sk_db_conn *c; /* acquired before start runs */
    sd_event_source *deadline;
    const char *nothing_done; /* said when the database is not reached in time */
    void (*start)(struct sk_dbcmd *cmd);
    void *ud;
    int rc;
};

/* Runs until the command finishes: its exit code; 69 when the database is
 * not reached within twice db.connect_timeout_ms (logged, ending with
 * nothing_done), 70 when the loop cannot be set up. */
int sk_dbcmd_run(const struct sk_config *cfg, const char *nothing_done,
                 void (*start)(struct sk_dbcmd *cmd), void *ud);
/* Ends the run with exit code rc (releases the connection). */
void sk_dbcmd_finish(struct sk_dbcmd *cmd, int rc);
