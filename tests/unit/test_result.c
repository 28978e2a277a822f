/* Unit tests for src/result.c: exact result-event JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "result.h"

static const char *render(struct sk_buf *b, const struct sk_result *r)
{
    sk_buf_reset(b);
    sk_result_json(b, r);
    assert_false(sk_buf_failed(b));
    return sk_buf_cstr(b);
}

static void score_applied(void **state)
{
    (void)state;
    struct sk_buf b;
    sk_buf_init(&b);
    struct sk_result r = {.status = SK_ST_APPLIED, .event_id = "s-99", .event_id_len = 4,
                          .topic = "game.scores", .partition = 3, .offset = 1234,
                          .kind = SK_EV_SCORE, .game_id = 42, .user_id = 7,
                          .username = "alice", .username_len = 5, .score = 1700};
    assert_string_equal(render(&b, &r),
                        "{\"event_id\":\"s-99\",\"status\":\"applied\",\"game_id\":42,"
                        "\"user_id\":7,\"username\":\"alice\",\"score\":1700,"
                        "\"source\":{\"topic\":\"game.scores\",\"partition\":3,\"offset\":1234}}");
    r.status = SK_ST_DUPLICATE;
    r.event_id = NULL;
    r.event_id_len = 0;
    r.score = -9007199254740991;
    assert_string_equal(render(&b, &r),
                        "{\"status\":\"duplicate\",\"game_id\":42,"
                        "\"user_id\":7,\"username\":\"alice\",\"score\":-9007199254740991,"
                        "\"source\":{\"topic\":\"game.scores\",\"partition\":3,\"offset\":1234}}");
    sk_buf_free(&b);
}

static void user_applied(void **state)
{
    (void)state;
    struct sk_buf b;
    sk_buf_init(&b);
    struct sk_result r = {.status = SK_ST_APPLIED, .event_id = "u-17", .event_id_len = 4,
                          .topic = "game.users", .partition = 0, .offset = 9,
                          .kind = SK_EV_USER, .user_id = 7, .username = "alice",
                          .username_len = 5, .nick = SK_NICK_SET, .nickname = "Alice",
                          .nickname_len = 5};
    assert_string_equal(render(&b, &r),
                        "{\"event_id\":\"u-17\",\"status\":\"applied\",\"user_id\":7,"
                        "\"username\":\"alice\",\"nickname\":\"Alice\","
                        "\"source\":{\"topic\":\"game.users\",\"partition\":0,\"offset\":9}}");
    r.nick = SK_NICK_NULL;
    assert_string_equal(render(&b, &r),
                        "{\"event_id\":\"u-17\",\"status\":\"applied\",\"user_id\":7,"
                        "\"username\":\"alice\",\"nickname\":null,"
                        "\"source\":{\"topic\":\"game.users\",\"partition\":0,\"offset\":9}}");
    r.nick = SK_NICK_ABSENT;
    assert_string_equal(render(&b, &r),
                        "{\"event_id\":\"u-17\",\"status\":\"applied\",\"user_id\":7,"
                        "\"username\":\"alice\","
                        "\"source\":{\"topic\":\"game.users\",\"partition\":0,\"offset\":9}}");
    /* names are escaped, multibyte passes through */
    r.username = "a\"b\\c\xC3\xA9\x7f";
    r.username_len = strlen(r.username);
    r.nick = SK_NICK_SET;
    r.nickname = "x'; DROP TABLE users; --";
    r.nickname_len = strlen(r.nickname);
    r.offset = INT64_MAX;
    assert_string_equal(render(&b, &r),
                        "{\"event_id\":\"u-17\",\"status\":\"applied\",\"user_id\":7,"
                        "\"username\":\"a\\\"b\\\\c\xC3\xA9\\u007f\","
                        "\"nickname\":\"x'; DROP TABLE users; --\","
                        "\"source\":{\"topic\":\"game.users\",\"partition\":0,"
                        "\"offset\":9223372036854775807}}");
    sk_buf_free(&b);
}

static void rejected(void **state)
{
    (void)state;
    struct sk_buf b;
    sk_buf_init(&b);
    struct sk_result r = {.status = SK_ST_REJECTED, .event_id = "x", .event_id_len = 1,
                          .topic = "game.scores", .partition = 1, .offset = 2,
                          .error = SK_E_WRONG_TYPE,
                          .error_message = "\"delta\" must be an integer, got a string"};
    assert_string_equal(render(&b, &r),
                        "{\"event_id\":\"x\",\"status\":\"rejected\",\"error\":{\"code\":"
                        "\"wrong_type\",\"message\":\"\\\"delta\\\" must be an integer, got a "
                        "string\"},\"source\":{\"topic\":\"game.scores\",\"partition\":1,"
                        "\"offset\":2}}");
    /* no event_id; kind-specific members never appear on rejections */
    r.event_id = NULL;
    r.kind = SK_EV_SCORE;
    r.game_id = 5;
    r.error = SK_E_CONFLICT;
    r.error_message = NULL;
    assert_string_equal(render(&b, &r),
                        "{\"status\":\"rejected\",\"error\":{\"code\":\"conflicting_fields\","
                        "\"message\":\"conflicting_fields\"},\"source\":{\"topic\":"
                        "\"game.scores\",\"partition\":1,\"offset\":2}}");
    /* appends: existing content is kept */
    sk_buf_reset(&b);
    sk_buf_puts(&b, "[");
    r.topic = NULL;
    r.partition = -1;
    r.offset = -1001;
    sk_result_json(&b, &r);
    assert_string_equal(sk_buf_cstr(&b),
                        "[{\"status\":\"rejected\",\"error\":{\"code\":\"conflicting_fields\","
                        "\"message\":\"conflicting_fields\"},\"source\":{\"topic\":\"\","
                        "\"partition\":-1,\"offset\":-1001}}");
    sk_buf_free(&b);
}

/* A user's tombstone: deleted, with the id the user had; not found, or a
 * duplicate whose user is gone since, without one. */
static void user_deleted(void **state)
{
    (void)state;
    struct sk_buf b;
    sk_buf_init(&b);
    struct sk_result r = {.status = SK_ST_DELETED, .topic = "game.users", .partition = 1,
                          .offset = 5, .kind = SK_EV_USER, .user_id = 7, .username = "alice",
                          .username_len = 5};
    assert_string_equal(render(&b, &r),
                        "{\"status\":\"deleted\",\"user_id\":7,\"username\":\"alice\","
                        "\"source\":{\"topic\":\"game.users\",\"partition\":1,\"offset\":5}}");
    r.status = SK_ST_NOT_FOUND;
    r.user_id = 0;
    assert_string_equal(render(&b, &r),
                        "{\"status\":\"not_found\",\"username\":\"alice\","
                        "\"source\":{\"topic\":\"game.users\",\"partition\":1,\"offset\":5}}");
    r.status = SK_ST_DUPLICATE;
    r.kind = SK_EV_SCORE;
    r.game_id = 42;
    assert_string_equal(render(&b, &r),
                        "{\"status\":\"duplicate\",\"game_id\":42,\"username\":\"alice\","
                        "\"score\":0,\"source\":{\"topic\":\"game.users\",\"partition\":1,"
                        "\"offset\":5}}");
    sk_buf_free(&b);
}

static void status_names(void **state)
{
    (void)state;
    assert_string_equal(sk_status_name(SK_ST_APPLIED), "applied");
    assert_string_equal(sk_status_name(SK_ST_REJECTED), "rejected");
    assert_string_equal(sk_status_name(SK_ST_DUPLICATE), "duplicate");
    assert_string_equal(sk_status_name(SK_ST_DELETED), "deleted");
    assert_string_equal(sk_status_name(SK_ST_NOT_FOUND), "not_found");
    assert_string_equal(sk_status_name((enum sk_status)0), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(score_applied),
        cmocka_unit_test(user_applied),
        cmocka_unit_test(rejected),
        cmocka_unit_test(user_deleted),
        cmocka_unit_test(status_names),
    };
    return cmocka_run_group_tests_name("result", tests, NULL, NULL);
}
