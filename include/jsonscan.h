/* jsonscan — a strict, allocation-free RFC 8259 validator that also
 * records the members of a top-level object.
 *
 * Why not cJSON for event payloads: cJSON 1.7.15 accepts trailing garbage
 * (cJSON_ParseWithLength does not require the end of input), leading zeros
 * ("01"), any byte <= 0x20 as white space and raw control characters in
 * strings; it truncates strings at an escaped NUL, rounds integers above
 * 2^53 through a double, fails on number tokens of 64 bytes or more and
 * allocates once per node and per string.  A validating pre-scan is needed
 * to paper over the first five anyway; once it exists it sees every token,
 * so it records the (few) top-level members directly, and the event parser
 * decodes the strings straight into the event's single allocation.  One
 * parser also means no parser differential to keep in sync.
 *
 * Input must already be valid UTF-8 (see sk_utf8_check()). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Members of the top-level object recorded; the rest are counted only.
 * Events have at most 8 distinct members, and no name may repeat, so among
 * 12 recorded an unknown one exists. */
#define SK_JSON_MAX_MEMBERS 12
/* Member names the objects open at one point of the text may hold between
 * them: each name is kept until its object closes, to find one used twice
 * without allocating.  So an object has at most this many members, counting
 * those of the objects it is nested in. */
#define SK_JSON_MAX_NAMES 128
/* Hard cap on nesting whatever the configured limit (bit stack size). */
#define SK_JSON_DEPTH_CAP 1024u

enum sk_json_type {
    SK_JT_NULL = 1,
    SK_JT_FALSE,
    SK_JT_TRUE,
    SK_JT_NUMBER,
    SK_JT_STRING,
    SK_JT_ARRAY,
    SK_JT_OBJECT
};

/* A string token; raw is the text between the quotes (escapes intact). */
struct sk_json_str {
    const char *raw;
    size_t raw_len;
    size_t len;      /* bytes once decoded */
    size_t chars;    /* code points once decoded */
    bool escaped;    /* contains a backslash escape */
    bool control;    /* decodes to C0, DEL or C1 (incl. an escaped NUL) */
    bool non_ascii;  /* decodes to something above U+007F */
};

/* A number token.  integer: no fraction and no exponent in the text.
 * fits: integer whose magnitude is <= INT64_MAX (value is then exact). */
struct sk_json_num {
    const char *raw;
    size_t raw_len;
    bool integer;
    bool fits;
    int64_t value;
};

struct sk_json_value {
    enum sk_json_type type;
    struct sk_json_str str; /* SK_JT_STRING */
    struct sk_json_num num; /* SK_JT_NUMBER */
};

struct sk_json_member {
    struct sk_json_str name;
    struct sk_json_value value;
};

/* The top-level value; members only when it is an object. */
struct sk_json_doc {
    enum sk_json_type type;
    size_t n_members;     /* recorded, <= SK_JSON_MAX_MEMBERS */
    size_t total_members; /* present */
    struct sk_json_member m[SK_JSON_MAX_MEMBERS];
};

enum sk_json_status {
    SK_JSON_OK = 0,
    SK_JSON_SYNTAX,        /* not RFC 8259 JSON */
    SK_JSON_TOO_DEEP,      /* nesting above max_depth */
    SK_JSON_BAD_SURROGATE, /* \u escape(s) that are not valid UTF-16 */
    SK_JSON_DUPLICATE,     /* a member name used twice in one object (any depth) */
    SK_JSON_TOO_MANY,      /* more than SK_JSON_MAX_NAMES names in the open objects */
};

struct sk_json_error {
    size_t offset;    /* byte offset of the problem */
    const char *what; /* static text, e.g. "expected ':' after member name" */
    struct sk_json_str name; /* SK_JSON_DUPLICATE: the name met the second time */
};

/* Whether to record a member of the top-level object, asked once per member
 * name in text order (while room is left in the doc). */
typedef bool (*sk_json_keep_fn)(void *ud, const struct sk_json_str *name);

/* Validate p[0..len) (valid UTF-8) as one JSON text, nesting at most
 * max_depth containers (the top-level object is depth 1; values above
 * SK_JSON_DEPTH_CAP are treated as the cap), with no member name twice in
 * any object (names compare decoded: "\u0061" is "a").  Stops at the first
 * problem in text order; scanning a too-deep text stops at the first
 * bracket too many.  On SK_JSON_OK, *doc describes the top-level value; on
 * SK_JSON_DUPLICATE it holds the members recorded before the name met
 * twice.  Records the first SK_JSON_MAX_MEMBERS members. */
enum sk_json_status sk_json_scan(const char *p, size_t len, unsigned max_depth,
                                 struct sk_json_doc *doc, struct sk_json_error *err);
/* The same, recording only the top-level members keep(ud, name) wants. */
enum sk_json_status sk_json_scan_keep(const char *p, size_t len, unsigned max_depth,
                                      sk_json_keep_fn keep, void *ud, struct sk_json_doc *doc,
                                      struct sk_json_error *err);

/* Decode a string token scanned by sk_json_scan() into out, which has room
 * for cap bytes; stops before a character that does not fit.  Returns the
 * bytes written (s->len when cap >= s->len).  No NUL is appended. */
size_t sk_json_decode(const struct sk_json_str *s, char *out, size_t cap);
