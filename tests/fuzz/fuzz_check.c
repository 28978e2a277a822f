/* fuzz_check — invariants for sk_event_parse(), sk_result_json(),
 * sk_buf_json_str(), sk_buf_sql_str() and the UTF-8 helpers; see
 * fuzz_check.h.  The checks deliberately use their own UTF-8 validator,
 * JSON string decoder and SQL literal decoder rather than the code under
 * test, and cJSON as an independent JSON parser. */
#include "fuzz_check.h"

#include "buf.h"
#include "event.h"
#include "jsonscan.h"
#include "result.h"
#include "utf8.h"

#include <cJSON.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_INT53_MAX INT64_C(9007199254740991)

struct fz {
    unsigned fails;
    const char *stage; /* what was being checked, for the report */
};

static void violation(struct fz *z, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void violation(struct fz *z, const char *fmt, ...)
{
    va_list ap;
    z->fails++;
    fprintf(stderr, "fuzz_check: [%s] ", z->stage);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

#define CHECK(z, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond))                                                                               \
            violation((z), __VA_ARGS__);                                                           \
    } while (0)

/* ------------------------------------------------------------ input format */

void fz_split(const uint8_t *data, size_t size, struct fz_input *in)
{
    memset(in, 0, sizeof *in);
    size_t i = 0;
    if (size > 0)
        in->flags = data[i++];
    in->kind = (in->flags & FZ_F_SCORE) ? SK_EV_SCORE : SK_EV_USER;
    in->tombstone = (in->flags & FZ_F_TOMBSTONE) != 0;
    if (in->flags & FZ_F_KEY) {
        in->has_key = true;
        size_t want = i < size ? data[i++] : 0;
        size_t left = size - i;
        in->key = data + i;
        in->key_len = want < left ? want : left;
        i += in->key_len;
    }
    in->payload = data + i;
    in->payload_len = size - i;
}

uint8_t *fz_encode(unsigned flags, const void *key, size_t key_len, const void *payload,
                   size_t payload_len, size_t *size)
{
    if (key) {
        flags |= FZ_F_KEY;
        if (key_len > FZ_KEY_MAX)
            key_len = FZ_KEY_MAX;
    } else {
        flags &= ~FZ_F_KEY;
        key_len = 0;
    }
    size_t n = 1 + (key ? 1 + key_len : 0) + payload_len;
    uint8_t *out = malloc(n);
    if (!out)
        return NULL;
    size_t i = 0;
    out[i++] = (uint8_t)flags;
    if (key) {
        out[i++] = (uint8_t)key_len;
        if (key_len)
            memcpy(out + i, key, key_len);
        i += key_len;
    }
    if (payload_len)
        memcpy(out + i, payload, payload_len);
    *size = n;
    return out;
}

/* Exact-size heap copy so AddressSanitizer sees any read past the end. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

/* ------------------------------------------------------- independent UTF-8 */

/* Offset of the first byte that does not start a strict UTF-8 sequence
 * (len when valid); *chars gets the code points before it.  Decodes the
 * code point and checks its range, unlike src/utf8.c (second-byte ranges). */
static size_t own_utf8(const uint8_t *s, size_t len, size_t *chars, bool *control)
{
    size_t i = 0, count = 0;
    if (control)
        *control = false;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            n = 1, cp = c, min = 0;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1fu, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0fu, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07u, min = 0x10000;
        } else {
            break;
        }
        if (len - i < n)
            break;
        size_t k;
        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                break;
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        if (k < n || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            break;
        if (control && (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)))
            *control = true;
        i += n;
        count++;
    }
    if (chars)
        *chars = count;
    return i;
}

static bool utf8_ok(const void *s, size_t len) { return own_utf8(s, len, NULL, NULL) == len; }

/* A NUL-terminated text held in a fixed array: terminated within cap,
 * valid UTF-8, no control characters. */
static void check_text_array(struct fz *z, const char *what, const char *a, size_t cap)
{
    const char *nul = memchr(a, '\0', cap);
    if (!nul) {
        violation(z, "%s is not NUL-terminated within %zu bytes", what, cap);
        return;
    }
    size_t len = (size_t)(nul - a);
    bool ctl;
    size_t chars;
    CHECK(z, own_utf8((const uint8_t *)a, len, &chars, &ctl) == len,
          "%s is not valid UTF-8: \"%s\"", what, a);
    CHECK(z, !ctl, "%s contains a control character", what);
}

/* ------------------------------------------------- the event's own strings */

static void check_event_str(struct fz *z, const char *what, const char *s, size_t len,
                            bool required, size_t max_chars, bool ascii)
{
    if (!s) {
        CHECK(z, len == 0, "%s is NULL with length %zu", what, len);
        CHECK(z, !required, "%s is missing on SK_OK", what);
        return;
    }
    CHECK(z, len > 0, "%s is present but empty", what);
    CHECK(z, s[len] == '\0', "%s is not NUL-terminated at its length %zu", what, len);
    CHECK(z, strlen(s) == len, "%s has an embedded NUL (strlen %zu, length %zu)", what,
          strlen(s), len);
    size_t chars;
    bool ctl;
    size_t ok = own_utf8((const uint8_t *)s, len, &chars, &ctl);
    CHECK(z, ok == len, "%s is not valid UTF-8 (byte %zu of %zu)", what, ok, len);
    CHECK(z, !ctl, "%s contains a control character", what);
    CHECK(z, chars <= max_chars, "%s has %zu code points, the limit is %zu", what, chars,
          max_chars);
    if (ascii)
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
                violation(z, "%s has a non-printable-ASCII byte 0x%02x", what,
                          (unsigned char)s[i]);
                break;
            }
}

static size_t evid_limit(const struct sk_limits *lim)
{
    return lim->max_event_id_len < 128 ? lim->max_event_id_len : 128;
}

static bool same_str(const char *a, size_t al, const char *b, size_t bl)
{
    if (!a || !b)
        return !a && !b && al == bl;
    return al == bl && memcmp(a, b, al) == 0;
}

static bool same_event(const struct sk_event *a, const struct sk_event *b)
{
    return a->kind == b->kind && a->del == b->del && same_str(a->event_id, a->event_id_len, b->event_id, b->event_id_len) &&
           same_str(a->username, a->username_len, b->username, b->username_len) &&
           a->nick == b->nick &&
           same_str(a->nickname, a->nickname_len, b->nickname, b->nickname_len) &&
           a->game_id == b->game_id &&
           same_str(a->game_name, a->game_name_len, b->game_name, b->game_name_len) &&
           a->op == b->op && a->value == b->value;
}

/* cJSON member s equals the bytes (no NUL inside, checked before). */
static bool cj_str_is(const cJSON *o, const char *name, const char *s, size_t len)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    return v && strlen(v) == len && memcmp(v, s, len) == 0;
}

static bool cj_num_is(const cJSON *o, const char *name, int64_t want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) && cJSON_GetNumberValue(v) == (double)want;
}

/* Strict parse of a JSON text we produced: cJSON must take all of it and
 * our own strict scanner must agree. */
static cJSON *parse_produced(struct fz *z, const char *text, size_t len)
{
    CHECK(z, utf8_ok(text, len), "produced JSON is not valid UTF-8: %.*s", (int)len, text);
    struct sk_json_doc doc;
    struct sk_json_error jerr;
    enum sk_json_status st = sk_json_scan(text, len, 8, &doc, &jerr);
    CHECK(z, st == SK_JSON_OK, "produced JSON fails the strict scan at %zu (%s): %.*s",
          jerr.offset, jerr.what, (int)len, text);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!j) {
        violation(z, "cJSON cannot parse produced JSON: %.*s", (int)len, text);
        return NULL;
    }
    CHECK(z, end == text + len, "cJSON stops before the end of produced JSON: %.*s", (int)len,
          text);
    CHECK(z, cJSON_IsObject(j), "produced JSON is not an object");
    return j;
}

static const char *topic_of(enum sk_event_kind k)
{
    return k == SK_EV_SCORE ? "game.scores" : "game.users";
}

/* The accepted event as an "applied" result must read back equal. */
/* r as JSON into b (the caller frees it), parsed back; NULL when it does
 * not parse (already reported). */
static cJSON *render_result(struct fz *z, const struct sk_result *r, struct sk_buf *b)
{
    sk_buf_init(b);
    sk_result_json(b, r);
    CHECK(z, !sk_buf_failed(b), "sk_result_json failed");
    return parse_produced(z, b->p ? b->p : "", b->len);
}

static void check_result_applied(struct fz *z, const struct sk_event *ev)
{
    struct sk_result r = {
        .status = SK_ST_APPLIED,
        .event_id = ev->event_id,
        .event_id_len = ev->event_id_len,
        .topic = topic_of(ev->kind),
        .partition = 3,
        .offset = INT64_C(1) << 40,
        .kind = ev->kind,
        .game_id = ev->game_id,
        .user_id = 77,
        .username = ev->username,
        .username_len = ev->username_len,
        .nick = ev->nick,
        .nickname = ev->nickname,
        .nickname_len = ev->nickname_len,
        .score = ev->value,
    };
    struct sk_buf b;
    cJSON *j = render_result(z, &r, &b);
    if (j) {
        if (ev->event_id)
            CHECK(z, cj_str_is(j, "event_id", ev->event_id, ev->event_id_len),
                  "result event_id differs");
        else
            CHECK(z, !cJSON_GetObjectItemCaseSensitive(j, "event_id"),
                  "result has an event_id the event has not");
        CHECK(z, cj_str_is(j, "status", "applied", 7), "result status is not \"applied\"");
        CHECK(z, cj_str_is(j, "username", ev->username, ev->username_len),
              "result username differs");
        CHECK(z, cj_num_is(j, "user_id", 77), "result user_id differs");
        const cJSON *nick = cJSON_GetObjectItemCaseSensitive(j, "nickname");
        if (ev->kind == SK_EV_SCORE) {
            CHECK(z, cj_num_is(j, "game_id", ev->game_id), "result game_id differs");
            CHECK(z, cj_num_is(j, "score", ev->value), "result score differs");
            CHECK(z, !nick, "score result has a nickname");
        } else if (ev->nick == SK_NICK_SET) {
            CHECK(z, cj_str_is(j, "nickname", ev->nickname, ev->nickname_len),
                  "result nickname differs");
        } else if (ev->nick == SK_NICK_NULL) {
            CHECK(z, cJSON_IsNull(nick), "result nickname is not null");
        } else {
            CHECK(z, !nick, "result has a nickname the event has not");
        }
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(j, "source");
        const char *t = topic_of(ev->kind);
        CHECK(z, cj_str_is(src, "topic", t, strlen(t)), "result source.topic differs");
        CHECK(z, cj_num_is(src, "partition", 3), "result source.partition differs");
        CHECK(z, cj_num_is(src, "offset", INT64_C(1) << 40), "result source.offset differs");
        cJSON_Delete(j);
    }
    sk_buf_free(&b);
}

/* The rejection as a "rejected" result must read back equal. */
static void check_result_rejected(struct fz *z, enum sk_reject rc, const struct sk_parse_error *err)
{
    size_t idlen = strnlen(err->event_id, sizeof err->event_id);
    struct sk_result r = {
        .status = SK_ST_REJECTED,
        .event_id = idlen ? err->event_id : NULL,
        .event_id_len = idlen,
        .topic = "game.users",
        .partition = 0,
        .offset = 5,
        .error = rc,
        .error_message = err->message,
    };
    struct sk_buf b;
    cJSON *j = render_result(z, &r, &b);
    if (j) {
        if (idlen)
            CHECK(z, cj_str_is(j, "event_id", err->event_id, idlen),
                  "rejected result event_id differs");
        CHECK(z, cj_str_is(j, "status", "rejected", 8), "result status is not \"rejected\"");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const char *code = sk_reject_code(rc);
        CHECK(z, cj_str_is(e, "code", code, strlen(code)), "result error.code differs");
        CHECK(z, cj_str_is(e, "message", err->message, strlen(err->message)),
              "result error.message differs");
        cJSON_Delete(j);
    }
    sk_buf_free(&b);
}

/* Differential: cJSON must read the accepted payload to the same values. */
static void check_against_cjson(struct fz *z, const struct sk_event *ev, const uint8_t *payload,
                                size_t len)
{
    cJSON *j = cJSON_ParseWithLength((const char *)payload, len);
    if (!j) {
        violation(z, "cJSON rejects a payload sk_event_parse accepted");
        return;
    }
    CHECK(z, cJSON_IsObject(j), "cJSON: accepted payload is not an object");
    if (ev->event_id)
        CHECK(z, cj_str_is(j, "event_id", ev->event_id, ev->event_id_len),
              "cJSON reads a different event_id");
    else
        CHECK(z, !cJSON_GetObjectItemCaseSensitive(j, "event_id"), "cJSON finds an event_id");
    CHECK(z, cj_str_is(j, "username", ev->username, ev->username_len),
          "cJSON reads a different username");
    const cJSON *nick = cJSON_GetObjectItemCaseSensitive(j, "nickname");
    if (ev->kind == SK_EV_USER) {
        if (ev->nick == SK_NICK_SET)
            CHECK(z, cj_str_is(j, "nickname", ev->nickname, ev->nickname_len),
                  "cJSON reads a different nickname");
        else if (ev->nick == SK_NICK_NULL)
            CHECK(z, cJSON_IsNull(nick), "cJSON: nickname is not null");
        else
            CHECK(z, !nick, "cJSON finds a nickname");
    } else {
        CHECK(z, cj_num_is(j, "game_id", ev->game_id), "cJSON reads a different game_id");
        const char *op = ev->op == SK_OP_SET ? "set" : "delta";
        const char *other = ev->op == SK_OP_SET ? "delta" : "set";
        CHECK(z, cj_num_is(j, op, ev->value), "cJSON reads a different %s", op);
        CHECK(z, !cJSON_GetObjectItemCaseSensitive(j, other), "cJSON finds both delta and set");
        if (ev->game_name)
            CHECK(z, cj_str_is(j, "game_name", ev->game_name, ev->game_name_len),
                  "cJSON reads a different game_name");
        else
            CHECK(z, !cJSON_GetObjectItemCaseSensitive(j, "game_name"), "cJSON finds a game_name");
    }
    cJSON_Delete(j);
}

/* Every invariant of an accepted event. */
static void check_accepted(struct fz *z, const struct fz_input *in, const struct sk_limits *lim,
                           const struct sk_event *ev, const uint8_t *payload, const uint8_t *key)
{
    CHECK(z, ev->kind == in->kind, "kind %d, want %d", (int)ev->kind, (int)in->kind);
    CHECK(z, ev->mem != NULL, "no mem on SK_OK");
    CHECK(z, ev->del == in->tombstone, "del is %d for a %s", (int)ev->del,
          in->tombstone ? "tombstone" : "payload");
    if (in->tombstone) {
        /* a user's tombstone deletes the user the key names */
        CHECK(z, in->kind == SK_EV_USER, "a score tombstone was accepted");
        CHECK(z, !ev->event_id && ev->nick == SK_NICK_ABSENT && !ev->nickname,
              "a tombstone with an event_id or a nickname");
        check_event_str(z, "username", ev->username, ev->username_len, true, lim->max_name_chars,
                        false);
        CHECK(z, in->has_key && in->key_len == ev->username_len &&
                     memcmp(key, ev->username, in->key_len) == 0,
              "the key is not the username");
        check_result_applied(z, ev);
        return;
    }
    CHECK(z, in->payload_len <= lim->max_message_bytes, "a %zu-byte payload was accepted",
          in->payload_len);
    CHECK(z, utf8_ok(payload, in->payload_len), "a payload that is not UTF-8 was accepted");
    check_event_str(z, "event_id", ev->event_id, ev->event_id_len, false, evid_limit(lim), true);
    check_event_str(z, "username", ev->username, ev->username_len, true, lim->max_name_chars,
                    false);
    if (ev->kind == SK_EV_USER) {
        CHECK(z, ev->nick == SK_NICK_ABSENT || ev->nick == SK_NICK_NULL || ev->nick == SK_NICK_SET,
              "nick is %d", (int)ev->nick);
        check_event_str(z, "nickname", ev->nickname, ev->nickname_len, ev->nick == SK_NICK_SET,
                        lim->max_name_chars, false);
        CHECK(z, ev->nick == SK_NICK_SET || !ev->nickname, "a nickname without SK_NICK_SET");
        CHECK(z, ev->game_id == 0 && !ev->game_name && ev->op == 0 && ev->value == 0,
              "a user event with score fields");
        CHECK(z, in->has_key && in->key_len == ev->username_len &&
                     memcmp(key, ev->username, in->key_len) == 0,
              "the key is not the username");
    } else {
        CHECK(z, ev->game_id >= 1 && ev->game_id <= FZ_INT53_MAX, "game_id %" PRId64, ev->game_id);
        CHECK(z, ev->value >= -FZ_INT53_MAX && ev->value <= FZ_INT53_MAX, "value %" PRId64,
              ev->value);
        CHECK(z, ev->op == SK_OP_DELTA || ev->op == SK_OP_SET, "op %d", (int)ev->op);
        check_event_str(z, "game_name", ev->game_name, ev->game_name_len, false,
                        lim->max_game_name_chars, false);
        CHECK(z, ev->nick == SK_NICK_ABSENT && !ev->nickname, "a score event with a nickname");
        char want[32];
        int n = snprintf(want, sizeof want, "%" PRId64, ev->game_id);
        CHECK(z, in->has_key && n > 0 && in->key_len == (size_t)n &&
                     memcmp(key, want, (size_t)n) == 0,
              "the key is not game_id %s in canonical decimal", want);
    }
    check_result_applied(z, ev);
    check_against_cjson(z, ev, payload, in->payload_len);
}

/* Every invariant of a rejection. */
static void check_rejected(struct fz *z, const struct fz_input *in, const struct sk_limits *lim,
                           enum sk_reject rc, const struct sk_parse_error *err,
                           const uint8_t *payload)
{
    CHECK(z, rc > SK_OK && rc < SK_E__COUNT, "code %d out of range", (int)rc);
    CHECK(z, err->code == rc, "err.code %d, returned %d", (int)err->code, (int)rc);
    const char *code = sk_reject_code(rc);
    CHECK(z, code != NULL && strcmp(code, "unknown") != 0, "no name for code %d", (int)rc);
    CHECK(z, rc != SK_E_SCORE_OVERFLOW && rc != SK_E_DB_REJECTED && rc != SK_E_UNKNOWN_TOPIC &&
                 rc != SK_E_NO_MEMORY,
          "the parser returned %s", code ? code : "?");
    check_text_array(z, "err.message", err->message, sizeof err->message);
    CHECK(z, err->message[0] != '\0', "empty err.message for %s", code ? code : "?");
    check_text_array(z, "err.field", err->field, sizeof err->field);
    const char *nul = memchr(err->event_id, '\0', sizeof err->event_id);
    if (!nul) {
        violation(z, "err.event_id is not NUL-terminated");
    } else {
        size_t n = (size_t)(nul - err->event_id);
        CHECK(z, n <= evid_limit(lim), "err.event_id is %zu bytes", n);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)err->event_id[i] < 0x20 || (unsigned char)err->event_id[i] > 0x7e) {
                violation(z, "err.event_id has byte 0x%02x", (unsigned char)err->event_id[i]);
                break;
            }
    }
    /* The early checks are decided by the input alone. */
    if (in->tombstone && in->kind == SK_EV_USER)
        CHECK(z, rc == SK_E_MISSING_KEY || rc == SK_E_INVALID_UTF8 || rc == SK_E_TOO_LONG ||
                     rc == SK_E_CONTROL_CHAR,
              "a user's tombstone gives %s (only its key can be wrong)", code);
    else if (in->tombstone)
        CHECK(z, rc == SK_E_TOMBSTONE, "tombstone gives %s", code);
    else if (in->payload_len > lim->max_message_bytes)
        CHECK(z, rc == SK_E_TOO_LARGE, "oversized payload gives %s", code);
    else if (in->payload_len == 0)
        CHECK(z, rc == SK_E_EMPTY, "empty payload gives %s", code);
    else if (!utf8_ok(payload, in->payload_len))
        CHECK(z, rc == SK_E_INVALID_UTF8, "payload that is not UTF-8 gives %s", code);
    if (rc == SK_E_MISSING_KEY)
        CHECK(z, !in->has_key || in->key_len == 0, "missing_key, but a key was given");
    check_result_rejected(z, rc, err);
}

/* Parse with lim (NULL: defaults) and check the outcome.  On SK_OK *ev is
 * the event (the caller clears it), otherwise *ev is zeroed. */
static enum sk_reject parse_checked(struct fz *z, const struct fz_input *in,
                                    const struct sk_limits *lim, const uint8_t *payload,
                                    const uint8_t *key, struct sk_event *ev)
{
    struct sk_limits def;
    sk_limits_default(&def);
    struct sk_parse_error err;
    struct sk_event before;
    memset(ev, 0xa5, sizeof *ev);
    memset(&err, 0x5a, sizeof err);
    memcpy(&before, ev, sizeof before);
    enum sk_reject rc = sk_event_parse(in->kind, in->tombstone ? NULL : payload, in->payload_len,
                                       in->has_key ? key : NULL, in->key_len, lim, ev, &err);
    if (!lim)
        lim = &def;
    if (rc == SK_OK) {
        check_accepted(z, in, lim, ev, payload, key);
    } else {
        CHECK(z, memcmp(&before, ev, sizeof before) == 0, "*ev was modified on %s",
              sk_reject_code(rc));
        memset(ev, 0, sizeof *ev);
        check_rejected(z, in, lim, rc, &err, payload);
    }
    return rc;
}

/* ------------------------------------------------------ SQL / JSON strings */

/* Decode a MariaDB single-quoted literal (NO_BACKSLASH_ESCAPES off) as
 * sk_buf_sql_str() writes it; every quote inside must be escaped. */
static void check_sql_literal(struct fz *z, const char *lit, size_t len, const uint8_t *in,
                              size_t in_len)
{
    if (len < 2 || lit[0] != '\'' || lit[len - 1] != '\'') {
        violation(z, "SQL literal is not enclosed in quotes");
        return;
    }
    uint8_t *dec = malloc(len);
    if (!dec)
        return;
    size_t o = 0;
    for (size_t i = 1; i < len - 1; i++) {
        char c = lit[i];
        if (c == '\'') {
            violation(z, "unescaped quote at byte %zu of the SQL literal", i);
            free(dec);
            return;
        }
        if (c != '\\') {
            dec[o++] = (uint8_t)c;
            continue;
        }
        if (i + 1 >= len - 1) {
            violation(z, "the SQL literal's closing quote is escaped");
            free(dec);
            return;
        }
        char e = lit[++i];
        switch (e) {
        case '\'': dec[o++] = '\''; break;
        case '\\': dec[o++] = '\\'; break;
        case '0': dec[o++] = 0; break;
        case 'n': dec[o++] = '\n'; break;
        case 'r': dec[o++] = '\r'; break;
        case 'Z': dec[o++] = 0x1a; break;
        default:
            violation(z, "unexpected SQL escape \\%c", e);
            free(dec);
            return;
        }
    }
    CHECK(z, o == in_len && (o == 0 || memcmp(dec, in, o) == 0),
          "the SQL literal does not decode to the input");
    free(dec);
}

static bool hex4u(const char *p, uint32_t *v)
{
    uint32_t r = 0;
    for (int k = 0; k < 4; k++) {
        int h = sk_hex_digit(p[k]);
        if (h < 0)
            return false;
        r = r * 16 + (uint32_t)h;
    }
    *v = r;
    return true;
}

static size_t put_utf8(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xc0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decode a JSON string literal strictly (RFC 8259) and compare. */
static void check_json_literal(struct fz *z, const char *lit, size_t len, const uint8_t *in,
                               size_t in_len)
{
    if (len < 2 || lit[0] != '"' || lit[len - 1] != '"') {
        violation(z, "JSON string is not enclosed in quotes");
        return;
    }
    uint8_t *dec = malloc(len * 2);
    if (!dec)
        return;
    size_t o = 0;
    const char *why = NULL;
    for (size_t i = 1; i < len - 1 && !why; i++) {
        unsigned char c = (unsigned char)lit[i];
        if (c == '"') {
            why = "unescaped quote";
        } else if (c < 0x20) {
            why = "raw control character";
        } else if (c != '\\') {
            dec[o++] = c;
        } else if (i + 1 >= len - 1) {
            why = "the closing quote is escaped";
        } else {
            char e = lit[++i];
            uint32_t cp, lo;
            switch (e) {
            case '"': dec[o++] = '"'; break;
            case '\\': dec[o++] = '\\'; break;
            case '/': dec[o++] = '/'; break;
            case 'b': dec[o++] = '\b'; break;
            case 'f': dec[o++] = '\f'; break;
            case 'n': dec[o++] = '\n'; break;
            case 'r': dec[o++] = '\r'; break;
            case 't': dec[o++] = '\t'; break;
            case 'u':
                if (len - 1 - (i + 1) < 4 || !hex4u(lit + i + 1, &cp)) {
                    why = "bad \\u escape";
                    break;
                }
                i += 4;
                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    why = "lone low surrogate";
                    break;
                }
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (len - 1 - (i + 1) < 6 || lit[i + 1] != '\\' || lit[i + 2] != 'u' ||
                        !hex4u(lit + i + 3, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                        why = "lone high surrogate";
                        break;
                    }
                    i += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                o += put_utf8(dec + o, cp);
                break;
            default: why = "invalid escape"; break;
            }
        }
    }
    if (why)
        violation(z, "JSON string: %s", why);
    else
        CHECK(z, o == in_len && (o == 0 || memcmp(dec, in, o) == 0),
              "the JSON string does not decode to the input");
    free(dec);
}

static void check_literals(struct fz *z, const uint8_t *s, size_t len)
{
    struct sk_buf b;
    sk_buf_init(&b);
    z->stage = "sk_buf_sql_str";
    sk_buf_puts(&b, "SELECT ");
    sk_buf_sql_str(&b, (const char *)s, len);
    CHECK(z, !sk_buf_failed(&b), "buffer failed");
    if (b.len >= 7)
        check_sql_literal(z, b.p + 7, b.len - 7, s, len);

    z->stage = "sk_buf_json_str";
    sk_buf_reset(&b);
    sk_buf_json_str(&b, (const char *)s, len);
    CHECK(z, !sk_buf_failed(&b), "buffer failed");
    check_json_literal(z, b.p ? b.p : "", b.len, s, len);
    if (utf8_ok(s, len) && b.p) {
        /* Valid UTF-8 in: valid JSON out, for the strict scanner and cJSON. */
        struct sk_json_doc doc;
        struct sk_json_error jerr;
        CHECK(z, sk_json_scan(b.p, b.len, 1, &doc, &jerr) == SK_JSON_OK && doc.type == SK_JT_STRING,
              "the strict scanner rejects the JSON string at %zu: %s", jerr.offset, jerr.what);
        if (!memchr(s, '\0', len)) { /* cJSON strings end at a NUL */
            cJSON *j = cJSON_ParseWithLength(b.p, b.len);
            CHECK(z, cJSON_IsString(j) && strlen(cJSON_GetStringValue(j)) == len &&
                         memcmp(cJSON_GetStringValue(j), s, len) == 0,
                  "cJSON does not read the JSON string back to the input");
            cJSON_Delete(j);
        }
    }
    sk_buf_free(&b);
}

/* ---------------------------------------------------------- UTF-8 helpers */

static void check_utf8_helpers(struct fz *z, const uint8_t *s, size_t len, unsigned flags)
{
    z->stage = "utf8";
    size_t own_chars, chars = 0;
    size_t own = own_utf8(s, len, &own_chars, NULL);
    size_t got = sk_utf8_check((const char *)s, len, &chars);
    CHECK(z, got == own, "sk_utf8_check says %zu, want %zu", got, own);
    CHECK(z, got != own || chars == own_chars, "sk_utf8_check counts %zu, want %zu", chars,
          own_chars);
    long cnt = sk_utf8_count((const char *)s, len);
    CHECK(z, own == len ? cnt == (long)own_chars : cnt == -1, "sk_utf8_count says %ld", cnt);

    static const size_t caps[] = {0, 1, 3, 4, 5, 9, 32, 72};
    size_t max_in = 1 + (flags >> 6) * 21; /* 1, 22, 43, 64 */
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        size_t cap = caps[k];
        char *out = malloc(cap ? cap : 1);
        if (!out)
            return;
        size_t n = sk_utf8_sanitize(out, cap, (const char *)s, len, max_in);
        if (cap == 0) {
            CHECK(z, n == 0, "sanitize into 0 bytes wrote %zu", n);
        } else {
            CHECK(z, n < cap && out[n] == '\0' && strlen(out) == n,
                  "sanitize (cap %zu) returned %zu, not a string of that length", cap, n);
            if (n < cap) {
                bool ctl;
                size_t c;
                CHECK(z, own_utf8((const uint8_t *)out, n, &c, &ctl) == n && !ctl,
                      "sanitize (cap %zu) wrote invalid text", cap);
            }
        }
        free(out);
    }
}

/* ------------------------------------------------------------- the target */

unsigned fz_check(const uint8_t *data, size_t size)
{
    struct fz z = {0, "split"};
    struct fz_input in;
    fz_split(data, size, &in);
    uint8_t *payload = dup_exact(in.payload, in.payload_len);
    uint8_t *key = dup_exact(in.key, in.key_len);
    if (!payload || !key) {
        free(payload);
        free(key);
        return 0;
    }

    struct sk_limits tight;
    sk_limits_default(&tight);
    tight.max_message_bytes = 1024;
    tight.max_depth = 1 + ((in.flags >> FZ_DEPTH_SHIFT) & 3u);
    tight.max_event_id_len = 8;
    tight.max_name_chars = 6;
    tight.max_game_name_chars = 10;

    struct sk_event ev_def, ev_tight;
    z.stage = "parse, default limits";
    enum sk_reject rc_def = parse_checked(&z, &in, NULL, payload, key, &ev_def);
    z.stage = "parse, tight limits";
    enum sk_reject rc_tight = parse_checked(&z, &in, &tight, payload, key, &ev_tight);
    z.stage = "default vs tight limits";
    if (rc_tight == SK_OK) {
        CHECK(&z, rc_def == SK_OK, "accepted under tight limits, %s under the defaults",
              sk_reject_code(rc_def));
        if (rc_def == SK_OK)
            CHECK(&z, same_event(&ev_def, &ev_tight), "the events differ");
    }
    if (rc_def == SK_OK) {
        sk_event_clear(&ev_def);
        CHECK(&z, ev_def.mem == NULL && ev_def.username == NULL, "sk_event_clear left data");
    }
    if (rc_tight == SK_OK)
        sk_event_clear(&ev_tight);

    check_literals(&z, payload, in.payload_len);
    check_literals(&z, key, in.key_len);
    check_utf8_helpers(&z, payload, in.payload_len, in.flags);

    free(payload);
    free(key);
    return z.fails;
}

/* --------------------------------------------------------------- examples */

uint8_t *fz_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *p = malloc(cap + 1);
    while (p) {
        n += fread(p + n, 1, cap - n, f);
        if (n < cap)
            break;
        uint8_t *q = realloc(p, cap * 2 + 1);
        if (!q) {
            free(p);
            p = NULL;
            break;
        }
        p = q;
        cap *= 2;
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (!p || bad) {
        free(p);
        return NULL;
    }
    p[n] = '\0';
    *len = n;
    return p;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The key an example defines: its .key file (empty: no key), else derived
 * from the body (username / game_id in decimal; "-" when there is none).
 * Returns malloc'd bytes or NULL for "no key"; *ok false on error. */
static char *example_key(const char *json_path, enum sk_event_kind kind, const uint8_t *body,
                         size_t body_len, size_t *key_len)
{
    char path[4200];
    snprintf(path, sizeof path, "%.*s.key", (int)(strlen(json_path) - 5), json_path);
    uint8_t *k = fz_slurp(path, key_len);
    if (k) {
        if (*key_len == 0) {
            free(k);
            return NULL;
        }
        return (char *)k;
    }
    char tmp[64] = "-";
    cJSON *j = cJSON_ParseWithLength((const char *)body, body_len);
    if (j && kind == SK_EV_USER) {
        const char *u = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "username"));
        if (u) {
            char *dup = strdup(u);
            cJSON_Delete(j);
            *key_len = dup ? strlen(dup) : 0;
            return dup;
        }
    } else if (j) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "game_id");
        if (cJSON_IsNumber(g))
            snprintf(tmp, sizeof tmp, "%.0f", cJSON_GetNumberValue(g));
    }
    cJSON_Delete(j);
    *key_len = strlen(tmp);
    return strdup(tmp);
}

static long examples_in(const char *dir, const char *kind_name, const char *sub,
                        enum sk_event_kind kind, fz_example_fn *fn, void *ctx)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    size_t n = 0, cap = 16;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    while (names && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
            continue;
        if (n == cap) {
            char **more = realloc(names, 2 * cap * sizeof *names);
            if (!more)
                break;
            names = more;
            cap *= 2;
        }
        names[n] = strdup(e->d_name);
        if (names[n])
            n++;
    }
    closedir(d);
    if (!names)
        return -1;
    qsort(names, n, sizeof *names, cmp_names);
    long count = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4200], name[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(name, sizeof name, "%s-%s-%.*s", kind_name, sub, (int)(strlen(names[i]) - 5),
                 names[i]);
        size_t len = 0, key_len = 0, size = 0;
        uint8_t *body = fz_slurp(path, &len);
        if (!body) {
            count = -1;
            break;
        }
        char *key = example_key(path, kind, body, len, &key_len);
        uint8_t *in = fz_encode(kind == SK_EV_SCORE ? FZ_F_SCORE : 0u, key, key_len, body, len,
                                &size);
        if (in)
            fn(name, in, size, ctx);
        free(in);
        free(key);
        free(body);
        if (!in) {
            count = -1;
            break;
        }
        count++;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return count;
}

long fz_for_each_example(const char *examples_dir, fz_example_fn *fn, void *ctx)
{
    static const char *const kinds[] = {"user", "score"};
    static const char *const subs[] = {"valid", "invalid"};
    long total = 0;
    for (size_t k = 0; k < 2; k++)
        for (size_t s = 0; s < 2; s++) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s/%s/%s", examples_dir, kinds[k], subs[s]);
            long n = examples_in(dir, kinds[k], subs[s], k ? SK_EV_SCORE : SK_EV_USER, fn, ctx);
            if (n < 0)
                return -1;
            total += n;
        }
    return total;
}
