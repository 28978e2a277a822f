/* Unit tests: the transaction policy (txnpolicy) — what every MariaDB and
 * Connector/C error number means, the one-trip path's guards, and the
 * action a failed transaction takes next, branch by branch.  The codes are
 * written as numbers on purpose: the test checks the macros too.
 * */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "txnpolicy.h"

struct code_case {
    unsigned code;
    enum sk_db_fault want;
    const char *what;
};

static void check_codes(const struct code_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        enum sk_db_fault got = sk_db_classify(c[i].code);
        if (got != c[i].want)
            fail_msg("sk_db_classify(%u) (%s) = %d, want %d", c[i].code, c[i].what, (int)got,
                     (int)c[i].want);
    }
}

/* ------------------------------------------------------------ classify */

static void transient_errors_are_retried(void **state)
{
    (void)state;
    static const struct code_case c[] = {
        {1213, SK_DB_RETRY, "deadlock"},
        {1205, SK_DB_RETRY, "lock wait timeout"},
        {1969, SK_DB_RETRY, "max_statement_time"},
        {1317, SK_DB_RETRY, "query interrupted"},
        {1040, SK_DB_RETRY, "too many connections"},
        {1206, SK_DB_RETRY, "lock table full"},
    };
    check_codes(c, sizeof c / sizeof *c);
}

static void lost_connections(void **state)
{
    (void)state;
    static const struct code_case c[] = {
        {1927, SK_DB_CONN, "connection killed"},
        {1053, SK_DB_CONN, "server shutdown"},
        {1158, SK_DB_CONN, "net read error"},
        {1159, SK_DB_CONN, "net read interrupted"},
        {1160, SK_DB_CONN, "net error on write"},
        {1161, SK_DB_CONN, "net write interrupted"},
        {1156, SK_DB_CONN, "packets out of order"},
        {2006, SK_DB_CONN, "server gone away"},
        {2013, SK_DB_CONN, "lost during query"},
        {2002, SK_DB_CONN, "cannot connect (socket)"},
        {2014, SK_DB_CONN, "commands out of sync"},
    };
    check_codes(c, sizeof c / sizeof *c);
}

/* A read-only server is not the primary (a replica, or the old primary
 * after a failover): retrying on it would fail for as long as it stays so.
 * The connection goes, like a lost one; the pool reconnects. */
static void read_only_is_not_the_primary(void **state)
{
    (void)state;
    static const struct code_case c[] = {
        {1290, SK_DB_NOT_PRIMARY, "--read-only"},
        {1836, SK_DB_NOT_PRIMARY, "running in read-only mode"},
    };
    check_codes(c, sizeof c / sizeof *c);
    assert_true(sk_db_fault_loses_conn(SK_DB_NOT_PRIMARY));
}

/* Every client-side error (2000..2999) means the connection is unusable;
 * the numbers just outside the range are not client errors.  2020 (packet
 * too large) loses it too, but says more (below). */
static void client_error_range(void **state)
{
    (void)state;
    for (unsigned code = 2000; code <= 2999; code++) {
        if (!sk_db_fault_loses_conn(sk_db_classify(code)))
            fail_msg("client error %u keeps the connection", code);
        if (code != 2020 && sk_db_classify(code) != SK_DB_CONN)
            fail_msg("client error %u is not SK_DB_CONN", code);
    }
    assert_int_equal(sk_db_classify(1999), SK_DB_OTHER);
    assert_int_equal(sk_db_classify(3000), SK_DB_OTHER);
}

static void data_errors_belong_to_events(void **state)
{
    (void)state;
    static const struct code_case c[] = {
        {1062, SK_DB_DATA, "duplicate entry"},
        {1048, SK_DB_DATA, "column cannot be NULL"},
        {1264, SK_DB_DATA, "out of range value"},
        {1406, SK_DB_DATA, "data too long"},
        {1366, SK_DB_DATA, "incorrect string value"},
        {1292, SK_DB_DATA, "truncated wrong value"},
        {1452, SK_DB_DATA, "foreign key: no referenced row"},
        {1451, SK_DB_DATA, "foreign key: a row of another table refers to a deleted user"},
        {1690, SK_DB_DATA, "BIGINT value out of range"},
        {4025, SK_DB_DATA, "CHECK constraint failed"},
    };
    check_codes(c, sizeof c / sizeof *c);
}

/* Configuration faults must never be mistaken for poison: rejecting
 * events because a grant is missing would lose them. */
static void configuration_faults_are_not_poison(void **state)
{
    (void)state;
    static const struct code_case c[] = {
        {1142, SK_DB_OTHER, "command denied"},
        {1146, SK_DB_OTHER, "no such table"},
        {1064, SK_DB_OTHER, "syntax error: our bug"},
        {1045, SK_DB_OTHER, "access denied"},
        {1054, SK_DB_OTHER, "unknown column"},
        {1, SK_DB_OTHER, "not a known number"},
        {0xFFFFFFFFu, SK_DB_OTHER, "not a known number"},
        {0, SK_DB_OK, "no error"},
    };
    check_codes(c, sizeof c / sizeof *c);
}

/* Connector/C's own range (CER_MIN_ERROR 5000..5999) holds read and write
 * errors on the socket (CR_ERR_NET_READ 5013, CR_ERR_NET_WRITE 5014,
 * uncompress 5015); libmariadb 3.3 raises 5014.  Classified OTHER, the
 * connection would be kept and retried with backoff instead of rebuilt. */
static void connector_net_errors_lose_the_connection(void **state)
{
    (void)state;
    assert_int_equal(sk_db_classify(5013), SK_DB_CONN);
    assert_int_equal(sk_db_classify(5014), SK_DB_CONN);
    assert_int_equal(sk_db_classify(5015), SK_DB_CONN);
}

/* Over max_allowed_packet, said by the server (1153, then it closes the
 * connection) or by Connector/C (2020): the same SQL would never pass. */
static void packet_too_large(void **state)
{
    (void)state;
    assert_int_equal(sk_db_classify(1153), SK_DB_TOO_LARGE);
    assert_int_equal(sk_db_classify(2020), SK_DB_TOO_LARGE);
    assert_true(sk_db_fault_loses_conn(SK_DB_TOO_LARGE));
    assert_true(sk_db_fault_loses_conn(SK_DB_CONN));
    assert_false(sk_db_fault_loses_conn(SK_DB_OK));
    assert_false(sk_db_fault_loses_conn(SK_DB_RETRY));
    assert_false(sk_db_fault_loses_conn(SK_DB_DATA));
    assert_false(sk_db_fault_loses_conn(SK_DB_OTHER));
}

/* -------------------------------------------------------- session limits */

/* The server's statement limit is a little below the client's read
 * timeout: a tenth of it, at most a second. */
static void statement_limit_below_read_timeout(void **state)
{
    (void)state;
    assert_int_equal(sk_policy_statement_ms(30000), 29000);
    assert_int_equal(sk_policy_statement_ms(10000), 9000);
    assert_int_equal(sk_policy_statement_ms(5000), 4500);
    assert_int_equal(sk_policy_statement_ms(1000), 900);
    assert_int_equal(sk_policy_statement_ms(100), 90);
    assert_int_equal(sk_policy_statement_ms(3600000), 3599000);
    for (unsigned ms = 100; ms <= 3600000; ms += 997) {
        unsigned s = sk_policy_statement_ms(ms);
        if (s >= ms || s + 1000 < ms || s == 0)
            fail_msg("statement limit %u ms for a read timeout of %u ms", s, ms);
    }
}

static void packet_fit(void **state)
{
    (void)state;
    /* not known yet: anything goes */
    assert_true(sk_policy_fits_packet(100000000, 0));
    /* the command byte and some slack stay free */
    assert_true(sk_policy_fits_packet(16384 - 64, 16384));
    assert_false(sk_policy_fits_packet(16384 - 63, 16384));
    assert_false(sk_policy_fits_packet(16384, 16384));
    assert_false(sk_policy_fits_packet(1000, 1024));
    assert_true(sk_policy_fits_packet(1 << 20, 16u << 20));
}

static void packet_payload_share(void **state)
{
    (void)state;
    assert_true(sk_policy_packet_payload(0) == SIZE_MAX);
    /* the smallest max_allowed_packet: one event a batch */
    assert_int_equal(sk_policy_packet_payload(1024), 1);
    assert_int_equal(sk_policy_packet_payload(16384), (16384 - 2048) / 4);
    /* the default 16 MiB is far above the default batch.max_bytes (1 MiB) */
    assert_true(sk_policy_packet_payload(16u << 20) > (1u << 20));
    /* never more than the packet, and growing with it */
    size_t last = 0;
    for (unsigned long p = 1024; p <= (1ul << 30); p *= 2) {
        size_t got = sk_policy_packet_payload(p);
        if (got >= p || got < last)
            fail_msg("payload share %zu for max_allowed_packet %lu", got, p);
        last = got;
    }
}

/* ---------------------------------------------------------- one-trip guard */

static void one_trip_guard(void **state)
{
    (void)state;
    const char *s;
    /* NULL into game_offsets: the statement checking the marks */
    s = sk_policy_one_trip_guard(1048, true);
    assert_non_null(s);
    assert_non_null(strstr(s, "offsets"));
    /* NULL elsewhere: a user id lookup found no row */
    s = sk_policy_one_trip_guard(1048, false);
    assert_non_null(s);
    assert_non_null(strstr(s, "user"));
    /* the score * 4 overflow guard, whichever statement */
    s = sk_policy_one_trip_guard(1690, false);
    assert_non_null(s);
    assert_non_null(strstr(s, "BIGINT"));
    assert_string_equal(sk_policy_one_trip_guard(1690, true), s);
    /* anything else is not a guard, in or out of the mark check */
    static const unsigned others[] = {0, 1062, 1264, 1406, 1452, 4025, 1213, 2013, 1146};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        assert_null(sk_policy_one_trip_guard(others[i], false));
        assert_null(sk_policy_one_trip_guard(others[i], true));
    }
}

/* -------------------------------------------------------------- decide */

static enum sk_txn_action decide_timed(enum sk_db_fault fault, unsigned code, bool timed_out,
                                       bool guard, unsigned games, unsigned events,
                                       bool knows_users)
{
    struct sk_txn_failure f = {.fault = fault,
                               .code = code,
                               .timed_out = timed_out,
                               .one_trip_guard = guard,
                               .games = games,
                               .events = events,
                               .knows_users = knows_users};
    return sk_policy_decide(&f);
}

static enum sk_txn_action decide(enum sk_db_fault fault, unsigned code, bool guard, unsigned games,
                                 unsigned events, bool knows_users)
{
    return decide_timed(fault, code, false, guard, games, events, knows_users);
}

#define assert_action(got, want)                                                                   \
    assert_string_equal(sk_txn_action_name(got), sk_txn_action_name(want))

/* A guard fired: the read path runs at once, whatever else holds. */
static void guard_reads_first(void **state)
{
    (void)state;
    assert_action(decide(SK_DB_DATA, 1048, true, 1, 1, false), SK_TXN_READ_FIRST);
    assert_action(decide(SK_DB_DATA, 1690, true, 5, 40, true), SK_TXN_READ_FIRST);
    /* the guard wins over every fault, even a lost connection or a 1452
     * with known users (combinations the daemon does not produce today) */
    assert_action(decide(SK_DB_CONN, 2013, true, 1, 1, false), SK_TXN_READ_FIRST);
    assert_action(decide(SK_DB_RETRY, 1213, true, 3, 1, false), SK_TXN_READ_FIRST);
    assert_action(decide(SK_DB_DATA, 1452, true, 1, 1, true), SK_TXN_READ_FIRST);
    assert_action(decide(SK_DB_OTHER, 1146, true, 1, 1, false), SK_TXN_READ_FIRST);
}

/* 1452 with remembered user ids: a user was deleted behind our back; the
 * ids are forgotten and the same transaction runs again (not poison). */
static void fk_with_known_users_forgets_them(void **state)
{
    (void)state;
    assert_action(decide(SK_DB_DATA, 1452, false, 1, 1, true), SK_TXN_FORGET_USERS);
    assert_action(decide(SK_DB_DATA, 1452, false, 4, 20, true), SK_TXN_FORGET_USERS);
    assert_action(decide(SK_DB_DATA, 1452, false, 1, 20, true), SK_TXN_FORGET_USERS);
}

/* 1452 without remembered ids: a user deleted (by a tombstone on another
 * connection) between reading its id and writing its score; the ids are
 * read again, a few times; after that it is ordinary poison, isolated like
 * any other refused value. */
static void fk_without_known_users_is_data(void **state)
{
    (void)state;
    struct sk_txn_failure f = {.fault = SK_DB_DATA, .code = 1452, .games = 4, .events = 20};
    for (f.attempt = 0; f.attempt < 3; f.attempt++)
        assert_action(sk_policy_decide(&f), SK_TXN_FORGET_USERS);
    assert_action(sk_policy_decide(&f), SK_TXN_GAMES_APART);
    f.games = 1;
    assert_action(sk_policy_decide(&f), SK_TXN_SPLIT);
    f.events = 1;
    assert_action(sk_policy_decide(&f), SK_TXN_REJECT);
    /* remembered ids: always read again */
    f.knows_users = true;
    f.attempt = 50;
    assert_action(sk_policy_decide(&f), SK_TXN_FORGET_USERS);
}

/* Known users only matter for 1452: other data errors ignore them. */
static void known_users_only_matter_for_1452(void **state)
{
    (void)state;
    assert_action(decide(SK_DB_DATA, 1062, false, 1, 1, true), SK_TXN_REJECT);
    assert_action(decide(SK_DB_DATA, 1406, false, 2, 1, true), SK_TXN_GAMES_APART);
    assert_action(decide(SK_DB_RETRY, 1213, false, 1, 5, true), SK_TXN_BACKOFF);
    assert_action(decide(SK_DB_CONN, 2006, false, 1, 5, true), SK_TXN_RECONNECT);
}

/* Poison isolation: which game first, then which event. */
static void data_error_isolation(void **state)
{
    (void)state;
    /* shared transaction: every game alone, even if each holds one event */
    assert_action(decide(SK_DB_DATA, 1406, false, 2, 1, false), SK_TXN_GAMES_APART);
    assert_action(decide(SK_DB_DATA, 1406, false, 50, 500, false), SK_TXN_GAMES_APART);
    /* one game, many events: halve it */
    assert_action(decide(SK_DB_DATA, 1406, false, 1, 2, false), SK_TXN_SPLIT);
    assert_action(decide(SK_DB_DATA, 1264, false, 1, 500, false), SK_TXN_SPLIT);
    /* one game, one event: that event is the poison */
    assert_action(decide(SK_DB_DATA, 1406, false, 1, 1, false), SK_TXN_REJECT);
    assert_action(decide(SK_DB_DATA, 4025, false, 1, 1, false), SK_TXN_REJECT);
}

static void lost_connection_reconnects(void **state)
{
    (void)state;
    assert_action(decide(SK_DB_CONN, 2013, false, 1, 1, false), SK_TXN_RECONNECT);
    assert_action(decide(SK_DB_CONN, 1927, false, 7, 100, false), SK_TXN_RECONNECT);
    assert_action(decide(SK_DB_CONN, 2006, false, 1, 100, true), SK_TXN_RECONNECT);
}

/* Not the primary: nothing was committed; run again on the next free
 * connection, which the pool hands out only once one reached a writable
 * server.  Never split, rejected or run apart: the events are not at
 * fault, and neither is a lock. */
static void not_primary_waits_for_a_connection(void **state)
{
    (void)state;
    assert_action(decide(SK_DB_NOT_PRIMARY, 1290, false, 1, 1, false), SK_TXN_RECONNECT);
    assert_action(decide(SK_DB_NOT_PRIMARY, 1290, false, 7, 100, true), SK_TXN_RECONNECT);
    assert_action(decide(SK_DB_NOT_PRIMARY, 1836, false, 1, 40, false), SK_TXN_RECONNECT);
    assert_action(decide_timed(SK_DB_NOT_PRIMARY, 1290, true, false, 1, 1, false),
                  SK_TXN_RECONNECT);
}

/* The client gave up waiting for an answer (the read timeout): the server
 * may still be running the statement and holding its game's lock, so the
 * transaction backs off instead of running again at once, shared or not.
 * A connection that broke by itself still runs again at once. */
static void timeout_backs_off(void **state)
{
    (void)state;
    assert_action(decide_timed(SK_DB_CONN, 2013, true, false, 1, 1, false), SK_TXN_BACKOFF);
    assert_action(decide_timed(SK_DB_CONN, 2013, true, false, 5, 100, true), SK_TXN_BACKOFF);
    assert_action(decide_timed(SK_DB_CONN, 5014, true, false, 1, 9, false), SK_TXN_BACKOFF);
    assert_action(decide_timed(SK_DB_CONN, 2013, false, false, 1, 1, false), SK_TXN_RECONNECT);
    assert_action(decide_timed(SK_DB_CONN, 1927, false, false, 5, 100, false), SK_TXN_RECONNECT);
    /* a guard still wins */
    assert_action(decide_timed(SK_DB_CONN, 2013, true, true, 1, 1, false), SK_TXN_READ_FIRST);
}

/* A statement over max_allowed_packet gets smaller: games apart, then
 * halves, then the one event that cannot fit is rejected. */
static void too_large_splits(void **state)
{
    (void)state;
    assert_action(decide(SK_DB_TOO_LARGE, 1153, false, 2, 2, false), SK_TXN_GAMES_APART);
    assert_action(decide(SK_DB_TOO_LARGE, 0, false, 40, 900, true), SK_TXN_GAMES_APART);
    assert_action(decide(SK_DB_TOO_LARGE, 1153, false, 1, 2, false), SK_TXN_SPLIT);
    assert_action(decide(SK_DB_TOO_LARGE, 2020, false, 1, 500, true), SK_TXN_SPLIT);
    assert_action(decide(SK_DB_TOO_LARGE, 1153, false, 1, 1, false), SK_TXN_REJECT);
    /* never the retry-for-ever paths */
    assert_action(decide(sk_db_classify(1153), 1153, false, 1, 3, false), SK_TXN_SPLIT);
    assert_action(decide_timed(SK_DB_TOO_LARGE, 1153, true, false, 1, 3, false), SK_TXN_SPLIT);
}

/* A lock: in a shared transaction only the game that met it should wait;
 * a single game's transaction waits out a backoff. */
static void lock_shared_vs_single(void **state)
{
    (void)state;
    assert_action(decide(SK_DB_RETRY, 1213, false, 2, 1, false), SK_TXN_RUN_APART);
    assert_action(decide(SK_DB_RETRY, 1205, false, 30, 300, false), SK_TXN_RUN_APART);
    assert_action(decide(SK_DB_RETRY, 1213, false, 1, 1, false), SK_TXN_BACKOFF);
    assert_action(decide(SK_DB_RETRY, 1205, false, 1, 400, false), SK_TXN_BACKOFF);
}

static void other_and_ok_back_off(void **state)
{
    (void)state;
    assert_action(decide(SK_DB_OTHER, 1146, false, 1, 1, false), SK_TXN_BACKOFF);
    assert_action(decide(SK_DB_OTHER, 1142, false, 9, 90, true), SK_TXN_BACKOFF);
    assert_action(decide(SK_DB_OK, 0, false, 1, 1, false), SK_TXN_BACKOFF);
    assert_action(decide(SK_DB_OK, 0, false, 3, 30, true), SK_TXN_BACKOFF);
}

/* The decision reads fault, not code (the caller classifies once): what a
 * code means is sk_db_classify's business.  Driven through the classifier,
 * every listed code lands on its expected action for one event alone. */
static void classify_then_decide(void **state)
{
    (void)state;
    static const struct {
        unsigned code;
        enum sk_txn_action want;
    } c[] = {
        {1213, SK_TXN_BACKOFF}, {1205, SK_TXN_BACKOFF},  {2013, SK_TXN_RECONNECT},
        {1927, SK_TXN_RECONNECT}, {1406, SK_TXN_REJECT}, {1452, SK_TXN_FORGET_USERS},
        {1451, SK_TXN_REJECT}, {1290, SK_TXN_RECONNECT},
        {1146, SK_TXN_BACKOFF},  {0, SK_TXN_BACKOFF},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        enum sk_txn_action got = decide(sk_db_classify(c[i].code), c[i].code, false, 1, 1, false);
        if (got != c[i].want)
            fail_msg("code %u: %s, want %s", c[i].code, sk_txn_action_name(got),
                     sk_txn_action_name(c[i].want));
    }
}

static void action_names(void **state)
{
    (void)state;
    assert_string_equal(sk_txn_action_name(SK_TXN_READ_FIRST), "read_first");
    assert_string_equal(sk_txn_action_name(SK_TXN_FORGET_USERS), "forget_users");
    assert_string_equal(sk_txn_action_name(SK_TXN_GAMES_APART), "games_apart");
    assert_string_equal(sk_txn_action_name(SK_TXN_SPLIT), "split");
    assert_string_equal(sk_txn_action_name(SK_TXN_REJECT), "reject");
    assert_string_equal(sk_txn_action_name(SK_TXN_RECONNECT), "reconnect");
    assert_string_equal(sk_txn_action_name(SK_TXN_RUN_APART), "run_apart");
    assert_string_equal(sk_txn_action_name(SK_TXN_BACKOFF), "backoff");
    assert_string_equal(sk_txn_action_name((enum sk_txn_action)(SK_TXN_BACKOFF + 1)), "?");
    assert_string_equal(sk_txn_action_name((enum sk_txn_action)-1), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(transient_errors_are_retried),
        cmocka_unit_test(lost_connections),
        cmocka_unit_test(read_only_is_not_the_primary),
        cmocka_unit_test(client_error_range),
        cmocka_unit_test(data_errors_belong_to_events),
        cmocka_unit_test(configuration_faults_are_not_poison),
        cmocka_unit_test(connector_net_errors_lose_the_connection),
        cmocka_unit_test(packet_too_large),
        cmocka_unit_test(statement_limit_below_read_timeout),
        cmocka_unit_test(packet_fit),
        cmocka_unit_test(packet_payload_share),
        cmocka_unit_test(one_trip_guard),
        cmocka_unit_test(guard_reads_first),
        cmocka_unit_test(fk_with_known_users_forgets_them),
        cmocka_unit_test(fk_without_known_users_is_data),
        cmocka_unit_test(known_users_only_matter_for_1452),
        cmocka_unit_test(data_error_isolation),
        cmocka_unit_test(lost_connection_reconnects),
        cmocka_unit_test(not_primary_waits_for_a_connection),
        cmocka_unit_test(timeout_backs_off),
        cmocka_unit_test(too_large_splits),
        cmocka_unit_test(lock_shared_vs_single),
        cmocka_unit_test(other_and_ok_back_off),
        cmocka_unit_test(classify_then_decide),
        cmocka_unit_test(action_names),
    };
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
