/* dbconn — one MariaDB connection driven by sd-event: its readiness layer
 * and its Connector/C state machine.
 *
 * Owns the MYSQL handle, the event source on its socket and the timer that
 * stands for MYSQL_WAIT_TIMEOUT.  Every call goes through Connector/C's
 * _start/_cont pairs: the status they return is handed to the loop, and the
 * call resumes when the socket or that timer fires, so nothing here blocks.
 * The socket is read again after every call, because it can change while
 * connecting.  MYSQL_OPT_RECONNECT stays off: a silent reconnect would drop
 * the session settings and any open transaction.
 *
 * The pool (src/db.c) decides when to connect, to ping and to close,
 * and who holds a connection; it hears back through struct dbconn_events.
 * The user holding a connection hears about its queries through the
 * callbacks of include/db.h. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "db.h"

/* The connection's one state; a state with a call in flight names it. */
enum dbconn_state {
    DBC_DOWN,       /* no session: not connected yet, or closed */
    DBC_CONNECTING, /* mysql_real_connect in flight */
    DBC_IDLE,       /* open and free; the socket is watched so a server closing it is seen */
    DBC_PINGING,    /* mysql_ping in flight on a free connection */
    DBC_HELD,       /* open and acquired by a user, nothing in flight */
    DBC_QUERY,      /* mysql_real_query in flight */
    DBC_STORE,      /* mysql_store_result in flight */
    DBC_NEXT,       /* mysql_next_result in flight */
    DBC_ROLLBACK,   /* mysql_rollback in flight, after a statement failed */
    DBC_CLOSING,    /* mysql_close in flight */
};

struct dbconn_events {
    /* The connection became free by itself (connected, or a ping passed):
     * it is IDLE now. */
    void (*free)(void *owner, struct sk_db_conn *c);
    /* The handle is gone (a connect failed, the connection was lost or
     * closed): it is DOWN now and dbconn_connect may run again. */
    void (*down)(void *owner, struct sk_db_conn *c);
    /* The server is not the primary: a statement was refused as read-only
     * (the query's owner hears of it right after, as SK_DB_NOT_PRIMARY), or
     * a new session found @@read_only on (the connect fails).  The
     * connection closes right after (down follows); called before, and
     * before the query's owner hears of it, so the pool can close the
     * others first. */
    void (*not_primary)(void *owner, struct sk_db_conn *c, const char *why);
};

/* cfg must outlive the connection. */
int dbconn_new(sd_event *loop, const struct sk_config *cfg, int id, const struct dbconn_events *ev,
               void *owner, struct sk_db_conn **out);
/* At exit, after the loop: closes a live handle at once (its socket shut
 * down first, so that cannot wait). */
void dbconn_free(struct sk_db_conn *c);

/* DOWN -> CONNECTING to addr (numeric, resolved by the caller: Connector/C
 * would resolve a name synchronously; copied; NULL with a unix socket),
 * then the session statement (HELD, QUERY...: the session settings,
 * checked, max_allowed_packet read, a read-only server refused); ends in
 * events.free or events.down. */
void dbconn_connect(struct sk_db_conn *c, const char *addr);
/* IDLE -> PINGING; ends in events.free or, when the ping fails, in a
 * logged loss and events.down. */
void dbconn_ping(struct sk_db_conn *c);
/* IDLE -> CLOSING; ends in events.down. */
void dbconn_close(struct sk_db_conn *c);
/* IDLE -> HELD and back; neither calls an event. */
void dbconn_hold(struct sk_db_conn *c);
void dbconn_unhold(struct sk_db_conn *c);
/* HELD -> QUERY; ends in on_done, see sk_db_query in include/db.h. */
void dbconn_query(struct sk_db_conn *c, const char *sql, size_t len, sk_db_row_fn on_row,
                  sk_db_done_fn on_done, void *ud);

enum dbconn_state dbconn_state(const struct sk_db_conn *c);
const char *dbconn_state_name(enum dbconn_state s);
bool dbconn_is_open(const struct sk_db_conn *c); /* a session exists and is not closing */
int dbconn_id(const struct sk_db_conn *c);
/* Where it connects, for the log: the socket path, the address, or the
 * configured host name with the address it resolved to ("name (addr)");
 * buf holds the latter. */
const char *dbconn_where(const struct sk_db_conn *c, char *buf, size_t len);
void *dbconn_owner(const struct sk_db_conn *c);
/* Connects that failed since the last one that worked. */
unsigned dbconn_failures(const struct sk_db_conn *c);
/* Connects that failed plus open connections lost, since dbconn_new. */
unsigned long dbconn_breaks(const struct sk_db_conn *c);
/* The session's max_allowed_packet, read by its session statement; 0 until
 * then. */
unsigned long dbconn_max_packet(const struct sk_db_conn *c);
/* The session's TLS in words ("TLSv1.3 ..., certificate verified for
 * db.example (CA ...)", "not encrypted (db.tls = off)"); "" until
 * connected. */
const char *dbconn_tls_state(const struct sk_db_conn *c);
