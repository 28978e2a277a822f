/* db — a pool of non-blocking MariaDB connections driven by sd-event.
 *
 * The pool (src/db.c) owns the connections: which exist, who holds one,
 * when one that went down is opened again and when a free one is pinged.
 * Each connection (include/dbconn.h) does its Connector/C calls through
 * _start/_cont, so no call here ever blocks.  Users see meaning-level
 * events only: "rows of statement k", "query done", "query failed (and
 * why)".
 *
 * A lost connection is closed and rebuilt with jittered exponential backoff
 * (include/backoff.h); the user of the failed query is told so and decides
 * what to retry.  MYSQL_OPT_RECONNECT stays off on purpose: silent
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
    bool timed_out;      /* SK_DB_CONN because the server did not answer within
                            db.query_timeout_ms (the client's read timeout) */
    unsigned stmt;       /* the statement that failed, counted from 0 as for rows */
    char message[256];   /* mysql_error(), or what the pool saw */
};

/* Called for every row of every result set; stmt counts the statements of
 * the multi-statement query from 0. */
typedef void (*sk_db_row_fn)(void *ud, unsigned stmt, char **row, unsigned long *lengths,
                             unsigned nfields);
/* Called once per query, with err == NULL on success.  The connection is
 * still acquired by the caller; it may run another query on it or release
 * it (also from inside this callback).  When sk_db_fault_loses_conn(fault)
 * (SK_DB_CONN, SK_DB_TOO_LARGE) the connection is already being rebuilt:
 * the caller must release it. */
typedef void (*sk_db_done_fn)(void *ud, struct sk_db_conn *c, const struct sk_db_error *err);

/* on_idle runs after a connection became free (connected, released, or
 * back from its idle ping), from a deferred event source of the loop: never
 * from inside sk_db_release or a query callback, so one user's work never
 * starts nested in another's.  Several connections freed in one loop
 * iteration give one call; by the time it runs a connection may have been
 * acquired again, so sk_db_acquire may return NULL.  A released connection
 * is free at once: sk_db_acquire right after sk_db_release returns it
 * without waiting for on_idle.  No call once sk_db_shutdown ran. */
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
/* The session's max_allowed_packet, read when it connected: no statement
 * sent on it may reach it (sk_policy_fits_packet). */
unsigned long sk_db_conn_max_packet(const struct sk_db_conn *c);
/* The connection's TLS in words, see db.tls in scorekeeper.conf(5). */
const char *sk_db_conn_tls(const struct sk_db_conn *c);
/* The smallest max_allowed_packet of the open connections, 0 when none is
 * known: what the batches are cut for. */
unsigned long sk_db_max_packet(const struct sk_db *db);
unsigned sk_db_count_up(const struct sk_db *db); /* open, free or held */
unsigned long sk_db_reconnects(const struct sk_db *db);

/* Why no connection is up, for STATUS=: the host name does not resolve,
 * the server is read-only (not the primary), or none connects; NULL when
 * one is up. */
const char *sk_db_why_down(const struct sk_db *db);
