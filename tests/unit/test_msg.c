/* Unit tests for src/msg.c: a message copies its payload, key and echoed
 * headers into its one allocation and owns them after the sources are gone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "msg.h"

static void copies_everything(void **state)
{
    (void)state;
    char *payload = strdup("{\"game_id\":7}");
    char *key = strdup("7");
    char *name0 = strdup("correlation-id"), *name1 = strdup("sk-sent-ns");
    char *val0 = strdup("abc"), *val1 = strdup("123456789");
    struct sk_hdr in[2] = {{name0, val0, 3}, {name1, val1, 9}};
    struct sk_msg *m = sk_msg_new_copy(NULL, 42, payload, strlen(payload), key, 1, in, 2);
    assert_non_null(m);
    /* the sources go away: the message must not point into them */
    memset(payload, 'x', strlen(payload));
    memset(val0, 'x', 3);
    memset(name1, 'x', strlen(name1));
    free(payload);
    free(key);
    free(name0);
    free(name1);
    free(val0);
    free(val1);
    assert_int_equal(m->offset, 42);
    assert_false(m->raw_null);
    assert_int_equal(m->bytes, 13);
    assert_memory_equal(m->raw, "{\"game_id\":7}", 13);
    assert_int_equal(m->key_len, 1);
    assert_memory_equal(m->key, "7", 1);
    assert_int_equal(m->n_hdrs, 2);
    assert_string_equal(m->hdrs[0].name, "correlation-id");
    assert_int_equal(m->hdrs[0].len, 3);
    assert_memory_equal(m->hdrs[0].value, "abc", 3);
    assert_string_equal(m->hdrs[1].name, "sk-sent-ns");
    assert_int_equal(m->hdrs[1].len, 9);
    assert_memory_equal(m->hdrs[1].value, "123456789", 9);
    sk_msg_free(m);
}

static void tombstone_no_key_empty_header(void **state)
{
    (void)state;
    struct sk_hdr in[1] = {{"correlation-id", "", 0}};
    struct sk_msg *m = sk_msg_new_copy(NULL, 1, NULL, 0, NULL, 0, in, 1);
    assert_non_null(m);
    assert_true(m->raw_null);
    assert_null(m->raw);
    assert_int_equal(m->bytes, 0);
    assert_null(m->key);
    assert_int_equal(m->key_len, 0);
    assert_int_equal(m->n_hdrs, 1);
    assert_string_equal(m->hdrs[0].name, "correlation-id");
    assert_int_equal(m->hdrs[0].len, 0);
    sk_msg_free(m);

    /* an empty payload is not a tombstone */
    m = sk_msg_new_copy(NULL, 2, "", 0, NULL, 0, NULL, 0);
    assert_non_null(m);
    assert_false(m->raw_null);
    assert_int_equal(m->bytes, 0);
    assert_null(m->hdrs);
    sk_msg_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(copies_everything),
        cmocka_unit_test(tombstone_no_key_empty_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
