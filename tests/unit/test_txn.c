/* Unit tests: the transaction state machine's transition table (txn).
 *
 * Every state and every pair is checked against the lifecycle in
 * include/txn.h, so a transition added or dropped by mistake fails here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "txn.h"

#define N_STATES (SK_TXN_ST_DONE + 1)

/* The lifecycle, written out pair by pair. */
static bool expected(enum sk_txn_state from, enum sk_txn_state to)
{
    static const struct {
        enum sk_txn_state from, to;
    } ok[] = {
        {SK_TXN_ST_NEW, SK_TXN_ST_FIRST},         /* a connection: the first round trip */
        {SK_TXN_ST_NEW, SK_TXN_ST_DONE},          /* could not start: batches given back */
        {SK_TXN_ST_FIRST, SK_TXN_ST_SECOND},      /* the read path writes */
        {SK_TXN_ST_FIRST, SK_TXN_ST_ROLLBACK},    /* answers that do not add up */
        {SK_TXN_ST_FIRST, SK_TXN_ST_BACKOFF},     /* failed: wait, then again */
        {SK_TXN_ST_FIRST, SK_TXN_ST_DONE},        /* one round trip committed, or given back */
        {SK_TXN_ST_SECOND, SK_TXN_ST_BACKOFF},
        {SK_TXN_ST_SECOND, SK_TXN_ST_DONE},
        {SK_TXN_ST_ROLLBACK, SK_TXN_ST_BACKOFF},
        {SK_TXN_ST_ROLLBACK, SK_TXN_ST_DONE},
        {SK_TXN_ST_BACKOFF, SK_TXN_ST_DONE},      /* the timer gives the batches back */
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (ok[i].from == from && ok[i].to == to)
            return true;
    return false;
}

static void table_matches_lifecycle(void **state)
{
    (void)state;
    for (int f = 0; f < N_STATES; f++)
        for (int t = 0; t < N_STATES; t++)
            if (sk_txn_transition_ok((enum sk_txn_state)f, (enum sk_txn_state)t) !=
                expected((enum sk_txn_state)f, (enum sk_txn_state)t))
                fail_msg("%s -> %s: table says %d", sk_txn_state_name((enum sk_txn_state)f),
                         sk_txn_state_name((enum sk_txn_state)t),
                         sk_txn_transition_ok((enum sk_txn_state)f, (enum sk_txn_state)t));
}

/* No way back: a finished transaction is gone, a state never repeats, and
 * a transaction that waits out a backoff holds no round trip to resume. */
static void no_way_back(void **state)
{
    (void)state;
    for (int t = 0; t < N_STATES; t++) {
        assert_false(sk_txn_transition_ok(SK_TXN_ST_DONE, (enum sk_txn_state)t));
        assert_false(sk_txn_transition_ok((enum sk_txn_state)t, (enum sk_txn_state)t));
        assert_false(sk_txn_transition_ok((enum sk_txn_state)t, SK_TXN_ST_NEW));
    }
    assert_false(sk_txn_transition_ok(SK_TXN_ST_BACKOFF, SK_TXN_ST_FIRST));
    assert_false(sk_txn_transition_ok(SK_TXN_ST_SECOND, SK_TXN_ST_FIRST));
    assert_false(sk_txn_transition_ok(SK_TXN_ST_NEW, SK_TXN_ST_SECOND));
}

/* Out-of-range values are refused and named "?", never read past the table. */
static void out_of_range(void **state)
{
    (void)state;
    assert_false(sk_txn_transition_ok((enum sk_txn_state)N_STATES, SK_TXN_ST_DONE));
    assert_string_equal(sk_txn_state_name((enum sk_txn_state)N_STATES), "?");
    assert_string_equal(sk_txn_state_name(SK_TXN_ST_ROLLBACK), "ROLLBACK");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_matches_lifecycle),
        cmocka_unit_test(no_way_back),
        cmocka_unit_test(out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
