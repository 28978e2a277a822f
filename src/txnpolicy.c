/* txnpolicy — see include/txnpolicy.h. */
#include "txnpolicy.h"

#include <errmsg.h>
#include <mysqld_error.h>
#include <stddef.h>
#include <stdint.h>

enum sk_db_fault sk_db_classify(unsigned code)
{
    switch (code) {
    case 0:
        return SK_DB_OK;
    case ER_LOCK_DEADLOCK:             /* 1213 */
    case ER_LOCK_WAIT_TIMEOUT:         /* 1205 */
    case ER_STATEMENT_TIMEOUT:         /* 1969 max_statement_time */
    case ER_QUERY_INTERRUPTED:         /* 1317 */
    case ER_CON_COUNT_ERROR:           /* 1040 */
    case ER_LOCK_TABLE_FULL:           /* 1206 */
        return SK_DB_RETRY;
    /* The server is read-only: not (or no longer) the primary.  Retrying
     * on the same server would fail for as long as it stays so; the pool
     * reconnects, to wherever the name points now, and checks @@read_only
     * before it uses a connection. */
    case ER_OPTION_PREVENTS_STATEMENT: /* 1290 --read-only */
    case ER_READ_ONLY_MODE:            /* 1836 */
        return SK_DB_NOT_PRIMARY;
    /* Over max_allowed_packet: the server says so and closes the
     * connection; Connector/C refuses to send one over its own limit. */
    case ER_NET_PACKET_TOO_LARGE: /* 1153 */
    case CR_NET_PACKET_TOO_LARGE: /* 2020 */
        return SK_DB_TOO_LARGE;
    case ER_CONNECTION_KILLED: /* 1927 */
    case ER_SERVER_SHUTDOWN:   /* 1053 */
    case ER_NET_READ_ERROR:
    case ER_NET_READ_INTERRUPTED:
    case ER_NET_ERROR_ON_WRITE:
    case ER_NET_WRITE_INTERRUPTED:
    case ER_NET_PACKETS_OUT_OF_ORDER:
    case CR_ERR_NET_READ:       /* 5013: Connector/C's own codes for a broken socket */
    case CR_ERR_NET_WRITE:      /* 5014 */
    case CR_ERR_NET_UNCOMPRESS: /* 5015 */
        return SK_DB_CONN;
    /* The server refused a value: this belongs to the data of an event. */
    case ER_DUP_ENTRY:                       /* 1062 */
    case ER_BAD_NULL_ERROR:                  /* 1048 */
    case ER_WARN_DATA_OUT_OF_RANGE:          /* 1264 */
    case ER_DATA_TOO_LONG:                   /* 1406 */
    case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: /* 1366 */
    case ER_TRUNCATED_WRONG_VALUE:           /* 1292 */
    case ER_NO_REFERENCED_ROW_2:             /* 1452 */
    case ER_ROW_IS_REFERENCED_2:             /* 1451: a row of another table refers to
                                                the user a tombstone deletes */
    case ER_DATA_OUT_OF_RANGE:               /* 1690 */
    case ER_CONSTRAINT_FAILED:               /* 4025 */
        return SK_DB_DATA;
    default:
        break;
    }
    if (code >= CR_MIN_ERROR && code <= CR_MAX_ERROR)
        return SK_DB_CONN; /* every client-side error: lost, timeout, out of sync */
    return SK_DB_OTHER;
}

bool sk_db_fault_loses_conn(enum sk_db_fault f)
{
    return f == SK_DB_CONN || f == SK_DB_TOO_LARGE || f == SK_DB_NOT_PRIMARY;
}

/* A tenth of the timeout, at most a second, is left between the server's
 * limit and the client's. */
unsigned sk_policy_statement_ms(unsigned query_timeout_ms)
{
    unsigned margin = query_timeout_ms / 10;
    if (margin > 1000)
        margin = 1000;
    return query_timeout_ms - margin;
}

/* The packet holds the command byte and the SQL; the server refuses one
 * that reaches max_allowed_packet.  A few bytes more are kept free. */
#define PACKET_SLACK 64u

bool sk_policy_fits_packet(size_t sql_len, unsigned long max_packet)
{
    return max_packet == 0 || sql_len + PACKET_SLACK <= max_packet;
}

/* A transaction's SQL is a fixed part (START TRANSACTION, the lookups'
 * frame, COMMIT: under 2 KiB) and, per event, its names quoted about three
 * times (users, players, lookups) with escaping: a quarter of what is left
 * of the packet is a safe share for the payload. */
#define SQL_FIXED 2048u
#define SQL_PER_PAYLOAD 4u

size_t sk_policy_packet_payload(unsigned long max_packet)
{
    if (max_packet == 0)
        return SIZE_MAX;
    if (max_packet <= SQL_FIXED + SQL_PER_PAYLOAD)
        return 1; /* one event per batch; measuring decides the rest */
    return (max_packet - SQL_FIXED) / SQL_PER_PAYLOAD;
}

/* The one-round-trip statements fail on purpose: the game_offsets upsert
 * sets NULL when a game's applied offsets moved, and the guard on score * 4
 * overflows for a score near the BIGINT edge.  A NULL refused elsewhere in
 * that transaction is not expected (every player is written by id); it too
 * sends the attempt to the read path rather than rejecting events. */
const char *sk_policy_one_trip_guard(unsigned code, bool in_mark_check)
{
    if (code == ER_DATA_OUT_OF_RANGE)
        return "a score is too close to the BIGINT edge to add in SQL";
    if (code != ER_BAD_NULL_ERROR)
        return NULL;
    return in_mark_check ? "the applied offsets of a game moved" : "a user is gone";
}

#define USER_GONE_RETRIES 3u

enum sk_txn_action sk_policy_decide(const struct sk_txn_failure *f)
{
    if (f->one_trip_guard)
        return SK_TXN_READ_FIRST;
    /* A user id the daemon remembered no longer exists (deleted from
     * outside, or by a tombstone on another connection), or the user was
     * deleted between reading its id and writing its score: the ids are
     * read from the database again.  A few times only when none was
     * remembered, so that a foreign key failing for another reason still
     * ends as refused data. */
    if (f->code == ER_NO_REFERENCED_ROW_2 && (f->knows_users || f->attempt < USER_GONE_RETRIES))
        return SK_TXN_FORGET_USERS;
    switch (f->fault) {
    case SK_DB_DATA:
    case SK_DB_TOO_LARGE:
        /* Poison isolation: which game, then which event.  A statement
         * over max_allowed_packet is made smaller the same way: fewer
         * games, then fewer events; one event alone that still does not
         * fit can never be applied. */
        if (f->games > 1)
            return SK_TXN_GAMES_APART;
        return f->events > 1 ? SK_TXN_SPLIT : SK_TXN_REJECT;
    case SK_DB_CONN:
        /* A connection that broke: run again at once on another.  One the
         * client gave up on because the server did not answer in time: the
         * server may still be working on it (holding its game's lock), so
         * running it again at once would only queue behind it. */
        return f->timed_out ? SK_TXN_BACKOFF : SK_TXN_RECONNECT;
    case SK_DB_NOT_PRIMARY:
        /* Nothing was committed (the session ends, the server rolls back).
         * The pool hands out no connection until one reaches a writable
         * server, so waiting for the next free one is the backoff. */
        return SK_TXN_RECONNECT;
    case SK_DB_RETRY:
        /* Only the game that met the lock should wait for it. */
        return f->games > 1 ? SK_TXN_RUN_APART : SK_TXN_BACKOFF;
    case SK_DB_OTHER:
    case SK_DB_OK:
        break;
    }
    return SK_TXN_BACKOFF;
}

const char *sk_txn_action_name(enum sk_txn_action a)
{
    static const char *const names[] = {
        [SK_TXN_READ_FIRST] = "read_first", [SK_TXN_FORGET_USERS] = "forget_users",
        [SK_TXN_GAMES_APART] = "games_apart", [SK_TXN_SPLIT] = "split",
        [SK_TXN_REJECT] = "reject",           [SK_TXN_RECONNECT] = "reconnect",
        [SK_TXN_RUN_APART] = "run_apart",     [SK_TXN_BACKOFF] = "backoff",
    };
    return (unsigned)a < sizeof names / sizeof *names && names[a] ? names[a] : "?";
}
