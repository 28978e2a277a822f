/* dbcmd — a command's one connection, see include/dbcmd.h. */
#include "dbcmd.h"

#include <errno.h>

#include "log.h"

#define EX_UNAVAILABLE 69
#define EX_SOFTWARE 70

void sk_dbcmd_finish(struct sk_dbcmd *cmd, int rc)
{
    cmd->rc = rc;
    if (cmd->c) {
        sk_db_release(cmd->c);
        cmd->c = NULL;
    }
    sd_event_exit(cmd->loop, rc);
}

static void on_idle(void *ud)
{
    struct sk_dbcmd *cmd = ud;
    if (cmd->c || !cmd->start)
        return;
    if (!(cmd->c = sk_db_acquire(cmd->db)))
        return;
    sd_event_source_set_enabled(cmd->deadline, SD_EVENT_OFF);
    void (*start)(struct sk_dbcmd *) = cmd->start;
    cmd->start = NULL; /* once */
    start(cmd);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    struct sk_dbcmd *cmd = ud;
    log_error("cannot reach the database at %s within %u ms; %s",
              cmd->cfg->db.socket ? cmd->cfg->db.socket : cmd->cfg->db.host,
              cmd->cfg->db_connect_timeout_ms * 2, cmd->nothing_done);
    sk_dbcmd_finish(cmd, EX_UNAVAILABLE);
    return 0;
}

int sk_dbcmd_run(const struct sk_config *cfg, const char *nothing_done,
                 void (*start)(struct sk_dbcmd *cmd), void *ud)
{
    struct sk_dbcmd cmd = {.cfg = cfg, .nothing_done = nothing_done, .start = start, .ud = ud,
                           .rc = EX_SOFTWARE};
    if (sd_event_new(&cmd.loop) < 0)
        return EX_SOFTWARE;
    struct sk_config one = *cfg; /* one connection: the command's queries run in order */
    one.db_pool_size = 1;
    int r = sk_db_new(cmd.loop, &one, on_idle, &cmd, &cmd.db);
    if (r >= 0)
        r = sd_event_add_time_relative(cmd.loop, &cmd.deadline, CLOCK_MONOTONIC,
                                       (uint64_t)cfg->db_connect_timeout_ms * 2000u, 1000,
                                       on_deadline, &cmd);
    if (r < 0) {
        cmd.rc = r == -EHOSTUNREACH ? EX_UNAVAILABLE : EX_SOFTWARE;
    } else {
        sk_db_start(cmd.db);
        sd_event_loop(cmd.loop);
    }
    sd_event_source_disable_unref(cmd.deadline);
    sk_db_free(cmd.db);
    sd_event_unref(cmd.loop);
    return cmd.rc;
}
