/* Unit tests for src/buf.c: growth, JSON and SQL string literals, integers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "buf.h"

static void basics(void **state)
{
    (void)state;
    struct sk_buf b;
    sk_buf_init(&b);
    assert_string_equal(sk_buf_cstr(&b), "");
    for (int i = 0; i < 1000; i++)
        sk_buf_puts(&b, "0123456789");
    assert_int_equal(b.len, 10000);
    assert_false(sk_buf_failed(&b));
    assert_int_equal(strlen(sk_buf_cstr(&b)), 10000);
    sk_buf_reset(&b);
    assert_string_equal(sk_buf_cstr(&b), "");
    sk_buf_printf(&b, "%s=%d", "n", 42);
    sk_buf_putc(&b, '!');
    assert_string_equal(sk_buf_cstr(&b), "n=42!");
    sk_buf_append(&b, "x\0y", 3);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.p, "n=42!x\0y", 8);
    assert_false(sk_buf_reserve(&b, SIZE_MAX));
    assert_true(sk_buf_failed(&b));
    assert_string_equal(sk_buf_cstr(&b), "");
    sk_buf_free(&b);
}

static const char *i64(struct sk_buf *b, int64_t v)
{
    sk_buf_reset(b);
    sk_buf_i64(b, v);
    return sk_buf_cstr(b);
}

static void integers(void **state)
{
    (void)state;
    struct sk_buf b;
    sk_buf_init(&b);
    assert_string_equal(i64(&b, 0), "0");
    assert_string_equal(i64(&b, -1), "-1");
    assert_string_equal(i64(&b, 42), "42");
    assert_string_equal(i64(&b, INT64_MAX), "9223372036854775807");
    assert_string_equal(i64(&b, INT64_MIN), "-9223372036854775808");
    assert_string_equal(i64(&b, -9007199254740991), "-9007199254740991");
    sk_buf_free(&b);
}

static const char *js(struct sk_buf *b, const char *s, size_t n)
{
    sk_buf_reset(b);
    sk_buf_json_str(b, s, n);
    return sk_buf_cstr(b);
}

static void json_strings(void **state)
{
    (void)state;
    struct sk_buf b;
    sk_buf_init(&b);
    assert_string_equal(js(&b, "", 0), "\"\"");
    assert_string_equal(js(&b, "alice", 5), "\"alice\"");
    assert_string_equal(js(&b, "a\"b\\c/d", 7), "\"a\\\"b\\\\c/d\"");
    assert_string_equal(js(&b, "\n\r\t\b\f", 5), "\"\\n\\r\\t\\u0008\\u000c\"");
    assert_string_equal(js(&b, "\x01\x1f\x7f", 3), "\"\\u0001\\u001f\\u007f\"");
    assert_string_equal(js(&b, "a\0b", 3), "\"a\\u0000b\"");
    assert_string_equal(js(&b, "\xC3\xA9\xF0\x9F\x98\x80", 6), "\"\xC3\xA9\xF0\x9F\x98\x80\"");
    assert_string_equal(js(&b, "it's", 4), "\"it's\"");
    sk_buf_free(&b);
}

static const char *sql(struct sk_buf *b, const char *s, size_t n)
{
    sk_buf_reset(b);
    sk_buf_sql_str(b, s, n);
    return sk_buf_cstr(b);
}

static void sql_strings(void **state)
{
    (void)state;
    struct sk_buf b;
    sk_buf_init(&b);
    assert_string_equal(sql(&b, "", 0), "''");
    assert_string_equal(sql(&b, "alice", 5), "'alice'");
    const char *evil = "alice'; DROP TABLE users; --";
    assert_string_equal(sql(&b, evil, strlen(evil)), "'alice\\'; DROP TABLE users; --'");
    assert_string_equal(sql(&b, "a\\'b", 4), "'a\\\\\\'b'");
    assert_string_equal(sql(&b, "\\", 1), "'\\\\'");
    sk_buf_reset(&b);
    sk_buf_sql_str(&b, "a\0b\n\r\x1a\"", 7);
    assert_int_equal(b.len, 13);
    assert_memory_equal(b.p, "'a\\0b\\n\\r\\Z\"'", 13);
    assert_string_equal(sql(&b, "\xC3\xA9\xE5\x95\x8A'", 6), "'\xC3\xA9\xE5\x95\x8A\\''");
    sk_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(basics),
        cmocka_unit_test(integers),
        cmocka_unit_test(json_strings),
        cmocka_unit_test(sql_strings),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
