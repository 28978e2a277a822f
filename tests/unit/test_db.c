/* Unit tests: how database errors are classified (pure part of db). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "db.h"

static void transient_errors_are_retried(void **state)
{
    (void)state;
    assert_int_equal(sk_db_classify(1213), SK_DB_RETRY); /* deadlock */
    assert_int_equal(sk_db_classify(1205), SK_DB_RETRY); /* lock wait timeout */
    assert_int_equal(sk_db_classify(1969), SK_DB_RETRY); /* max_statement_time */
    assert_int_equal(sk_db_classify(1290), SK_DB_RETRY); /* read-only */
}

static void lost_connections(void **state)
{
    (void)state;
    assert_int_equal(sk_db_classify(2006), SK_DB_CONN); /* server gone away */
    assert_int_equal(sk_db_classify(2013), SK_DB_CONN); /* lost during query */
    assert_int_equal(sk_db_classify(2002), SK_DB_CONN); /* cannot connect (socket) */
    assert_int_equal(sk_db_classify(1927), SK_DB_CONN); /* connection killed */
    assert_int_equal(sk_db_classify(1053), SK_DB_CONN); /* server shutdown */
}

static void data_errors_belong_to_events(void **state)
{
    (void)state;
    assert_int_equal(sk_db_classify(1406), SK_DB_DATA); /* data too long */
    assert_int_equal(sk_db_classify(1264), SK_DB_DATA); /* out of range */
    assert_int_equal(sk_db_classify(1690), SK_DB_DATA); /* BIGINT value out of range */
    assert_int_equal(sk_db_classify(1366), SK_DB_DATA); /* incorrect string value */
    assert_int_equal(sk_db_classify(1452), SK_DB_DATA); /* foreign key */
}

/* Configuration faults must never be mistaken for poison: rejecting
 * events because a grant is missing would lose them. */
static void configuration_faults_are_not_poison(void **state)
{
    (void)state;
    assert_int_equal(sk_db_classify(1142), SK_DB_OTHER); /* command denied */
    assert_int_equal(sk_db_classify(1146), SK_DB_OTHER); /* no such table */
    assert_int_equal(sk_db_classify(1064), SK_DB_OTHER); /* syntax error: our bug */
    assert_int_equal(sk_db_classify(1045), SK_DB_OTHER); /* access denied */
    assert_int_equal(sk_db_classify(0), SK_DB_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(transient_errors_are_retried),
        cmocka_unit_test(lost_connections),
        cmocka_unit_test(data_errors_belong_to_events),
        cmocka_unit_test(configuration_faults_are_not_poison),
    };
    return cmocka_run_group_tests_name("db", tests, NULL, NULL);
}
