/* Unit tests for the event contract: src/event.c, src/jsonscan.c, src/utf8.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "jsonscan.h"
#include "utf8.h"

static struct sk_parse_error err;
static struct sk_event ev;

/* Parse with explicit lengths; keeps ev on success (caller clears). */
static enum sk_reject parse_n(enum sk_event_kind kind, const char *p, size_t len, const char *key,
                              size_t key_len, const struct sk_limits *lim)
{
    struct sk_limits l;
    if (!lim) {
        sk_limits_default(&l);
        lim = &l;
    }
    sk_event_clear(&ev);
    memset(&err, 0x5a, sizeof err); /* the parser must set every field */
    enum sk_reject rc = sk_event_parse(kind, p, len, key, key_len, lim, &ev, &err);
    if (rc != SK_OK) {
        assert_int_equal(err.code, rc);
        /* messages: non-empty, NUL-terminated, valid UTF-8, no controls */
        size_t ml = strnlen(err.message, sizeof err.message);
        assert_true(ml > 0 && ml < sizeof err.message);
        assert_int_equal(sk_utf8_check(err.message, ml, NULL), ml);
        for (size_t i = 0; i < ml; i++)
            assert_true((unsigned char)err.message[i] >= 0x20 && err.message[i] != 0x7f);
        assert_true(strnlen(err.field, sizeof err.field) < sizeof err.field);
        assert_true(strnlen(err.event_id, sizeof err.event_id) < sizeof err.event_id);
        assert_null(ev.mem);
    }
    return rc;
}

/* User event keyed by `key` (NULL: no key). */
static enum sk_reject pu(const char *json, const char *key)
{
    return parse_n(SK_EV_USER, json, strlen(json), key, key ? strlen(key) : 0, NULL);
}

/* Score event keyed by `key`. */
static enum sk_reject ps(const char *json, const char *key)
{
    return parse_n(SK_EV_SCORE, json, strlen(json), key, key ? strlen(key) : 0, NULL);
}

/* A score event whose delta member is `delta` (raw JSON text). */
static enum sk_reject ps_delta(const char *delta)
{
    char buf[512];
    snprintf(buf, sizeof buf, "{\"game_id\":42,\"username\":\"alice\",\"delta\":%s}", delta);
    return ps(buf, "42");
}

static enum sk_reject ps_game_id(const char *game_id, const char *key)
{
    char buf[512];
    snprintf(buf, sizeof buf, "{\"game_id\":%s,\"username\":\"alice\",\"set\":1}", game_id);
    return ps(buf, key);
}

/* A user event whose username (raw JSON string body) is `u`, keyed by
 * `key`, or by u itself when key is NULL. */
static enum sk_reject pu_name(const char *u, const char *key)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "{\"username\":\"%s\"}", u);
    return pu(buf, key ? key : u);
}

static char *rep(char *out, const char *unit, int n)
{
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        strcat(out, unit);
    return out;
}

static int teardown(void **state)
{
    (void)state;
    sk_event_clear(&ev);
    return 0;
}

/* ---- events.unknown_fields, duplicates at every depth, schema_version ---- */

/* An event parsed with events.unknown_fields = ignore. */
static enum sk_reject parse_ignore(enum sk_event_kind kind, const char *json, const char *key)
{
    struct sk_limits l;
    sk_limits_default(&l);
    l.unknown_fields = SK_UNKNOWN_IGNORE;
    return parse_n(kind, json, strlen(json), key, key ? strlen(key) : 0, &l);
}

static enum sk_reject pu_ignore(const char *json, const char *key)
{
    return parse_ignore(SK_EV_USER, json, key);
}

static enum sk_reject ps_ignore(const char *json, const char *key)
{
    return parse_ignore(SK_EV_SCORE, json, key);
}

static void unknown_fields_ignored(void **state)
{
    (void)state;
    /* reject (the default) names the member */
    const char *j = "{\"event_id\":\"s-1\",\"game_id\":42,\"username\":\"a\",\"delta\":5,"
                    "\"client\":{\"v\":[1,\"x\",null]}}";
    assert_int_equal(ps(j, "42"), SK_E_UNKNOWN_FIELD);
    assert_string_equal(err.field, "client");
    assert_string_equal(err.event_id, "s-1");
    /* ignore: the member is skipped, the event applies as without it */
    assert_int_equal(ps_ignore(j, "42"), SK_OK);
    assert_int_equal(ev.game_id, 42);
    assert_int_equal(ev.value, 5);
    assert_string_equal(ev.event_id, "s-1");
    /* members of the other kind are unknown too */
    assert_int_equal(pu_ignore("{\"username\":\"a\",\"game_id\":7,\"nickname\":\"N\"}", "a"), SK_OK);
    assert_string_equal(ev.nickname, "N");
    /* the contract's members are found after any number of unknown ones */
    char buf[4096], *p = buf;
    p += sprintf(p, "{");
    for (int i = 0; i < 100; i++)
        p += sprintf(p, "\"x%d\":%d,", i, i);
    sprintf(p, "\"username\":\"late\",\"nickname\":null,\"event_id\":\"e-9\"}");
    assert_int_equal(pu_ignore(buf, "late"), SK_OK);
    assert_string_equal(ev.username, "late");
    assert_int_equal(ev.nick, SK_NICK_NULL);
    assert_string_equal(ev.event_id, "e-9");
    assert_int_equal(pu(buf, "late"), SK_E_UNKNOWN_FIELD);
    assert_string_equal(err.field, "x0");
    assert_string_equal(err.event_id, "e-9"); /* unambiguous, so echoed */
    /* what is ignored is still checked as JSON */
    assert_int_equal(pu_ignore("{\"username\":\"a\",\"x\":01}", "a"), SK_E_INVALID_JSON);
    assert_int_equal(pu_ignore("{\"username\":\"a\",\"x\":\"\\ud800\"}", "a"), SK_E_INVALID_UTF8);
    assert_int_equal(pu_ignore("{\"username\":\"a\",\"x\":\"\xC0\x80\"}", "a"), SK_E_INVALID_UTF8);
    assert_int_equal(pu_ignore("{\"username\":\"a\",\"x\":[[[[1]]]]}", "a"), SK_E_TOO_DEEP);
    /* ... and the contract's own members are judged as ever */
    assert_int_equal(pu_ignore("{\"username\":5,\"x\":1}", "a"), SK_E_WRONG_TYPE);
    assert_int_equal(pu_ignore("{\"x\":1}", "a"), SK_E_MISSING_FIELD);
    assert_int_equal(ps_ignore("{\"game_id\":1,\"username\":\"a\",\"delta\":1,\"set\":1,\"x\":1}",
                               "1"), SK_E_CONFLICT);
    assert_int_equal(pu_ignore("{\"username\":\"a\",\"x\":1}", "b"), SK_E_KEY_MISMATCH);
}

static void duplicates_everywhere(void **state)
{
    (void)state;
    /* an unknown member twice, with either setting */
    const char *j = "{\"event_id\":\"u-1\",\"username\":\"a\",\"x\":1,\"x\":2}";
    assert_int_equal(pu_ignore(j, "a"), SK_E_DUPLICATE_KEY);
    assert_string_equal(err.field, "x");
    assert_string_equal(err.message, "duplicate member \"x\"");
    assert_string_equal(err.event_id, "u-1");
    assert_int_equal(pu(j, "a"), SK_E_DUPLICATE_KEY);
    /* spelt with an escape */
    assert_int_equal(pu_ignore("{\"username\":\"a\",\"x\\u0079\":1,\"xy\":2}", "a"),
                     SK_E_DUPLICATE_KEY);
    assert_string_equal(err.field, "xy");
    /* in nested objects, at any depth, also inside arrays */
    assert_int_equal(pu_ignore("{\"username\":\"a\",\"x\":{\"k\":1,\"k\":1}}", "a"),
                     SK_E_DUPLICATE_KEY);
    assert_int_equal(pu_ignore("{\"username\":\"a\",\"x\":[{\"k\":1},{\"k\":{\"\\u006b\":1,"
                               "\"k\":2}}]}", "a"), SK_E_DUPLICATE_KEY);
    assert_string_equal(err.field, "k");
    /* the same name in sibling or nested objects is fine */
    assert_int_equal(pu_ignore("{\"username\":\"a\",\"x\":[{\"k\":1},{\"k\":{\"k\":2}}],"
                               "\"k\":{\"username\":1}}", "a"), SK_OK);
    /* a name that differs only after an escaped NUL, or in case */
    assert_int_equal(pu_ignore("{\"username\":\"a\",\"k\\u0000a\":1,\"k\\u0000b\":1,\"K\":1,"
                               "\"k\":1}", "a"), SK_OK);
    /* the event_id used twice is ambiguous: not echoed */
    assert_int_equal(pu_ignore("{\"event_id\":\"a\",\"username\":\"a\",\"event_id\":\"b\"}", "a"),
                     SK_E_DUPLICATE_KEY);
    assert_string_equal(err.event_id, "");
}

static void too_many_members(void **state)
{
    (void)state;
    char buf[8192], *p = buf;
    p += sprintf(p, "{\"username\":\"a\"");
    for (int i = 1; i < SK_JSON_MAX_NAMES; i++)
        p += sprintf(p, ",\"x%d\":0", i);
    sprintf(p, "}");
    assert_int_equal(pu_ignore(buf, "a"), SK_OK); /* exactly the most */
    sprintf(p, ",\"last\":0}");
    assert_int_equal(pu_ignore(buf, "a"), SK_E_TOO_MANY_MEMBERS);
    assert_string_equal(sk_reject_code(err.code), "too_many_members");
    /* the names of closed objects no longer count */
    p = buf;
    p += sprintf(p, "{\"username\":\"a\",\"x\":[");
    for (int i = 0; i < 100; i++)
        p += sprintf(p, "%s{\"a\":1,\"b\":2}", i ? "," : "");
    sprintf(p, "]}");
    assert_int_equal(pu_ignore(buf, "a"), SK_OK);
}

static void schema_version(void **state)
{
    (void)state;
    assert_int_equal(pu("{\"schema_version\":1,\"username\":\"a\"}", "a"), SK_OK);
    assert_int_equal(ps("{\"game_id\":1,\"username\":\"a\",\"set\":1,\"schema_version\":1}", "1"),
                     SK_OK);
    /* another version is refused whatever it holds, before its members are judged */
    assert_int_equal(pu("{\"event_id\":\"v2\",\"username\":{},\"new\":1,\"schema_version\":2}", "a"),
                     SK_E_UNSUPPORTED_VERSION);
    assert_string_equal(err.field, "schema_version");
    assert_string_equal(err.event_id, "v2");
    assert_string_equal(err.message,
                        "\"schema_version\" 2 is not supported: this scorekeeper reads version 1");
    assert_int_equal(pu_ignore("{\"schema_version\":3,\"username\":\"a\"}", "a"),
                     SK_E_UNSUPPORTED_VERSION);
    assert_string_equal(sk_reject_code(SK_E_UNSUPPORTED_VERSION), "unsupported_version");
    assert_int_equal(pu("{\"schema_version\":\"1\",\"username\":\"a\"}", "a"), SK_E_WRONG_TYPE);
    assert_int_equal(pu("{\"schema_version\":1.0,\"username\":\"a\"}", "a"), SK_E_NOT_INTEGER);
    assert_int_equal(pu("{\"schema_version\":0,\"username\":\"a\"}", "a"), SK_E_OUT_OF_RANGE);
    assert_int_equal(pu("{\"schema_version\":null,\"username\":\"a\"}", "a"), SK_E_WRONG_TYPE);
}

/* ---- happy paths ---- */

static void user_event_ok(void **state)
{
    (void)state;
    assert_int_equal(pu("{\"event_id\":\"u-17\",\"username\":\"alice\",\"nickname\":\"Alice\"}",
                        "alice"), SK_OK);
    assert_int_equal(ev.kind, SK_EV_USER);
    assert_string_equal(ev.event_id, "u-17");
    assert_int_equal(ev.event_id_len, 4);
    assert_string_equal(ev.username, "alice");
    assert_int_equal(ev.username_len, 5);
    assert_int_equal(ev.nick, SK_NICK_SET);
    assert_string_equal(ev.nickname, "Alice");
    assert_int_equal(ev.nickname_len, 5);
    assert_non_null(ev.mem);
}

static void user_event_nick_null_absent(void **state)
{
    (void)state;
    assert_int_equal(pu("{\"username\":\"alice\",\"nickname\":null}", "alice"), SK_OK);
    assert_int_equal(ev.nick, SK_NICK_NULL);
    assert_null(ev.nickname);
    assert_int_equal(ev.nickname_len, 0);
    assert_null(ev.event_id);
    assert_int_equal(ev.event_id_len, 0);
    assert_int_equal(pu("{\"username\":\"alice\"}", "alice"), SK_OK);
    assert_int_equal(ev.nick, SK_NICK_ABSENT);
    assert_null(ev.nickname);
}

static void score_event_ok(void **state)
{
    (void)state;
    assert_int_equal(ps("{\"event_id\":\"s-99\",\"game_id\":42,\"game_name\":\"Friday quiz\","
                        "\"username\":\"alice\",\"delta\":500}", "42"), SK_OK);
    assert_int_equal(ev.kind, SK_EV_SCORE);
    assert_string_equal(ev.event_id, "s-99");
    assert_int_equal(ev.game_id, 42);
    assert_string_equal(ev.game_name, "Friday quiz");
    assert_int_equal(ev.game_name_len, 11);
    assert_string_equal(ev.username, "alice");
    assert_int_equal(ev.op, SK_OP_DELTA);
    assert_int_equal(ev.value, 500);

    assert_int_equal(ps(" {\"set\" : 1200 ,\"username\":\"bob\",\"game_id\":7}\r\n\t", "7"), SK_OK);
    assert_int_equal(ev.op, SK_OP_SET);
    assert_int_equal(ev.value, 1200);
    assert_int_equal(ev.game_id, 7);
    assert_null(ev.game_name);
    assert_null(ev.event_id);
}

static void sql_tricks_pass_unchanged(void **state)
{
    (void)state;
    const char *name = "alice'; DROP TABLE users; --";
    char buf[256];
    snprintf(buf, sizeof buf, "{\"username\":\"%s\",\"nickname\":\"O'Brien \\\\ \\\"x\\\" `y` %%s\"}",
             name);
    assert_int_equal(pu(buf, name), SK_OK);
    assert_string_equal(ev.username, name);
    assert_string_equal(ev.nickname, "O'Brien \\ \"x\" `y` %s");
    /* a backslash in a username: the key carries the decoded form */
    assert_int_equal(pu("{\"username\":\"a\\\\b\"}", "a\\b"), SK_OK);
    assert_string_equal(ev.username, "a\\b");
    assert_int_equal(ev.username_len, 3);
}

static void emoji_and_escapes(void **state)
{
    (void)state;
    /* raw 4-byte emoji and the same as a surrogate pair escape */
    assert_int_equal(pu_name("\xF0\x9F\x98\x80 b\xC3\xA9", NULL), SK_OK);
    assert_string_equal(ev.username, "\xF0\x9F\x98\x80 b\xC3\xA9");
    assert_int_equal(pu_name("\\ud83d\\ude00\\u00e9\\/", "\xF0\x9F\x98\x80\xC3\xA9/"), SK_OK);
    assert_string_equal(ev.username, "\xF0\x9F\x98\x80\xC3\xA9/");
    assert_int_equal(ev.username_len, 7);
    /* escaped member names mean the same member */
    assert_int_equal(pu("{\"user\\u006eame\":\"bob\"}", "bob"), SK_OK);
    assert_string_equal(ev.username, "bob");
}

static void utf8_boundaries_in_names(void **state)
{
    (void)state;
    char u[1024];
    assert_int_equal(pu_name(rep(u, "a", 50), NULL), SK_OK);
    assert_int_equal(pu_name(rep(u, "a", 51), NULL), SK_E_TOO_LONG);
    assert_string_equal(err.field, "username");
    assert_string_equal(err.message, "\"username\" is 51 characters, the limit is 50");
    /* characters, not bytes: 50 two-, three- and four-byte characters */
    assert_int_equal(pu_name(rep(u, "\xC3\xA9", 50), NULL), SK_OK);
    assert_int_equal(ev.username_len, 100);
    assert_int_equal(pu_name(rep(u, "\xC3\xA9", 51), NULL), SK_E_TOO_LONG);
    assert_int_equal(pu_name(rep(u, "\xE2\x82\xAC", 50), NULL), SK_OK);
    assert_int_equal(pu_name(rep(u, "\xF0\x9F\x98\x80", 50), NULL), SK_OK);
    assert_int_equal(ev.username_len, 200);
    assert_int_equal(pu_name(rep(u, "\xF0\x9F\x98\x80", 51), NULL), SK_E_TOO_LONG);
    /* escapes count once per character */
    char k[256];
    assert_int_equal(pu_name(rep(u, "\\ud83d\\ude00", 50), rep(k, "\xF0\x9F\x98\x80", 50)),
                     SK_OK);
    assert_int_equal(pu_name(rep(u, "\\u0041", 51), NULL), SK_E_TOO_LONG);
}

static void nickname_rules(void **state)
{
    (void)state;
    char buf[512], n[256];
    snprintf(buf, sizeof buf, "{\"username\":\"a\",\"nickname\":\"%s\"}", rep(n, "\xC3\xA9", 50));
    assert_int_equal(pu(buf, "a"), SK_OK);
    snprintf(buf, sizeof buf, "{\"username\":\"a\",\"nickname\":\"%s\"}", rep(n, "\xC3\xA9", 51));
    assert_int_equal(pu(buf, "a"), SK_E_TOO_LONG);
    assert_string_equal(err.field, "nickname");
    assert_int_equal(pu("{\"username\":\"a\",\"nickname\":\"\"}", "a"), SK_E_EMPTY_STRING);
    assert_int_equal(pu("{\"username\":\"a\",\"nickname\":5}", "a"), SK_E_WRONG_TYPE);
    assert_string_equal(err.message, "\"nickname\" must be a string or null, got an integer");
    assert_int_equal(pu("{\"username\":\"a\",\"nickname\":false}", "a"), SK_E_WRONG_TYPE);
}

static void game_name_rules(void **state)
{
    (void)state;
    char buf[1024], n[512];
    snprintf(buf, sizeof buf, "{\"game_id\":1,\"username\":\"a\",\"set\":0,\"game_name\":\"%s\"}",
             rep(n, "\xE2\x82\xAC", 100));
    assert_int_equal(ps(buf, "1"), SK_OK);
    assert_int_equal(ev.game_name_len, 300);
    snprintf(buf, sizeof buf, "{\"game_id\":1,\"username\":\"a\",\"set\":0,\"game_name\":\"%s\"}",
             rep(n, "x", 101));
    assert_int_equal(ps(buf, "1"), SK_E_TOO_LONG);
    assert_string_equal(err.field, "game_name");
    assert_int_equal(ps("{\"game_id\":1,\"username\":\"a\",\"set\":0,\"game_name\":\"\"}", "1"),
                     SK_E_EMPTY_STRING);
    assert_int_equal(ps("{\"game_id\":1,\"username\":\"a\",\"set\":0,\"game_name\":null}", "1"),
                     SK_E_WRONG_TYPE);
    assert_int_equal(ps("{\"game_id\":1,\"username\":\"a\",\"set\":0,\"game_name\":\"a\\u0085b\"}",
                        "1"), SK_E_CONTROL_CHAR);
}

static void event_id_rules(void **state)
{
    (void)state;
    char buf[1024], id[512];
    snprintf(buf, sizeof buf, "{\"event_id\":\"%s\",\"username\":\"a\"}", rep(id, "x", 128));
    assert_int_equal(pu(buf, "a"), SK_OK);
    assert_int_equal(ev.event_id_len, 128);
    snprintf(buf, sizeof buf, "{\"event_id\":\"%s\",\"username\":\"a\"}", rep(id, "x", 129));
    assert_int_equal(pu(buf, "a"), SK_E_TOO_LONG);
    assert_string_equal(err.event_id, ""); /* not echoed: it is the invalid member */
    assert_int_equal(pu("{\"event_id\":\" !~\",\"username\":\"a\"}", "a"), SK_OK);
    assert_int_equal(pu("{\"event_id\":\"\",\"username\":\"a\"}", "a"), SK_E_EMPTY_STRING);
    assert_int_equal(pu("{\"event_id\":17,\"username\":\"a\"}", "a"), SK_E_WRONG_TYPE);
    assert_int_equal(pu("{\"event_id\":null,\"username\":\"a\"}", "a"), SK_E_WRONG_TYPE);
    assert_int_equal(pu("{\"event_id\":\"a\\tb\",\"username\":\"a\"}", "a"), SK_E_CONTROL_CHAR);
    assert_int_equal(pu("{\"event_id\":\"a\x7f\",\"username\":\"a\"}", "a"), SK_E_CONTROL_CHAR);
    /* printable but not ASCII */
    assert_int_equal(pu("{\"event_id\":\"caf\xC3\xA9\",\"username\":\"a\"}", "a"),
                     SK_E_OUT_OF_RANGE);
    /* the limit is configurable */
    struct sk_limits l;
    sk_limits_default(&l);
    l.max_event_id_len = 3;
    const char *j = "{\"event_id\":\"abcd\",\"username\":\"a\"}";
    assert_int_equal(parse_n(SK_EV_USER, j, strlen(j), "a", 1, &l), SK_E_TOO_LONG);
}

static void event_id_echoed_on_rejection(void **state)
{
    (void)state;
    assert_int_equal(ps("{\"event_id\":\"s-1\",\"game_id\":42,\"username\":\"a\",\"delta\":\"5\"}",
                        "42"), SK_E_WRONG_TYPE);
    assert_string_equal(err.event_id, "s-1");
    assert_string_equal(err.field, "delta");
    assert_string_equal(err.message, "\"delta\" must be an integer, got a string");
    /* echoed even when the error is later in the text or a key error */
    assert_int_equal(ps("{\"game_id\":42,\"username\":\"a\",\"delta\":5,\"event_id\":\"s-2\"}",
                        "41"), SK_E_KEY_MISMATCH);
    assert_string_equal(err.event_id, "s-2");
    /* duplicated event_id: ambiguous, not echoed */
    assert_int_equal(pu("{\"event_id\":\"a\",\"event_id\":\"b\",\"username\":\"a\"}", "a"),
                     SK_E_DUPLICATE_KEY);
    assert_string_equal(err.event_id, "");
    assert_string_equal(err.message, "duplicate member \"event_id\"");
    /* nothing parsed, nothing echoed */
    assert_int_equal(pu("{\"event_id\":\"a\",", "a"), SK_E_INVALID_JSON);
    assert_string_equal(err.event_id, "");
}

/* ---- envelope ---- */

/* A tombstone on the users topic deletes the user its key names: the key
 * is held to the rules of a username, since there is no body. */
static void user_tombstone(void **state)
{
    (void)state;
    assert_int_equal(parse_n(SK_EV_USER, NULL, 0, "zo\xc3\xab 'x'", 8, NULL), SK_OK);
    assert_true(ev.del);
    assert_int_equal(ev.kind, SK_EV_USER);
    assert_int_equal(ev.username_len, 8);
    assert_string_equal(ev.username, "zo\xc3\xab 'x'");
    assert_int_equal(ev.nick, SK_NICK_ABSENT);
    assert_null(ev.event_id);
    sk_event_clear(&ev);
    /* a payload is never a tombstone, even an empty one */
    assert_int_equal(parse_n(SK_EV_USER, "", 0, "a", 1, NULL), SK_E_EMPTY);
    assert_int_equal(pu("{\"username\":\"a\"}", "a"), SK_OK);
    assert_false(ev.del);
    sk_event_clear(&ev);
    /* the key */
    assert_int_equal(parse_n(SK_EV_USER, NULL, 0, NULL, 0, NULL), SK_E_MISSING_KEY);
    assert_int_equal(parse_n(SK_EV_USER, NULL, 0, "", 0, NULL), SK_E_MISSING_KEY);
    assert_int_equal(parse_n(SK_EV_USER, NULL, 0, "a\xc0\x80", 3, NULL), SK_E_INVALID_UTF8);
    assert_int_equal(parse_n(SK_EV_USER, NULL, 0, "a\nb", 3, NULL), SK_E_CONTROL_CHAR);
    assert_int_equal(parse_n(SK_EV_USER, NULL, 0, "a\xc2\x85", 3, NULL), SK_E_CONTROL_CHAR);
    char name[64];
    memset(name, 'x', sizeof name);
    assert_int_equal(parse_n(SK_EV_USER, NULL, 0, name, 50, NULL), SK_OK);
    sk_event_clear(&ev);
    assert_int_equal(parse_n(SK_EV_USER, NULL, 0, name, 51, NULL), SK_E_TOO_LONG);
    assert_non_null(strstr(err.message, "51 characters"));
}

static void tombstone_empty_too_large(void **state)
{
    (void)state;
    /* a tombstone deletes a user; score events are never deleted */
    assert_int_equal(parse_n(SK_EV_SCORE, NULL, 0, "42", 2, NULL), SK_E_TOMBSTONE);
    assert_non_null(strstr(err.message, "score events are never deleted"));
    assert_int_equal(parse_n(SK_EV_USER, "", 0, "a", 1, NULL), SK_E_EMPTY);
    struct sk_limits l;
    sk_limits_default(&l);
    const char *j = "{\"username\":\"a\"}"; /* 16 bytes */
    l.max_message_bytes = 16;
    assert_int_equal(parse_n(SK_EV_USER, j, 16, "a", 1, &l), SK_OK);
    l.max_message_bytes = 15;
    assert_int_equal(parse_n(SK_EV_USER, j, 16, "a", 1, &l), SK_E_TOO_LARGE);
    assert_string_equal(err.message, "the message is 16 bytes, the limit is 15");
    /* checked before anything else: garbage that is too large */
    assert_int_equal(parse_n(SK_EV_USER, "\xff\xff\xff\xff", 4, NULL, 0, &(struct sk_limits){
                                 .max_message_bytes = 3, .max_depth = 4}), SK_E_TOO_LARGE);
    /* kinds */
    assert_int_equal(sk_event_parse((enum sk_event_kind)0, j, 16, "a", 1, NULL, &ev, &err),
                     SK_E_UNKNOWN_TOPIC);
}

static void invalid_utf8(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xC0\x80",         /* overlong NUL */
        "\xC1\xBF",         /* overlong */
        "\xE0\x80\xAF",     /* overlong '/' */
        "\xF0\x8F\xBF\xBF", /* overlong U+FFFF */
        "\xED\xA0\x80",     /* encoded surrogate U+D800 */
        "\xED\xBF\xBF",     /* encoded surrogate U+DFFF */
        "\xF4\x90\x80\x80", /* U+110000 */
        "\xF5\x80\x80\x80", "\xFF", "\xFE", "\x80", "\xBF",
        "\xE2\x82",         /* truncated */
        "\xC3",             /* truncated at the end of the string */
    };
    char buf[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "{\"username\":\"a%sb\"}", bad[i]);
        assert_int_equal(pu(buf, "a"), SK_E_INVALID_UTF8);
    }
    /* outside strings too, and before JSON errors */
    assert_int_equal(pu("{\xC3\xA9", "a"), SK_E_INVALID_JSON); /* valid UTF-8, bad JSON */
    assert_int_equal(pu("{,,,\xC0\x80", "a"), SK_E_INVALID_UTF8);
    /* encoded-surrogate boundaries that are valid */
    assert_int_equal(pu_name("\xED\x9F\xBF", NULL), SK_OK);      /* U+D7FF */
    assert_int_equal(pu_name("\xEE\x80\x80", NULL), SK_OK);      /* U+E000 */
    assert_int_equal(pu_name("\xF4\x8F\xBF\xBF", NULL), SK_OK);  /* U+10FFFF */
    assert_int_equal(pu_name("\xF0\x90\x80\x80", NULL), SK_OK);  /* U+10000 */
}

static void lone_surrogates(void **state)
{
    (void)state;
    /* decision: invalid UTF-16 in \u escapes is invalid_utf8 */
    assert_int_equal(pu_name("\\ud800", "x"), SK_E_INVALID_UTF8);
    assert_int_equal(pu_name("a\\udc00", "x"), SK_E_INVALID_UTF8);
    assert_int_equal(pu_name("\\ud800\\u0041", "x"), SK_E_INVALID_UTF8);
    assert_int_equal(pu_name("\\ud800\\ud800", "x"), SK_E_INVALID_UTF8);
    assert_int_equal(pu_name("\\ude00\\ud83d", "x"), SK_E_INVALID_UTF8);
    assert_int_equal(pu_name("\\uDBFF\\uDFFF", "\xF4\x8F\xBF\xBF"), SK_OK);
}

static void invalid_json(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{", "}", "{\"username\":\"a\"", "{\"username\":\"a\"}}", "{\"username\":\"a\"} x",
        "{\"username\":\"a\"}{}", "{\"username\":\"a\",}", "{,\"username\":\"a\"}",
        "{\"username\" \"a\"}", "{\"username\":}", "{username:\"a\"}", "{'username':'a'}",
        "{\"username\":\"a\"", "{\"username\":\"a}", "{\"username\":\"a\\x\"}",
        "{\"username\":\"a\\u12\"}", "{\"username\":\"a\\u12g4\"}",
        "{\"username\":\"a\tb\"}",          /* raw control character */
        "{\"username\":\"a\nb\"}", "{\"username\":\"a\x01\"}",
        "{\"username\":\"a\",\"delta\":01}", "{\"username\":\"a\",\"delta\":+1}",
        "{\"username\":\"a\",\"delta\":.5}", "{\"username\":\"a\",\"delta\":1.}",
        "{\"username\":\"a\",\"delta\":1e}", "{\"username\":\"a\",\"delta\":-}",
        "{\"username\":\"a\",\"delta\":NaN}", "{\"username\":\"a\",\"delta\":Infinity}",
        "{\"username\":\"a\",\"delta\":0x10}", "{\"username\":\"a\",\"nickname\":nul}",
        "{\"username\":\"a\",\"nickname\":True}", "\xEF\xBB\xBF{\"username\":\"a\"}", /* BOM */
        "{\"username\":\"a\"}\x0c", "\x01{\"username\":\"a\"}", " ", "\n",
        "{\"username\":\"a\" /* c */}", "[1,]", "[1 2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum sk_reject rc = pu(bad[i], "a");
        if (rc != SK_E_INVALID_JSON)
            fail_msg("case %zu (%s): got %s", i, bad[i], sk_reject_code(rc));
    }
    /* an embedded raw NUL byte is not white space */
    assert_int_equal(parse_n(SK_EV_USER, "{\"username\":\"a\"}\0", 17, "a", 1, NULL),
                     SK_E_INVALID_JSON);
    assert_int_equal(parse_n(SK_EV_USER, "{\"username\":\"a\0\"}", 17, "a", 1, NULL),
                     SK_E_INVALID_JSON);
    pu("{\"username\" \"a\"}", "a");
    assert_string_equal(err.message,
                        "invalid JSON at byte offset 12: expected ':' after member name");
}

static void depth(void **state)
{
    (void)state;
    /* default max_depth 4: the object is level 1 */
    assert_int_equal(pu("{\"username\":\"a\",\"x\":[[[1]]]}", "a"), SK_E_UNKNOWN_FIELD);
    assert_int_equal(pu("{\"username\":\"a\",\"x\":[[[[1]]]]}", "a"), SK_E_TOO_DEEP);
    assert_int_equal(pu("{\"username\":{\"a\":{\"b\":{}}}}", "a"), SK_E_WRONG_TYPE);
    assert_int_equal(pu("{\"username\":{\"a\":{\"b\":{\"c\":{}}}}}", "a"), SK_E_TOO_DEEP);
    assert_int_equal(pu("[[[[[", "a"), SK_E_TOO_DEEP);
    /* a hostile 100000-deep array is refused after five brackets */
    size_t n = 100000;
    char *p = malloc(2 * n);
    assert_non_null(p);
    memset(p, '[', n);
    memset(p + n, ']', n);
    struct sk_limits l;
    sk_limits_default(&l);
    l.max_message_bytes = 2 * n;
    assert_int_equal(parse_n(SK_EV_USER, p, 2 * n, "a", 1, &l), SK_E_TOO_DEEP);
    assert_string_equal(err.message, "JSON nested deeper than 4 levels at byte offset 4");
    /* even with an absurd limit the scanner caps nesting */
    l.max_depth = 4000000000u;
    assert_int_equal(parse_n(SK_EV_USER, p, 2 * n, "a", 1, &l), SK_E_TOO_DEEP);
    l.max_depth = 0;
    assert_int_equal(parse_n(SK_EV_USER, "{\"username\":\"a\"}", 16, "a", 1, &l), SK_E_TOO_DEEP);
    free(p);
}

static void not_object(void **state)
{
    (void)state;
    static const char *const v[] = {"[]", "[{\"username\":\"a\"}]", "\"a\"", "42", "null", "true",
                                    " false "};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_int_equal(pu(v[i], "a"), SK_E_NOT_OBJECT);
    assert_string_equal(err.message, "a user event must be a JSON object, got a boolean");
}

static void duplicates_and_unknown(void **state)
{
    (void)state;
    assert_int_equal(pu("{\"username\":\"a\",\"username\":\"a\"}", "a"), SK_E_DUPLICATE_KEY);
    assert_string_equal(err.field, "username");
    assert_int_equal(ps("{\"game_id\":1,\"username\":\"a\",\"set\":1,\"game_id\":1}", "1"),
                     SK_E_DUPLICATE_KEY);
    assert_string_equal(err.message, "duplicate member \"game_id\"");
    /* same member spelt with an escape */
    assert_int_equal(pu("{\"username\":\"a\",\"\\u0075sername\":\"b\"}", "a"),
                     SK_E_DUPLICATE_KEY);
    assert_int_equal(pu("{\"username\":\"a\",\"admin\":true}", "a"), SK_E_UNKNOWN_FIELD);
    assert_string_equal(err.field, "admin");
    assert_string_equal(err.message, "unknown member \"admin\" in a user event");
    /* members of the other kind are unknown */
    assert_int_equal(pu("{\"username\":\"a\",\"game_id\":1}", "a"), SK_E_UNKNOWN_FIELD);
    assert_int_equal(ps("{\"game_id\":1,\"username\":\"a\",\"set\":1,\"nickname\":\"x\"}", "1"),
                     SK_E_UNKNOWN_FIELD);
    /* case matters, and a NUL in a name does not truncate it */
    assert_int_equal(pu("{\"Username\":\"a\"}", "a"), SK_E_UNKNOWN_FIELD);
    assert_int_equal(pu("{\"username\\u0000x\":\"a\"}", "a"), SK_E_UNKNOWN_FIELD);
    assert_string_equal(err.field, "username?x");
    /* many members: still found */
    assert_int_equal(pu("{\"username\":\"a\",\"nickname\":null,\"event_id\":\"e\",\"x1\":1,"
                        "\"x2\":1,\"x3\":1,\"x4\":1,\"x5\":1,\"x6\":1,\"x7\":1}", "a"),
                     SK_E_UNKNOWN_FIELD);
    assert_string_equal(err.field, "x1");
    /* long hostile names are quoted at most 64 bytes */
    char buf[512], n[256];
    snprintf(buf, sizeof buf, "{\"%s\":1}", rep(n, "\xE2\x80\xAE", 60));
    assert_int_equal(pu(buf, "a"), SK_E_UNKNOWN_FIELD);
    assert_true(strlen(err.message) < 64 + 40);
    /* structure before values: unknown member beats a bad value earlier */
    assert_int_equal(pu("{\"username\":5,\"zzz\":1}", "a"), SK_E_UNKNOWN_FIELD);
}

static void missing_fields_and_conflict(void **state)
{
    (void)state;
    assert_int_equal(pu("{}", "a"), SK_E_MISSING_FIELD);
    assert_string_equal(err.field, "username");
    assert_int_equal(pu("{\"nickname\":\"x\"}", "a"), SK_E_MISSING_FIELD);
    assert_int_equal(ps("{\"username\":\"a\",\"delta\":1}", "1"), SK_E_MISSING_FIELD);
    assert_string_equal(err.field, "game_id");
    assert_int_equal(ps("{\"game_id\":1,\"delta\":1}", "1"), SK_E_MISSING_FIELD);
    assert_string_equal(err.field, "username");
    assert_int_equal(ps("{\"game_id\":1,\"username\":\"a\"}", "1"), SK_E_MISSING_FIELD);
    assert_string_equal(err.field, "delta");
    assert_string_equal(err.message, "one of \"delta\" or \"set\" is required");
    assert_int_equal(ps("{\"game_id\":1,\"username\":\"a\",\"delta\":1,\"set\":2}", "1"),
                     SK_E_CONFLICT);
    assert_string_equal(sk_reject_code(err.code), "conflicting_fields");
    assert_int_equal(ps("{\"game_id\":1,\"username\":\"a\",\"set\":\"x\",\"delta\":1}", "1"),
                     SK_E_CONFLICT);
}

static void wrong_types(void **state)
{
    (void)state;
    static const char *const v[] = {"\"500\"", "true", "false", "null", "{}", "[]", "[500]",
                                    "{\"v\":500}"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_int_equal(ps_delta(v[i]), SK_E_WRONG_TYPE);
    assert_string_equal(err.message, "\"delta\" must be an integer, got an object");
    assert_int_equal(ps_game_id("\"42\"", "42"), SK_E_WRONG_TYPE);
    assert_int_equal(pu("{\"username\":42}", "42"), SK_E_WRONG_TYPE);
    assert_string_equal(err.message, "\"username\" must be a string, got an integer");
    assert_int_equal(pu("{\"username\":[\"a\"]}", "a"), SK_E_WRONG_TYPE);
    assert_int_equal(pu("{\"username\":null}", "a"), SK_E_WRONG_TYPE);
}

static void integers(void **state)
{
    (void)state;
    /* decided from the text: fraction or exponent -> not_integer */
    static const char *const notint[] = {"1.5", "1.0", "1e3", "1E3", "0e0", "-0.0", "5e-1",
                                         "1e400", "0.000000000000000000001"};
    for (size_t i = 0; i < sizeof notint / sizeof notint[0]; i++)
        assert_int_equal(ps_delta(notint[i]), SK_E_NOT_INTEGER);
    assert_string_equal(err.message,
                        "\"delta\" must be an integer (no fraction or exponent), got "
                        "0.000000000000000000001");
    assert_int_equal(ps_game_id("42.0", "42"), SK_E_NOT_INTEGER);

    assert_int_equal(ps_delta("9007199254740991"), SK_OK);
    assert_int_equal(ev.value, INT64_C(9007199254740991));
    assert_int_equal(ps_delta("-9007199254740991"), SK_OK);
    assert_int_equal(ev.value, -INT64_C(9007199254740991));
    assert_int_equal(ps_delta("0"), SK_OK);
    assert_int_equal(ps_delta("-0"), SK_OK); /* decision: -0 is the integer 0 */
    assert_int_equal(ev.value, 0);
    static const char *const range[] = {
        "9007199254740992", "9007199254740993", "-9007199254740992", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "18446744073709551615",
        "18446744073709551616",
        "123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890"};
    for (size_t i = 0; i < sizeof range / sizeof range[0]; i++)
        assert_int_equal(ps_delta(range[i]), SK_E_OUT_OF_RANGE);
    /* long lexemes are quoted at most 64 bytes */
    assert_non_null(strstr(err.message, "got 1234567890123456789012345678901234567890"
                                        "123456789012345678901234..."));
    assert_string_equal(err.field, "delta");

    assert_int_equal(ps_game_id("9007199254740991", "9007199254740991"), SK_OK);
    assert_int_equal(ev.game_id, INT64_C(9007199254740991));
    assert_int_equal(ps_game_id("1", "1"), SK_OK);
    assert_int_equal(ps_game_id("9007199254740992", "9007199254740992"), SK_E_OUT_OF_RANGE);
    assert_string_equal(err.message,
                        "\"game_id\" must be between 1 and 9007199254740991, got 9007199254740992");
    assert_int_equal(ps_game_id("9007199254740993", "9007199254740993"), SK_E_OUT_OF_RANGE);
    assert_int_equal(ps_game_id("0", "0"), SK_E_OUT_OF_RANGE);
    assert_int_equal(ps_game_id("-0", "0"), SK_E_OUT_OF_RANGE);
    assert_int_equal(ps_game_id("-1", "1"), SK_E_OUT_OF_RANGE);
    assert_int_equal(ps_game_id("9223372036854775808", "1"), SK_E_OUT_OF_RANGE);
}

static void control_chars(void **state)
{
    (void)state;
    /* \u0000 must not truncate the name into something valid */
    assert_int_equal(pu_name("alice\\u0000", "alice"), SK_E_CONTROL_CHAR);
    assert_string_equal(err.message, "\"username\" contains a control character: \"alice?\"");
    assert_int_equal(pu_name("\\u0000", "x"), SK_E_CONTROL_CHAR);
    assert_int_equal(pu_name("a\\nb", "x"), SK_E_CONTROL_CHAR);
    assert_int_equal(pu_name("a\\tb", "x"), SK_E_CONTROL_CHAR);
    assert_int_equal(pu_name("a\\u001fb", "x"), SK_E_CONTROL_CHAR);
    assert_int_equal(pu_name("a\x7f", "x"), SK_E_CONTROL_CHAR);   /* DEL raw */
    assert_int_equal(pu_name("a\\u007F", "x"), SK_E_CONTROL_CHAR); /* DEL escaped */
    assert_int_equal(pu_name("a\xC2\x80", "x"), SK_E_CONTROL_CHAR); /* C1 raw */
    assert_int_equal(pu_name("a\xC2\x9F", "x"), SK_E_CONTROL_CHAR);
    assert_int_equal(pu_name("a\\u0085", "x"), SK_E_CONTROL_CHAR);
    assert_int_equal(pu_name("a\xC2\xA0", NULL), SK_OK); /* U+00A0 is not a control */
    /* a literal backslash-u text is not a NUL */
    assert_int_equal(pu_name("\\\\u0000", "\\u0000"), SK_OK);
    assert_string_equal(ev.username, "\\u0000");
}

static void keys(void **state)
{
    (void)state;
    const char *u = "{\"username\":\"alice\"}";
    assert_int_equal(pu(u, NULL), SK_E_MISSING_KEY);
    assert_int_equal(pu(u, ""), SK_E_MISSING_KEY);
    assert_int_equal(pu(u, "Alice"), SK_E_KEY_MISMATCH);
    assert_string_equal(err.message, "the key \"Alice\" does not match \"username\" \"alice\"");
    assert_int_equal(pu(u, "alice "), SK_E_KEY_MISMATCH);
    assert_int_equal(pu(u, "alic"), SK_E_KEY_MISMATCH);
    assert_int_equal(parse_n(SK_EV_USER, u, strlen(u), "alice\0", 6, NULL), SK_E_KEY_MISMATCH);
    /* hostile key bytes are sanitized in the message */
    assert_int_equal(pu(u, "\xff\x1b[31m"), SK_E_KEY_MISMATCH);
    assert_string_equal(err.message, "the key \"??[31m\" does not match \"username\" \"alice\"");
    /* body errors win over key errors; a missing key still shows on a good body */
    assert_int_equal(pu("{\"username\":5}", NULL), SK_E_WRONG_TYPE);
    assert_int_equal(pu("{\"username\":\"bob\"}", "alice"), SK_E_KEY_MISMATCH);

    const char *s = "{\"game_id\":42,\"username\":\"a\",\"delta\":1}";
    assert_int_equal(ps(s, "42"), SK_OK);
    assert_int_equal(ps(s, NULL), SK_E_MISSING_KEY);
    static const char *const bad[] = {"042", "+42", "-42", "42 ", " 42", "4.2e1", "43", "4", "420",
                                      "0x2a", "42\n", "00000000000000000042"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ps(s, bad[i]), SK_E_KEY_MISMATCH);
    assert_string_equal(err.field, "game_id");
    assert_int_equal(ps_game_id("9007199254740991", "9007199254740990"), SK_E_KEY_MISMATCH);
    assert_int_equal(ps_game_id("1", "99999999999999999999"), SK_E_KEY_MISMATCH);
}

static void reject_codes(void **state)
{
    (void)state;
    for (int i = 0; i < SK_E__COUNT; i++) {
        const char *c = sk_reject_code((enum sk_reject)i);
        assert_string_not_equal(c, "unknown");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(c, sk_reject_code((enum sk_reject)j));
    }
    assert_string_equal(sk_reject_code(SK_E__COUNT), "unknown");
    assert_string_equal(sk_reject_code(SK_E_CONFLICT), "conflicting_fields");
    assert_string_equal(sk_reject_code(SK_E_INVALID_UTF8), "invalid_utf8");
    struct sk_limits l;
    sk_limits_default(&l);
    assert_int_equal(l.max_message_bytes, 65536);
    assert_int_equal(l.max_depth, 4);
    assert_int_equal(l.max_event_id_len, 128);
    assert_int_equal(l.max_name_chars, 50);
    assert_int_equal(l.max_game_name_chars, 100);
    assert_int_equal(l.unknown_fields, SK_UNKNOWN_REJECT);
}

static void utf8_count(void **state)
{
    (void)state;
    assert_int_equal(sk_utf8_count("", 0), 0);
    assert_int_equal(sk_utf8_count("abc", 3), 3);
    assert_int_equal(sk_utf8_count("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9), 3);
    assert_int_equal(sk_utf8_count("\xC0\x80", 2), -1);
    assert_int_equal(sk_utf8_count("\xED\xA0\x80", 3), -1);
    assert_int_equal(sk_utf8_count("\xF4\x90\x80\x80", 4), -1);
    assert_int_equal(sk_utf8_count("\xE2\x82", 2), -1);
    assert_int_equal(sk_utf8_count("a\0b", 3), 3);
    char out[16];
    assert_int_equal(sk_utf8_sanitize(out, sizeof out, "a\x01\xC3\xA9\xFF", 5, 64), 5);
    assert_string_equal(out, "a?\xC3\xA9?");
    sk_utf8_sanitize(out, sizeof out, "abcdefghijklmnopqrstuvwxyz", 26, 64);
    assert_string_equal(out, "abcdefghijkl...");
    sk_utf8_sanitize(out, sizeof out, "\xC3\xA9\xC3\xA9\xC3\xA9", 6, 3);
    assert_string_equal(out, "\xC3\xA9...");
}

/* cJSON (the project's JSON library) must decode accepted events the same way. */
static void agrees_with_cjson(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{\"username\":\"a\\\\b\\\"c\\/d\",\"nickname\":\"\\ud83d\\ude00 \\u00e9\\u20ac\"}",
        "{\"username\":\"\xE2\x82\xAC x\",\"nickname\":\"O'Brien; --\"}",
        "{\"nickname\":\"\\u0041\\u00A0\",\"username\":\"q\"}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        cJSON *j = cJSON_ParseWithLength(docs[i], strlen(docs[i]));
        assert_non_null(j);
        const char *u = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "username"));
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "nickname"));
        assert_non_null(u);
        assert_non_null(n);
        assert_int_equal(pu(docs[i], u), SK_OK);
        assert_string_equal(ev.username, u);
        assert_string_equal(ev.nickname, n);
        assert_int_equal(ev.nickname_len, strlen(n));
        cJSON_Delete(j);
    }
}

/* Every prefix of a valid event is rejected cleanly (no crash, no leak). */
static void all_prefixes(void **state)
{
    (void)state;
    const char *s = "{\"event_id\":\"s-9\",\"game_id\":42,\"game_name\":\"Quiz \\u00e9\xE2\x82\xAC\","
                    "\"username\":\"al\\\"ice\",\"delta\":-500}";
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        char *p = malloc(i + 1);
        assert_non_null(p);
        memcpy(p, s, i);
        enum sk_reject rc = parse_n(SK_EV_SCORE, p, i, "42", 2, NULL);
        assert_int_not_equal(rc, SK_OK);
        free(p);
    }
    assert_int_equal(parse_n(SK_EV_SCORE, s, n, "42", 2, NULL), SK_OK);
    assert_string_equal(ev.game_name, "Quiz \xC3\xA9\xE2\x82\xAC");
    assert_string_equal(ev.username, "al\"ice");
    assert_int_equal(ev.value, -500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(user_event_ok, teardown),
        cmocka_unit_test_teardown(user_event_nick_null_absent, teardown),
        cmocka_unit_test_teardown(score_event_ok, teardown),
        cmocka_unit_test_teardown(sql_tricks_pass_unchanged, teardown),
        cmocka_unit_test_teardown(emoji_and_escapes, teardown),
        cmocka_unit_test_teardown(utf8_boundaries_in_names, teardown),
        cmocka_unit_test_teardown(nickname_rules, teardown),
        cmocka_unit_test_teardown(game_name_rules, teardown),
        cmocka_unit_test_teardown(event_id_rules, teardown),
        cmocka_unit_test_teardown(event_id_echoed_on_rejection, teardown),
        cmocka_unit_test_teardown(tombstone_empty_too_large, teardown),
        cmocka_unit_test_teardown(user_tombstone, teardown),
        cmocka_unit_test_teardown(invalid_utf8, teardown),
        cmocka_unit_test_teardown(lone_surrogates, teardown),
        cmocka_unit_test_teardown(invalid_json, teardown),
        cmocka_unit_test_teardown(depth, teardown),
        cmocka_unit_test_teardown(not_object, teardown),
        cmocka_unit_test_teardown(duplicates_and_unknown, teardown),
        cmocka_unit_test_teardown(missing_fields_and_conflict, teardown),
        cmocka_unit_test_teardown(wrong_types, teardown),
        cmocka_unit_test_teardown(integers, teardown),
        cmocka_unit_test_teardown(control_chars, teardown),
        cmocka_unit_test_teardown(keys, teardown),
        cmocka_unit_test_teardown(reject_codes, teardown),
        cmocka_unit_test_teardown(utf8_count, teardown),
        cmocka_unit_test_teardown(agrees_with_cjson, teardown),
        cmocka_unit_test_teardown(all_prefixes, teardown),
        cmocka_unit_test_teardown(unknown_fields_ignored, teardown),
        cmocka_unit_test_teardown(duplicates_everywhere, teardown),
        cmocka_unit_test_teardown(too_many_members, teardown),
        cmocka_unit_test_teardown(schema_version, teardown),
    };
    return cmocka_run_group_tests_name("event", tests, NULL, NULL);
}
