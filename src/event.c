/* event — parse and validate one Kafka message, see include/event.h.
 *
 * Pipeline: size checks -> strict UTF-8 over the whole payload ->
 * sk_json_scan_keep() (strict RFC 8259 grammar, depth, number lexemes,
 * string facts, no member name twice in any object, the top-level members
 * of the contract) -> schema_version -> unknown members (rejected, or
 * skipped under events.unknown_fields = ignore) -> delta+set conflict ->
 * member values in text order -> missing members -> Kafka key.  The first
 * failure wins.  On success the strings are decoded into one allocation.
 * A null payload on the users topic is a delete: its key is checked as a
 * username instead. */
#include "event.h"

#include "jsonscan.h"
#include "utf8.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SK_INT53_MAX INT64_C(9007199254740991) /* 2^53 - 1 */
#define QUOTE_MAX 64   /* bytes of input a message may quote */
#define QUOTE_BUF 72   /* QUOTE_MAX + "..." + NUL, '?' never grows it */
#define EVENT_ID_CAP 128

static const char *const reject_codes[SK_E__COUNT] = {
    [SK_OK] = "ok",
    [SK_E_EMPTY] = "empty",
    [SK_E_TOMBSTONE] = "tombstone",
    [SK_E_TOO_LARGE] = "too_large",
    [SK_E_INVALID_UTF8] = "invalid_utf8",
    [SK_E_INVALID_JSON] = "invalid_json",
    [SK_E_TOO_DEEP] = "too_deep",
    [SK_E_NOT_OBJECT] = "not_object",
    [SK_E_DUPLICATE_KEY] = "duplicate_key",
    [SK_E_UNKNOWN_FIELD] = "unknown_field",
    [SK_E_MISSING_FIELD] = "missing_field",
    [SK_E_WRONG_TYPE] = "wrong_type",
    [SK_E_NOT_INTEGER] = "not_integer",
    [SK_E_OUT_OF_RANGE] = "out_of_range",
    [SK_E_TOO_LONG] = "too_long",
    [SK_E_EMPTY_STRING] = "empty_string",
    [SK_E_CONTROL_CHAR] = "control_char",
    [SK_E_CONFLICT] = "conflicting_fields",
    [SK_E_MISSING_KEY] = "missing_key",
    [SK_E_KEY_MISMATCH] = "key_mismatch",
    [SK_E_SCORE_OVERFLOW] = "score_overflow",
    [SK_E_DB_REJECTED] = "db_rejected",
    [SK_E_UNKNOWN_TOPIC] = "unknown_topic",
    [SK_E_NO_MEMORY] = "no_memory",
    [SK_E_TOO_MANY_MEMBERS] = "too_many_members",
    [SK_E_UNSUPPORTED_VERSION] = "unsupported_version",
};

const char *sk_reject_code(enum sk_reject r)
{
    if ((unsigned)r < (unsigned)SK_E__COUNT && reject_codes[r])
        return reject_codes[r];
    return "unknown";
}

void sk_limits_default(struct sk_limits *l)
{
    l->max_message_bytes = 65536;
    l->max_depth = 4;
    l->max_event_id_len = 128;
    l->max_name_chars = 50;
    l->max_game_name_chars = 100;
    l->unknown_fields = SK_UNKNOWN_REJECT;
}

void sk_event_clear(struct sk_event *ev)
{
    free(ev->mem);
    memset(ev, 0, sizeof *ev);
}

/* ---- members of the contract ---- */

enum fid {
    F_EVENT_ID, F_USERNAME, F_NICKNAME, F_GAME_ID, F_GAME_NAME, F_DELTA, F_SET, F_SCHEMA_VERSION,
    F__COUNT
};

#define K_USER (1u << SK_EV_USER)
#define K_SCORE (1u << SK_EV_SCORE)

static const struct {
    const char *name;
    size_t len;
    unsigned kinds;
} fields[F__COUNT] = {
    [F_EVENT_ID] = {"event_id", 8, K_USER | K_SCORE},
    [F_USERNAME] = {"username", 8, K_USER | K_SCORE},
    [F_NICKNAME] = {"nickname", 8, K_USER},
    [F_GAME_ID] = {"game_id", 7, K_SCORE},
    [F_GAME_NAME] = {"game_name", 9, K_SCORE},
    [F_DELTA] = {"delta", 5, K_SCORE},
    [F_SET] = {"set", 3, K_SCORE},
    [F_SCHEMA_VERSION] = {"schema_version", 14, K_USER | K_SCORE},
};

/* The field (F_*) a member name stands for in a kind of event, -1 when it
 * is none of them (an unknown member). */
static int classify(const struct sk_json_str *name, enum sk_event_kind kind)
{
    char buf[24];
    if (name->len >= sizeof buf)
        return -1;
    const char *p = name->raw; /* the usual name has no escape to decode */
    if (name->escaped)
        p = buf, sk_json_decode(name, buf, sizeof buf);
    for (int f = 0; f < F__COUNT; f++)
        if ((fields[f].kinds & (1u << kind)) && fields[f].len == name->len &&
            memcmp(fields[f].name, p, name->len) == 0)
            return f;
    return -1;
}

/* Which top-level members the scan records: every member of the contract
 * (no name repeats, so they fit), and the first unknown one when unknown
 * members are rejected (it is the one reported).  fid[] says which field
 * each recorded member is (-1: unknown), so names are classified once. */
struct keep {
    enum sk_event_kind kind;
    bool ignore_unknown;
    bool unknown_kept;
    int fid[SK_JSON_MAX_MEMBERS];
    size_t n;
};

static bool keep_member(void *ud, const struct sk_json_str *name)
{
    struct keep *k = ud;
    int f = classify(name, k->kind);
    if (f < 0 && (k->ignore_unknown || k->unknown_kept))
        return false;
    k->unknown_kept |= f < 0;
    k->fid[k->n++] = f; /* asked only while the doc has room: it is recorded */
    return true;
}

/* ---- error reporting ---- */

static enum sk_reject fail(struct sk_parse_error *e, enum sk_reject code, const char *field,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum sk_reject fail(struct sk_parse_error *e, enum sk_reject code, const char *field,
                           const char *fmt, ...)
{
    e->code = code;
    sk_utf8_sanitize(e->field, sizeof e->field, field, strlen(field), sizeof e->field - 4);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    if (n < 0)
        e->message[0] = '\0';
    else if ((size_t)n >= sizeof e->message) /* never end in half a character */
        e->message[sk_utf8_check(e->message, strlen(e->message), NULL)] = '\0';
    return code;
}

/* Untrusted raw bytes, made fit to quote. */
static const char *quote_raw(char out[QUOTE_BUF], const char *s, size_t len)
{
    sk_utf8_sanitize(out, QUOTE_BUF, s, len, QUOTE_MAX);
    return out;
}

/* A decoded JSON string, made fit to quote. */
static const char *quote_str(char out[QUOTE_BUF], const struct sk_json_str *s)
{
    char tmp[QUOTE_MAX + 4];
    size_t n = sk_json_decode(s, tmp, sizeof tmp);
    return quote_raw(out, tmp, n);
}

static const char *type_desc(const struct sk_json_value *v)
{
    switch (v->type) {
    case SK_JT_STRING: return "a string";
    case SK_JT_NUMBER: return v->num.integer ? "an integer" : "a number";
    case SK_JT_TRUE:
    case SK_JT_FALSE: return "a boolean";
    case SK_JT_NULL: return "null";
    case SK_JT_ARRAY: return "an array";
    case SK_JT_OBJECT: return "an object";
    }
    return "a value";
}

/* ---- value checks ---- */

struct str_rule {
    size_t max_chars;
    bool ascii_only; /* printable ASCII, event_id */
    bool nullable;   /* null allowed (handled by the caller) */
};

static enum sk_reject check_str(struct sk_parse_error *e, const char *field,
                                const struct sk_json_value *v, const struct str_rule *r)
{
    char q[QUOTE_BUF];
    if (v->type != SK_JT_STRING)
        return fail(e, SK_E_WRONG_TYPE, field, "\"%s\" must be a string%s, got %s", field,
                    r->nullable ? " or null" : "", type_desc(v));
    const struct sk_json_str *s = &v->str;
    if (s->len == 0)
        return fail(e, SK_E_EMPTY_STRING, field, "\"%s\" must not be empty", field);
    if (s->chars > r->max_chars)
        return fail(e, SK_E_TOO_LONG, field, "\"%s\" is %zu characters, the limit is %zu", field,
                    s->chars, r->max_chars);
    if (s->control)
        return fail(e, SK_E_CONTROL_CHAR, field,
                    "\"%s\" contains a control character: \"%s\"", field, quote_str(q, s));
    if (r->ascii_only && s->non_ascii)
        return fail(e, SK_E_OUT_OF_RANGE, field,
                    "\"%s\" must be printable ASCII (U+0020..U+007E), got \"%s\"", field,
                    quote_str(q, s));
    return SK_OK;
}

static enum sk_reject check_int(struct sk_parse_error *e, const char *field,
                                const struct sk_json_value *v, int64_t min, int64_t max)
{
    char q[QUOTE_BUF];
    if (v->type != SK_JT_NUMBER)
        return fail(e, SK_E_WRONG_TYPE, field, "\"%s\" must be an integer, got %s", field,
                    type_desc(v));
    const struct sk_json_num *n = &v->num;
    if (!n->integer)
        return fail(e, SK_E_NOT_INTEGER, field,
                    "\"%s\" must be an integer (no fraction or exponent), got %s", field,
                    quote_raw(q, n->raw, n->raw_len));
    if (!n->fits || n->value < min || n->value > max)
        return fail(e, SK_E_OUT_OF_RANGE, field,
                    "\"%s\" must be between %" PRId64 " and %" PRId64 ", got %s", field, min,
                    max, quote_raw(q, n->raw, n->raw_len));
    return SK_OK;
}

static bool event_id_valid(const struct sk_json_value *v, size_t max)
{
    return v->type == SK_JT_STRING && v->str.len > 0 && v->str.chars <= max &&
           !v->str.control && !v->str.non_ascii;
}

/* The Kafka key of a score event: canonical decimal equal to game_id. */
static bool key_is_game_id(const char *key, size_t len, int64_t game_id)
{
    if (len == 0 || len > 16 || key[0] < '1' || key[0] > '9')
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (key[i] < '0' || key[i] > '9')
            return false;
        v = v * 10 + (key[i] - '0');
    }
    return v == game_id;
}

/* Echo the producer's event_id (member k of the doc, -1: none) in a
 * rejection, when it is valid. */
static void echo_event_id(const struct sk_json_doc *doc, int k, size_t max,
                          struct sk_parse_error *err)
{
    if (k < 0 || !event_id_valid(&doc->m[k].value, max))
        return;
    size_t n = sk_json_decode(&doc->m[k].value.str, err->event_id, EVENT_ID_CAP);
    err->event_id[n] = '\0';
}

/* How many bytes at the start of s are ASCII, a word at a time: events are
 * mostly ASCII, and those bytes need no UTF-8 decoding. */
static size_t ascii_prefix(const char *s, size_t len)
{
    size_t i = 0;
    for (; len - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, sizeof w);
        if (w & UINT64_C(0x8080808080808080))
            break;
    }
    while (i < len && !((unsigned char)s[i] & 0x80))
        i++;
    return i;
}

static char *put_str(char **cursor, const struct sk_json_str *s, size_t *len_out)
{
    char *dst = *cursor;
    size_t n = sk_json_decode(s, dst, s->len);
    dst[n] = '\0';
    *cursor = dst + n + 1;
    *len_out = n;
    return dst;
}

/* A tombstone on the users topic deletes the user its key names.  It has
 * no body, so the key is held to the rules of "username" itself. */
static enum sk_reject parse_user_delete(const void *key, size_t key_len,
                                        const struct sk_limits *lim, struct sk_event *ev,
                                        struct sk_parse_error *err)
{
    char q[QUOTE_BUF];
    if (!key || key_len == 0)
        return fail(err, SK_E_MISSING_KEY, "",
                    "the tombstone has no key; a tombstone deletes the user its key names");
    size_t chars;
    size_t bad = sk_utf8_check(key, key_len, &chars);
    if (bad != key_len)
        return fail(err, SK_E_INVALID_UTF8, "",
                    "the key of the tombstone is not valid UTF-8 (byte offset %zu)", bad);
    if (chars > lim->max_name_chars)
        return fail(err, SK_E_TOO_LONG, "",
                    "the key of the tombstone is %zu characters, a username's limit is %u", chars,
                    lim->max_name_chars);
    const unsigned char *k = key;
    for (size_t i = 0; i < key_len;) {
        uint32_t cp;
        size_t n = sk_utf8_decode(k + i, key_len - i, &cp);
        if (sk_utf8_is_control(cp))
            return fail(err, SK_E_CONTROL_CHAR, "",
                        "the key of the tombstone contains a control character: \"%s\"",
                        quote_raw(q, key, key_len));
        i += n;
    }
    char *mem = malloc(key_len + 1);
    if (!mem)
        return fail(err, SK_E_NO_MEMORY, "", "out of memory");
    memcpy(mem, key, key_len);
    mem[key_len] = '\0';
    *ev = (struct sk_event){.kind = SK_EV_USER, .del = true, .username = mem,
                            .username_len = key_len, .mem = mem};
    return SK_OK;
}

enum sk_reject sk_event_parse(enum sk_event_kind kind, const void *payload, size_t len,
                              const void *key, size_t key_len, const struct sk_limits *lim,
                              struct sk_event *ev, struct sk_parse_error *err)
{
    struct sk_limits defaults;
    if (!lim) {
        sk_limits_default(&defaults);
        lim = &defaults;
    }
    err->code = SK_OK;
    err->field[0] = err->message[0] = err->event_id[0] = '\0';

    if (kind != SK_EV_USER && kind != SK_EV_SCORE)
        return fail(err, SK_E_UNKNOWN_TOPIC, "", "no event contract for kind %d", (int)kind);
    const char *what = kind == SK_EV_USER ? "user" : "score";
    if (!payload && kind == SK_EV_USER)
        return parse_user_delete(key, key_len, lim, ev, err);
    if (!payload)
        return fail(err, SK_E_TOMBSTONE, "",
                    "the message has a null payload (a tombstone): score events are never "
                    "deleted; a tombstone deletes only a user, on the users topic");
    if (len > lim->max_message_bytes)
        return fail(err, SK_E_TOO_LARGE, "", "the message is %zu bytes, the limit is %zu", len,
                    lim->max_message_bytes);
    if (len == 0)
        return fail(err, SK_E_EMPTY, "", "the message is empty");
    const char *text = payload;
    size_t ascii = ascii_prefix(text, len);
    size_t bad = ascii == len ? len : ascii + sk_utf8_check(text + ascii, len - ascii, NULL);
    if (bad != len)
        return fail(err, SK_E_INVALID_UTF8, "",
                    "the message is not valid UTF-8 (byte offset %zu)", bad);

    struct sk_json_doc doc;
    struct sk_json_error jerr;
    struct keep keep = {.kind = kind, .ignore_unknown = lim->unknown_fields == SK_UNKNOWN_IGNORE};
    char q[QUOTE_BUF];
    size_t evid_max = lim->max_event_id_len < EVENT_ID_CAP ? lim->max_event_id_len : EVENT_ID_CAP;
    switch (sk_json_scan_keep(text, len, lim->max_depth, keep_member, &keep, &doc, &jerr)) {
    case SK_JSON_OK: break;
    case SK_JSON_SYNTAX:
        return fail(err, SK_E_INVALID_JSON, "", "invalid JSON at byte offset %zu: %s",
                    jerr.offset, jerr.what);
    case SK_JSON_TOO_DEEP:
        return fail(err, SK_E_TOO_DEEP, "",
                    "JSON nested deeper than %u levels at byte offset %zu", lim->max_depth,
                    jerr.offset);
    case SK_JSON_BAD_SURROGATE:
        return fail(err, SK_E_INVALID_UTF8, "", "invalid string at byte offset %zu: %s",
                    jerr.offset, jerr.what);
    case SK_JSON_DUPLICATE:
        quote_str(q, &jerr.name);
        /* the members before it are recorded: an event_id among them is
         * echoed, unless it is the name used twice */
        if (classify(&jerr.name, kind) != F_EVENT_ID)
            for (size_t k = 0; k < doc.n_members; k++)
                if (keep.fid[k] == F_EVENT_ID)
                    echo_event_id(&doc, (int)k, evid_max, err);
        return fail(err, SK_E_DUPLICATE_KEY, q, "duplicate member \"%s\"", q);
    case SK_JSON_TOO_MANY:
        return fail(err, SK_E_TOO_MANY_MEMBERS, "",
                    "more than %d member names in the objects open at byte offset %zu",
                    SK_JSON_MAX_NAMES, jerr.offset);
    }
    if (doc.type != SK_JT_OBJECT) {
        struct sk_json_value top = {.type = doc.type};
        return fail(err, SK_E_NOT_OBJECT, "", "a %s event must be a JSON object, got %s", what,
                    type_desc(&top));
    }

    /* Member names: the scan recorded every member of the contract, once
     * each, and the first unknown one unless unknown ones are ignored. */
    const int *fid = keep.fid;
    int idx[F__COUNT];
    for (int f = 0; f < F__COUNT; f++)
        idx[f] = -1;
    for (size_t k = 0; k < doc.n_members; k++)
        if (fid[k] >= 0)
            idx[fid[k]] = (int)k;
    echo_event_id(&doc, idx[F_EVENT_ID], evid_max, err);
    /* An event of another version of the contract may use the same names
     * for other things: nothing else of it is judged. */
    if (idx[F_SCHEMA_VERSION] >= 0) {
        const struct sk_json_value *v = &doc.m[idx[F_SCHEMA_VERSION]].value;
        enum sk_reject rc = check_int(err, "schema_version", v, 1, SK_INT53_MAX);
        if (rc != SK_OK)
            return rc;
        if (v->num.value != SK_EVENT_SCHEMA_VERSION)
            return fail(err, SK_E_UNSUPPORTED_VERSION, "schema_version",
                        "\"schema_version\" %" PRId64 " is not supported: this scorekeeper reads "
                        "version %d", v->num.value, SK_EVENT_SCHEMA_VERSION);
    }
    for (size_t k = 0; k < doc.n_members; k++) {
        if (fid[k] < 0) {
            char name[QUOTE_MAX + 4];
            size_t n = sk_json_decode(&doc.m[k].name, name, sizeof name);
            quote_raw(q, name, n);
            return fail(err, SK_E_UNKNOWN_FIELD, q, "unknown member \"%s\" in a %s event", q,
                        what);
        }
    }
    if (idx[F_DELTA] >= 0 && idx[F_SET] >= 0)
        return fail(err, SK_E_CONFLICT, "set",
                    "\"delta\" and \"set\" are mutually exclusive, the event has both");

    /* Member values, in text order. */
    const struct str_rule r_evid = {evid_max, true, false};
    const struct str_rule r_name = {lim->max_name_chars, false, false};
    const struct str_rule r_nick = {lim->max_name_chars, false, true};
    const struct str_rule r_game = {lim->max_game_name_chars, false, false};
    for (size_t k = 0; k < doc.n_members; k++) {
        const struct sk_json_value *v = &doc.m[k].value;
        const char *f = fields[fid[k]].name;
        enum sk_reject rc = SK_OK;
        switch ((enum fid)fid[k]) {
        case F_SCHEMA_VERSION: break; /* checked above */
        case F_EVENT_ID: rc = check_str(err, f, v, &r_evid); break;
        case F_USERNAME: rc = check_str(err, f, v, &r_name); break;
        case F_NICKNAME:
            if (v->type != SK_JT_NULL)
                rc = check_str(err, f, v, &r_nick);
            break;
        case F_GAME_ID: rc = check_int(err, f, v, 1, SK_INT53_MAX); break;
        case F_GAME_NAME: rc = check_str(err, f, v, &r_game); break;
        case F_DELTA:
        case F_SET: rc = check_int(err, f, v, -SK_INT53_MAX, SK_INT53_MAX); break;
        case F__COUNT: break;
        }
        if (rc != SK_OK)
            return rc;
    }

    /* Required members. */
    if (idx[F_USERNAME] < 0)
        return fail(err, SK_E_MISSING_FIELD, "username", "required member \"username\" is missing");
    if (kind == SK_EV_SCORE) {
        if (idx[F_GAME_ID] < 0)
            return fail(err, SK_E_MISSING_FIELD, "game_id",
                        "required member \"game_id\" is missing");
        if (idx[F_DELTA] < 0 && idx[F_SET] < 0)
            return fail(err, SK_E_MISSING_FIELD, "delta",
                        "one of \"delta\" or \"set\" is required");
    }

    /* The Kafka key. */
    if (!key || key_len == 0)
        return fail(err, SK_E_MISSING_KEY, "", "the message has no key; %s events are keyed by %s",
                    what, kind == SK_EV_USER ? "username" : "game_id in decimal");
    /* One allocation for every string; the key is compared with the
     * decoded username. */
    const struct sk_json_str *uname = &doc.m[idx[F_USERNAME]].value.str;
    const struct sk_json_str *s_evid = idx[F_EVENT_ID] >= 0 ? &doc.m[idx[F_EVENT_ID]].value.str : NULL;
    const struct sk_json_value *v_nick = idx[F_NICKNAME] >= 0 ? &doc.m[idx[F_NICKNAME]].value : NULL;
    const struct sk_json_str *s_nick = v_nick && v_nick->type == SK_JT_STRING ? &v_nick->str : NULL;
    const struct sk_json_str *s_game = idx[F_GAME_NAME] >= 0 ? &doc.m[idx[F_GAME_NAME]].value.str : NULL;
    size_t need = uname->len + 1 + (s_evid ? s_evid->len + 1 : 0) +
                  (s_nick ? s_nick->len + 1 : 0) + (s_game ? s_game->len + 1 : 0);
    char *mem = malloc(need);
    if (!mem)
        return fail(err, SK_E_NO_MEMORY, "", "out of memory");
    struct sk_event out = {.kind = kind, .mem = mem};
    char *cur = mem;
    out.username = put_str(&cur, uname, &out.username_len);
    if (s_evid)
        out.event_id = put_str(&cur, s_evid, &out.event_id_len);
    if (kind == SK_EV_USER) {
        out.nick = !v_nick ? SK_NICK_ABSENT : s_nick ? SK_NICK_SET : SK_NICK_NULL;
        if (s_nick)
            out.nickname = put_str(&cur, s_nick, &out.nickname_len);
    } else {
        out.game_id = doc.m[idx[F_GAME_ID]].value.num.value;
        if (s_game)
            out.game_name = put_str(&cur, s_game, &out.game_name_len);
        out.op = idx[F_DELTA] >= 0 ? SK_OP_DELTA : SK_OP_SET;
        out.value = doc.m[idx[out.op == SK_OP_DELTA ? F_DELTA : F_SET]].value.num.value;
    }
    char q1[QUOTE_BUF], q2[QUOTE_BUF];
    if (kind == SK_EV_USER) {
        if (key_len != out.username_len || memcmp(key, out.username, key_len) != 0) {
            fail(err, SK_E_KEY_MISMATCH, "username",
                 "the key \"%s\" does not match \"username\" \"%s\"",
                 quote_raw(q1, key, key_len), quote_raw(q2, out.username, out.username_len));
            free(mem);
            return SK_E_KEY_MISMATCH;
        }
    } else if (!key_is_game_id(key, key_len, out.game_id)) {
        fail(err, SK_E_KEY_MISMATCH, "game_id",
             "the key \"%s\" is not \"game_id\" %" PRId64 " in canonical decimal",
             quote_raw(q1, key, key_len), out.game_id);
        free(mem);
        return SK_E_KEY_MISMATCH;
    }
    *ev = out;
    return SK_OK;
}
