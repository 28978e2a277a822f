/* db — a pool of non-blocking MariaDB connections driven by sd-event.
 *
 * Owns every MYSQL handle, its socket's event source and its timers.  All
 * I/O goes through Connector/C's _start/_cont calls: the pool hands the
 * MYSQL_WAIT_* bits to the loop and resumes the call when the socket or the
 * timeout fires, so no call here ever blocks.  Users see meaning-level
 * events only: "rows of statement k", "query done", "query failed (and why)".
 *
 * A connection is either DOWN (waiting out a backoff before reconnecting),
 * CONNECTING, IDLE (in the pool, free), BUSY (acquired by a user, possibly
 * running a query) or CLOSING.  A lost connection is closed and rebuilt with
 * jittered exponential backoff; the user of the failed query is told so and
 * decides what to retry.  MYSQL_OPT_RECONNECT stays off on purpose: silent
 * reconnects would drop the session settings and any open transaction. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "txnpolicy.h"

struct sk_db;
struct sk_db_conn;

struct sk_db_error {
    enum sk_db_fault fault;
    unsigned code;       /* mysql_errno(), 0 when none */
    unsigned stmt;       /* the statement that failed, counted from 0 as for rows */
    char message[256];   /* mysql_error(), or what the pool saw */
};

/* Called for every row of every result set; stmt counts the statements of
 * the multi-statement query from 0. */
typedef void (*sk_db_row_fn)(void *ud, unsigned stmt, char **row, unsigned long *lengths,
                             unsigned nfields);
/* Called once per query, with err == NULL on success.  The connection is
 * still acquired by the caller; it may run another query on it or release
 * it (also from inside this callback).  On SK_DB_CONN the connection is
 * already being rebuilt: the caller must release it. */
typedef void (*sk_db_done_fn)(void *ud, struct sk_db_conn *c, const struct sk_db_error *err);

/* on_idle runs (from the loop) whenever a connection becomes free. */
int sk_db_new(sd_event *loop, const struct sk_config *cfg, void (*on_idle)(void *ud), void *ud,
              struct sk_db **out);
/* Start connecting every connection of the pool. */
void sk_db_start(struct sk_db *db);
/* Close all idle connections gracefully (non-blocking); busy ones close
 * when released.  on_closed runs once all are down. */
void sk_db_shutdown(struct sk_db *db, void (*on_closed)(void *ud));
void sk_db_free(struct sk_db *db);

struct sk_db_conn *sk_db_acquire(struct sk_db *db); /* NULL when none is idle */
void sk_db_release(struct sk_db_conn *c);
/* Run a (multi-statement) query on an acquired, idle connection.  On any
 * error the pool rolls back an open transaction before reporting it. */
int sk_db_query(struct sk_db_conn *c, const char *sql, size_t len, sk_db_row_fn on_row,
                sk_db_done_fn on_done, void *ud);

int sk_db_conn_id(const struct sk_db_conn *c);
unsigned sk_db_count_up(const struct sk_db *db);   /* IDLE or BUSY */
unsigned sk_db_count_idle(const struct sk_db *db);
unsigned long sk_db_reconnects(const struct sk_db *db);

/* Resolve a host name to a numeric address once, at start-up (the only
 * blocking DNS in the process: Connector/C would resolve synchronously on
 * every reconnect otherwise). */
int sk_db_resolve(const char *host, char *out, size_t outlen, char *err, size_t errlen);
