/* Unit tests for src/msg.c: a message copies its payload, key and echoed
 * headers into its one allocation and owns them after the sources are gone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
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

/* What backpressure counts for a message covers what it holds: its one
 * allocation, the parsed event and the result, built no larger than
 * allowed for, even when every quoted string needs escaping. */
static void charge_covers_the_result(void **state)
{
    (void)state;
    struct sk_part *p = sk_part_new("game.scores", 0, SK_EV_SCORE, 64);
    assert_non_null(p);
    p->refs = 1;
    char evid[129], user[51], json[512];
    memset(evid, '"', 128);
    evid[128] = '\0';
    memset(user, '\\', 50);
    user[50] = '\0';
    /* the same strings escaped in JSON */
    char qe[257], qu[101];
    for (int i = 0; i < 128; i++)
        qe[2 * i] = '\\', qe[2 * i + 1] = '"';
    qe[256] = '\0';
    for (int i = 0; i < 50; i++)
        qu[2 * i] = '\\', qu[2 * i + 1] = '\\';
    qu[100] = '\0';
    int n = snprintf(json, sizeof json, "{\"event_id\":\"%s\",\"game_id\":9007199254740991,"
                     "\"username\":\"%s\",\"set\":-9007199254740991}", qe, qu);
    assert_true(n > 0 && (size_t)n < sizeof json);
    struct sk_msg *m = sk_msg_new_copy(p, INT64_MAX, json, (size_t)n, "9007199254740991", 16, NULL, 0);
    assert_non_null(m);
    assert_int_equal(m->raw_size, m->bytes);
    struct sk_parse_error err;
    assert_int_equal(sk_event_parse(SK_EV_SCORE, json, (size_t)n, "9007199254740991", 16, NULL,
                                     &m->ev, &err), SK_OK);
    m->parsed = true;
    assert_int_equal(m->ev.event_id_len, 128);
    size_t charge = sk_msg_charge(m);
    m->status = SK_ST_DUPLICATE;
    m->user_id = INT64_MIN;
    m->score = INT64_MIN;
    assert_int_equal(sk_msg_build_result(m), 0);
    size_t held = m->size + (m->ev.event_id_len + m->ev.username_len + 2);
    assert_true(m->result_len > 2 * (128 + 50));
    assert_true(charge >= held + m->result_len + 1);
    /* a rejection's message is quoted too */
    struct sk_msg *r = sk_msg_new_copy(p, 1, "x", 1, NULL, 0, NULL, 0);
    assert_non_null(r);
    char msg[192];
    memset(msg, '"', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    sk_msg_reject(r, SK_E_INVALID_JSON, msg);
    charge = sk_msg_charge(r);
    assert_int_equal(sk_msg_build_result(r), 0);
    assert_true(charge >= r->size + sizeof msg + r->result_len + 1);
    sk_msg_free(r);
    sk_msg_free(m);
    sk_part_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(copies_everything),
        cmocka_unit_test(tombstone_no_key_empty_header),
        cmocka_unit_test(charge_covers_the_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
