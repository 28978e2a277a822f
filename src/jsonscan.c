/* jsonscan — strict JSON validator recording top-level members, see
 * include/jsonscan.h. */
#include "jsonscan.h"

#include "buf.h"
#include "utf8.h"

#include <assert.h>
#include <string.h>

struct scan {
    const unsigned char *p;
    size_t len;
    size_t i;
    struct sk_json_error *err;
};

static enum sk_json_status fail_at(struct scan *s, size_t at, enum sk_json_status st,
                                   const char *what)
{
    s->err->offset = at;
    s->err->what = what;
    return st;
}

static enum sk_json_status bad(struct scan *s, const char *what)
{
    return fail_at(s, s->i, SK_JSON_SYNTAX, what);
}

/* Called between every two tokens: inline, so that compact text (no white
 * space at all) costs one comparison. */
static inline __attribute__((always_inline)) void skip_ws(struct scan *s)
{
    while (s->i < s->len) {
        unsigned char c = s->p[s->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        s->i++;
    }
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Four hex digits at p (caller checked they are there), or -1. */
static long hex4(const unsigned char *p)
{
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int d = sk_hex_digit(p[k]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decode the escape at p[0] == '\\' of a validated string; returns the
 * bytes consumed and the code point. */
static size_t unescape(const unsigned char *p, uint32_t *cp)
{
    switch (p[1]) {
    case 'b': *cp = '\b'; return 2;
    case 'f': *cp = '\f'; return 2;
    case 'n': *cp = '\n'; return 2;
    case 'r': *cp = '\r'; return 2;
    case 't': *cp = '\t'; return 2;
    case 'u': {
        uint32_t v = (uint32_t)hex4(p + 2);
        if (v >= 0xd800 && v <= 0xdbff) {
            uint32_t lo = (uint32_t)hex4(p + 8);
            *cp = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
            return 12;
        }
        *cp = v;
        return 6;
    }
    default: *cp = p[1]; return 2; /* " \ / */
    }
}

/* The bytes a string holds as they are, with nothing to check: printable
 * ASCII but '"' and '\\' (one table lookup a byte instead of four tests). */
#define PLAIN16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
static const unsigned char plain_byte[256] = {
    [0x20] = 1, 1, 0 /* '"' */, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    PLAIN16, PLAIN16,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 /* '\\' */, 1, 1, 1,
    PLAIN16,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 /* DEL */,
};

static enum sk_json_status scan_string(struct scan *s, struct sk_json_str *out)
{
    const unsigned char *p = s->p;
    size_t len = s->len;
    size_t start = ++s->i; /* past the opening quote */
    struct sk_json_str t = {0};
    for (;;) {
        /* fast path: plain printable ASCII */
        size_t i = s->i;
        while (i < len && plain_byte[p[i]])
            i++;
        t.len += i - s->i;
        t.chars += i - s->i;
        s->i = i;
        if (i >= len)
            return bad(s, "unterminated string");
        unsigned char c = p[i];
        if (c == '"')
            break;
        uint32_t cp;
        if (c == '\\') {
            t.escaped = true;
            if (i + 1 >= len)
                return bad(s, "unterminated string");
            switch (p[i + 1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                cp = p[i + 1];
                if (cp == 'b' || cp == 'f' || cp == 'n' || cp == 'r' || cp == 't')
                    cp = 0x08; /* any C0 control: only "control" matters */
                s->i += 2;
                break;
            case 'u': {
                if (len - i < 6 || hex4(p + i + 2) < 0)
                    return bad(s, "invalid \\u escape");
                cp = (uint32_t)hex4(p + i + 2);
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return fail_at(s, i, SK_JSON_BAD_SURROGATE,
                                   "\\u escape is a lone low surrogate");
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    long lo = -1;
                    if (len - i >= 12 && p[i + 6] == '\\' && p[i + 7] == 'u')
                        lo = hex4(p + i + 8);
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return fail_at(s, i, SK_JSON_BAD_SURROGATE,
                                       "\\u escape is a high surrogate without a low one");
                    cp = 0x10000;
                    s->i += 6;
                }
                s->i += 6;
                break;
            }
            default:
                return bad(s, "invalid escape in string");
            }
        } else if (c < 0x20) {
            return bad(s, "unescaped control character in string");
        } else if (c < 0x80) {
            cp = c; /* DEL */
            s->i++;
        } else {
            size_t n = sk_utf8_decode(p + i, len - i, &cp);
            if (n == 0)
                return bad(s, "invalid UTF-8 in string");
            s->i += n;
        }
        t.len += sk_utf8_len(cp);
        t.chars++;
        if (sk_utf8_is_control(cp))
            t.control = true;
        if (cp >= 0x80)
            t.non_ascii = true;
    }
    t.raw = (const char *)p + start;
    t.raw_len = s->i - start;
    s->i++; /* closing quote */
    if (out)
        *out = t;
    return SK_JSON_OK;
}

static enum sk_json_status scan_number(struct scan *s, struct sk_json_num *out)
{
    const unsigned char *p = s->p;
    size_t len = s->len, start = s->i;
    bool neg = false, overflow = false, integer = true;
    uint64_t mag = 0;
    if (p[s->i] == '-') {
        neg = true;
        s->i++;
    }
    if (s->i >= len || !is_digit(p[s->i]))
        return bad(s, "expected a digit");
    if (p[s->i] == '0') {
        s->i++; /* a following digit is caught as trailing garbage */
    } else {
        while (s->i < len && is_digit(p[s->i])) {
            unsigned d = (unsigned)(p[s->i] - '0');
            if (mag > (UINT64_MAX - d) / 10)
                overflow = true;
            else
                mag = mag * 10 + d;
            s->i++;
        }
    }
    if (s->i < len && p[s->i] == '.') {
        integer = false;
        s->i++;
        if (s->i >= len || !is_digit(p[s->i]))
            return bad(s, "expected a digit after '.'");
        while (s->i < len && is_digit(p[s->i]))
            s->i++;
    }
    if (s->i < len && (p[s->i] == 'e' || p[s->i] == 'E')) {
        integer = false;
        s->i++;
        if (s->i < len && (p[s->i] == '+' || p[s->i] == '-'))
            s->i++;
        if (s->i >= len || !is_digit(p[s->i]))
            return bad(s, "expected a digit in the exponent");
        while (s->i < len && is_digit(p[s->i]))
            s->i++;
    }
    if (out) {
        out->raw = (const char *)p + start;
        out->raw_len = s->i - start;
        out->integer = integer;
        out->fits = integer && !overflow && mag <= (uint64_t)INT64_MAX;
        out->value = out->fits ? (neg ? -(int64_t)mag : (int64_t)mag) : 0;
    }
    return SK_JSON_OK;
}

static enum sk_json_status scan_literal(struct scan *s, const char *word, size_t n)
{
    if (s->len - s->i < n || memcmp(s->p + s->i, word, n) != 0)
        return bad(s, "invalid literal");
    s->i += n;
    return SK_JSON_OK;
}

/* ---- member names ------------------------------------------------------- */

/* The bytes of a scanned string once decoded, one at a time: names are
 * compared decoded, so "\u0061" and "a" are the same name. */
struct dec {
    const unsigned char *p;
    size_t i, n;
    char b[4];
    size_t bi, bn;
};

static void dec_init(struct dec *d, const struct sk_json_str *s)
{
    *d = (struct dec){.p = (const unsigned char *)s->raw, .n = s->raw_len};
}

static int dec_next(struct dec *d)
{
    if (d->bi < d->bn)
        return (unsigned char)d->b[d->bi++];
    if (d->i >= d->n)
        return -1;
    if (d->p[d->i] != '\\')
        return d->p[d->i++];
    uint32_t cp;
    d->i += unescape(d->p + d->i, &cp);
    d->bn = sk_utf8_put(d->b, cp);
    d->bi = 1;
    return (unsigned char)d->b[0];
}

/* FNV-1a over the decoded bytes. */
static uint64_t name_hash(const struct sk_json_str *s)
{
    uint64_t h = 0xcbf29ce484222325u;
    if (!s->escaped) { /* the usual name: its text is its bytes */
        for (size_t i = 0; i < s->raw_len; i++)
            h = (h ^ (unsigned char)s->raw[i]) * 0x100000001b3u;
        return h;
    }
    struct dec d;
    dec_init(&d, s);
    for (int c; (c = dec_next(&d)) >= 0;)
        h = (h ^ (unsigned)c) * 0x100000001b3u;
    return h;
}

static bool name_equal(const struct sk_json_str *a, const struct sk_json_str *b)
{
    if (a->len != b->len)
        return false;
    if (!a->escaped && !b->escaped)
        return memcmp(a->raw, b->raw, a->len) == 0;
    struct dec x, y;
    dec_init(&x, a);
    dec_init(&y, b);
    int c;
    while ((c = dec_next(&x)) >= 0)
        if (c != dec_next(&y))
            return false;
    return true;
}

struct name_ref {
    struct sk_json_str name;
    uint64_t hash;
};

/* The names of the open objects, innermost last; base[d] is where the
 * names of the object at depth d + 1 start. */
struct names {
    struct name_ref v[SK_JSON_MAX_NAMES];
    size_t n;
    uint8_t base[SK_JSON_DEPTH_CAP];
};

static_assert(SK_JSON_MAX_NAMES <= UINT8_MAX, "base[] holds indexes into v[]");

/* Add name to the innermost open object (at depth d), unless it is
 * already there. */
static enum sk_json_status name_add(struct scan *s, struct names *nm, unsigned d,
                                    const struct sk_json_str *name, size_t at)
{
    uint64_t h = name_hash(name);
    for (size_t k = nm->base[d - 1]; k < nm->n; k++)
        if (nm->v[k].hash == h && name_equal(&nm->v[k].name, name)) {
            s->err->name = *name;
            return fail_at(s, at, SK_JSON_DUPLICATE, "member name used twice in one object");
        }
    if (nm->n == SK_JSON_MAX_NAMES)
        return fail_at(s, at, SK_JSON_TOO_MANY, "too many members in the open objects");
    nm->v[nm->n++] = (struct name_ref){*name, h};
    return SK_JSON_OK;
}

/* ---- the scan ------------------------------------------------------------- */

enum sk_json_status sk_json_scan_keep(const char *text, size_t len, unsigned max_depth,
                                      sk_json_keep_fn keep, void *ud, struct sk_json_doc *doc,
                                      struct sk_json_error *err)
{
    struct scan sc = {(const unsigned char *)text, len, 0, err};
    struct scan *s = &sc;
    uint64_t is_obj[SK_JSON_DEPTH_CAP / 64]; /* bit per open container */
    struct names nm;
    unsigned d = 0, maxd = max_depth < SK_JSON_DEPTH_CAP ? max_depth : SK_JSON_DEPTH_CAP;
    struct sk_json_member *cur = NULL;
    struct sk_json_value *rec;
    struct sk_json_str name;
    enum sk_json_status st = SK_JSON_OK;
    enum sk_json_type t;
    bool top_obj = false, in_obj;
    size_t at;

    nm.n = 0;
    doc->type = 0;
    doc->n_members = doc->total_members = 0;
    err->offset = 0;
    err->what = "";
    memset(&err->name, 0, sizeof err->name);
    skip_ws(s);

value:
    if (s->i >= len)
        return bad(s, "expected a value");
    /* members of the top-level object are recorded */
    rec = (d == 1 && top_obj && cur) ? &cur->value : NULL;
    switch (s->p[s->i]) {
    case '{':
    case '[':
        t = s->p[s->i] == '{' ? SK_JT_OBJECT : SK_JT_ARRAY;
        if (d == 0) {
            doc->type = t;
            top_obj = t == SK_JT_OBJECT;
        }
        if (rec)
            rec->type = t;
        if (d >= maxd)
            return fail_at(s, s->i, SK_JSON_TOO_DEEP, "nesting too deep");
        if (t == SK_JT_OBJECT) {
            is_obj[d / 64] |= (uint64_t)1 << (d % 64);
            nm.base[d] = (uint8_t)nm.n;
        } else {
            is_obj[d / 64] &= ~((uint64_t)1 << (d % 64));
        }
        d++;
        s->i++;
        skip_ws(s);
        if (s->i < len && s->p[s->i] == (t == SK_JT_OBJECT ? '}' : ']')) {
            s->i++;
            d--;
            goto after;
        }
        if (t == SK_JT_OBJECT)
            goto member;
        goto value;
    case '"':
        t = SK_JT_STRING;
        st = scan_string(s, rec ? &rec->str : NULL);
        break;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        t = SK_JT_NUMBER;
        st = scan_number(s, rec ? &rec->num : NULL);
        break;
    case 't':
        t = SK_JT_TRUE;
        st = scan_literal(s, "true", 4);
        break;
    case 'f':
        t = SK_JT_FALSE;
        st = scan_literal(s, "false", 5);
        break;
    case 'n':
        t = SK_JT_NULL;
        st = scan_literal(s, "null", 4);
        break;
    default:
        return bad(s, "expected a value");
    }
    if (st != SK_JSON_OK)
        return st;
    if (d == 0)
        doc->type = t;
    if (rec)
        rec->type = t;

after:
    skip_ws(s);
    if (d == 0) {
        if (s->i != len)
            return bad(s, "unexpected data after the JSON value");
        return SK_JSON_OK;
    }
    in_obj = (is_obj[(d - 1) / 64] >> ((d - 1) % 64)) & 1;
    if (s->i >= len)
        return bad(s, in_obj ? "unterminated object" : "unterminated array");
    if (s->p[s->i] == ',') {
        s->i++;
        skip_ws(s);
        if (in_obj)
            goto member;
        goto value;
    }
    if (s->p[s->i] == (in_obj ? '}' : ']')) {
        s->i++;
        d--;
        if (in_obj) /* its names are done with */
            nm.n = nm.base[d];
        goto after;
    }
    return bad(s, in_obj ? "expected ',' or '}'" : "expected ',' or ']'");

member:
    if (s->i >= len || s->p[s->i] != '"')
        return bad(s, "expected a member name");
    at = s->i;
    st = scan_string(s, &name);
    if (st != SK_JSON_OK)
        return st;
    if ((st = name_add(s, &nm, d, &name, at)) != SK_JSON_OK)
        return st;
    if (d == 1 && top_obj) {
        doc->total_members++;
        cur = NULL;
        if (doc->n_members < SK_JSON_MAX_MEMBERS && (!keep || keep(ud, &name))) {
            cur = &doc->m[doc->n_members++];
            memset(cur, 0, sizeof *cur);
            cur->name = name;
        }
    }
    skip_ws(s);
    if (s->i >= len || s->p[s->i] != ':')
        return bad(s, "expected ':' after member name");
    s->i++;
    skip_ws(s);
    goto value;
}

enum sk_json_status sk_json_scan(const char *text, size_t len, unsigned max_depth,
                                 struct sk_json_doc *doc, struct sk_json_error *err)
{
    return sk_json_scan_keep(text, len, max_depth, NULL, NULL, doc, err);
}

size_t sk_json_decode(const struct sk_json_str *s, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s->raw;
    size_t n = s->raw_len;
    if (!s->escaped) {
        if (n > cap) { /* cut at a character boundary */
            n = cap;
            while (n > 0 && (p[n] & 0xc0) == 0x80)
                n--;
        }
        memcpy(out, p, n);
        return n;
    }
    size_t i = 0, o = 0;
    while (i < n) {
        if (p[i] == '\\') {
            uint32_t cp;
            size_t adv = unescape(p + i, &cp);
            if (o + sk_utf8_len(cp) > cap)
                break;
            o += sk_utf8_put(out + o, cp);
            i += adv;
            continue;
        }
        size_t run = i; /* a run of raw bytes up to the next escape */
        while (run < n && p[run] != '\\')
            run++;
        size_t take = run - i;
        if (o + take > cap) {
            take = cap - o;
            while (take > 0 && (p[i + take] & 0xc0) == 0x80)
                take--;
            memcpy(out + o, p + i, take);
            o += take;
            break;
        }
        memcpy(out + o, p + i, take);
        o += take;
        i = run;
    }
    return o;
}
