/* txnpolicy — the rules of the transaction module, as pure functions:
 * what every MariaDB error code means, and what a failed transaction does
 * next (retry, run its games apart, split its batch, reject one event).
 *
 * The only place that knows error numbers.  The connection pool asks it
 * whether an error lost the connection; the transaction module asks it
 * what to do with the batches of a failed attempt.  Nothing here touches
 * a connection, a queue or a clock, so the unit tests drive every branch. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* What a failure means for the caller. */
enum sk_db_fault {
    SK_DB_OK = 0,
    SK_DB_RETRY, /* deadlock, lock wait timeout, statement timeout: rolled back, retry later */
    SK_DB_CONN,  /* connection lost or timed out: it is being rebuilt, retry on another */
    SK_DB_DATA,  /* the server refused the statement for its data (poison candidate) */
    SK_DB_OTHER, /* anything else (permissions, missing table, ...): retry with backoff */
    SK_DB_TOO_LARGE, /* the statement is over max_allowed_packet: the server closed the
                        connection; the same SQL would never pass, smaller ones may */
    SK_DB_NOT_PRIMARY, /* the server refuses writes (read-only: a replica, or an old primary
                          after a failover): the pool drops every connection to it and
                          reconnects, resolving the name again; retry on the new one */
};

enum sk_db_fault sk_db_classify(unsigned code);
/* The connection cannot be used after a failure of this kind: it is being
 * closed and rebuilt. */
bool sk_db_fault_loses_conn(enum sk_db_fault f);

/* The server-side limit on one statement (the session's max_statement_time,
 * in ms) for a client read timeout of query_timeout_ms: a little below it,
 * so that the server ends a statement, and lets go of its locks, before
 * the client gives up on the connection. */
unsigned sk_policy_statement_ms(unsigned query_timeout_ms);
/* Whether a statement of sql_len bytes fits a session's max_allowed_packet
 * (0: not known yet, anything fits). */
bool sk_policy_fits_packet(size_t sql_len, unsigned long max_packet);
/* The payload bytes the scheduler may put into one batch, and a shared
 * transaction into its batches, so that their SQL stays well below a
 * max_allowed_packet (0: not known, no limit: SIZE_MAX).  An estimate:
 * building the SQL and measuring it (sk_policy_fits_packet) is the rule. */
size_t sk_policy_packet_payload(unsigned long max_packet);

/* The one-round-trip path's own guards (see include/apply.h): the error a
 * failed attempt on that path raised on purpose, and why, for the log; NULL
 * when the error is not one of them.  in_mark_check: the statement that
 * failed is the one checking the games' applied offsets. */
const char *sk_policy_one_trip_guard(unsigned code, bool in_mark_check);

/* What a failed transaction does next. */
enum sk_txn_action {
    SK_TXN_READ_FIRST,   /* a one-trip guard fired: run again at once on the read path */
    SK_TXN_FORGET_USERS, /* a remembered user id is gone: forget them all, run again at once */
    SK_TXN_GAMES_APART,  /* refused data or too large, in a shared transaction: each game
                            alone, at once */
    SK_TXN_SPLIT,        /* refused data or too large, one game's batch: halve it, at once */
    SK_TXN_REJECT,       /* refused data or too large, one event alone: reject it, the rest
                            goes on */
    SK_TXN_RECONNECT,    /* connection lost, or the server is not the primary: run again
                            on the next free connection (the pool rebuilds them) */
    SK_TXN_RUN_APART,    /* a lock in a shared transaction: games apart, solo for a while */
    SK_TXN_BACKOFF,      /* anything else, and a statement the server did not answer in
                            time: wait (sk_backoff_ms), then run again */
};

struct sk_txn_failure {
    enum sk_db_fault fault;
    unsigned code;        /* server or client error number */
    bool timed_out;       /* the client gave up waiting for the server's answer */
    bool one_trip_guard;  /* sk_policy_one_trip_guard() named it */
    unsigned games;       /* batches in the transaction (1: one game, or the users batch) */
    unsigned events;      /* events in its first batch */
    bool knows_users;     /* user ids are remembered (sent without a lookup) */
    unsigned attempt;     /* failed attempts of its batches before this one (the most) */
};

enum sk_txn_action sk_policy_decide(const struct sk_txn_failure *f);
const char *sk_txn_action_name(enum sk_txn_action a);
