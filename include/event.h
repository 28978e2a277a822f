/* event — the input event contract: parse and validate one Kafka message.
 *
 * Untrusted bytes in, a validated sk_event (or one specific rejection) out.
 * Nothing that leaves sk_event_parse() successfully can carry invalid UTF-8,
 * control characters, out-of-range numbers or over-long strings; the SQL and
 * JSON builders downstream rely on that.  Contract: schemas/<kind>-event.schema.json,
 * schemas/README.md. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Stable, machine-readable rejection codes (the "error.code" of result
 * events).  Append only; never renumber or rename: consumers match on them. */
enum sk_reject {
    SK_OK = 0,
    SK_E_EMPTY,            /* "empty": zero-length payload */
    SK_E_TOMBSTONE,        /* "tombstone": null payload (Kafka delete marker) */
    SK_E_TOO_LARGE,        /* "too_large": payload above limits.max_message_bytes */
    SK_E_INVALID_UTF8,     /* "invalid_utf8": payload or a string is not valid UTF-8 */
    SK_E_INVALID_JSON,     /* "invalid_json": not parseable JSON */
    SK_E_TOO_DEEP,         /* "too_deep": nesting deeper than limits.max_depth */
    SK_E_NOT_OBJECT,       /* "not_object": top level is not a JSON object */
    SK_E_DUPLICATE_KEY,    /* "duplicate_key": the same member twice */
    SK_E_UNKNOWN_FIELD,    /* "unknown_field": a member the contract does not define */
    SK_E_MISSING_FIELD,    /* "missing_field": a required member is absent */
    SK_E_WRONG_TYPE,       /* "wrong_type": e.g. a string where a number is due */
    SK_E_NOT_INTEGER,      /* "not_integer": a fraction or exponent where an integer is due */
    SK_E_OUT_OF_RANGE,     /* "out_of_range": integer outside its allowed range */
    SK_E_TOO_LONG,         /* "too_long": string longer than its limit */
    SK_E_EMPTY_STRING,     /* "empty_string": a string that must not be empty is */
    SK_E_CONTROL_CHAR,     /* "control_char": a control character in a string */
    SK_E_CONFLICT,         /* "conflicting_fields": both "delta" and "set" */
    SK_E_MISSING_KEY,      /* "missing_key": Kafka message has no key */
    SK_E_KEY_MISMATCH,     /* "key_mismatch": key differs from username / game_id */
    SK_E_SCORE_OVERFLOW,   /* "score_overflow": the new total would leave BIGINT */
    SK_E_DB_REJECTED,      /* "db_rejected": the database refused this event */
    SK_E_UNKNOWN_TOPIC,    /* "unknown_topic": message from a topic we do not serve */
    SK_E_NO_MEMORY,        /* "no_memory": not a verdict on the message: allocation
                            * failed, the caller should retry, never reject */
    SK_E_TOO_MANY_MEMBERS, /* "too_many_members": more member names in the open
                            * objects than the scanner keeps (SK_JSON_MAX_NAMES) */
    SK_E_UNSUPPORTED_VERSION, /* "unsupported_version": "schema_version" other than 1 */
    SK_E__COUNT
};

/* "invalid_json", ... ; never NULL. */
const char *sk_reject_code(enum sk_reject r);

enum sk_event_kind { SK_EV_USER = 1, SK_EV_SCORE = 2 };
enum sk_nick { SK_NICK_ABSENT = 0, SK_NICK_NULL, SK_NICK_SET };
enum sk_op { SK_OP_DELTA = 1, SK_OP_SET = 2 };

/* What a member the contract does not define does to an event
 * (events.unknown_fields). */
enum sk_unknown_fields {
    SK_UNKNOWN_REJECT = 0, /* the event is rejected unknown_field (the default) */
    SK_UNKNOWN_IGNORE = 1, /* the member is skipped; the JSON around it is still
                              checked (strict grammar and UTF-8, no name twice) */
};

/* The version of the input contract this code reads; an event's
 * "schema_version" member, when present, must equal it. */
#define SK_EVENT_SCHEMA_VERSION 1

/* Limits a stranger's input is held to; all are settings (limits.*, and
 * events.unknown_fields). */
struct sk_limits {
    size_t max_message_bytes;   /* default 65536 */
    unsigned max_depth;         /* default 4 (events are flat objects) */
    unsigned max_event_id_len;  /* default 128 (printable ASCII, bytes) */
    unsigned max_name_chars;    /* default 50 (username, nickname; code points) */
    unsigned max_game_name_chars; /* default 100 (code points) */
    unsigned unknown_fields;    /* enum sk_unknown_fields, default SK_UNKNOWN_REJECT */
};
void sk_limits_default(struct sk_limits *l);

/* A validated event.  Strings point into `mem` (one allocation owned by the
 * event, freed by sk_event_clear()); each is NUL-terminated and its length
 * is given.  A _len of 0 means "absent" for optional strings. */
struct sk_event {
    enum sk_event_kind kind;
    const char *event_id;   size_t event_id_len;   /* optional */
    const char *username;   size_t username_len;   /* both kinds */
    /* user events */
    bool del;      /* a tombstone: delete the user the key names (no event_id, nick absent) */
    enum sk_nick nick;
    const char *nickname;   size_t nickname_len;   /* when nick == SK_NICK_SET */
    /* score events */
    int64_t game_id;                               /* 1 .. 2^53-1 */
    const char *game_name;  size_t game_name_len;  /* optional */
    enum sk_op op;
    int64_t value;                                 /* delta or set, |v| <= 2^53-1 */
    char *mem;
};

/* Why a message was rejected.  `message` is for humans (it may quote the
 * field name, never more than 64 bytes of the offending value, and is
 * always valid UTF-8 without control characters). */
struct sk_parse_error {
    enum sk_reject code;
    char field[32];         /* the member concerned, "" when none */
    char message[192];
    /* event_id, when the payload had a valid one: lets a rejection result
     * still carry the producer's id. */
    char event_id[129];
};

/* Parse one message.  payload == NULL means a tombstone: on the users topic
 * it deletes the user its key names (an event with del, the key checked as
 * a username), on the scores topic it is rejected.  key may be NULL
 * (no key); an empty key counts as no key.  Neither needs a terminating NUL.
 * lim may be NULL (defaults).  Returns SK_OK and fills *ev, or a rejection
 * code and fills *err; *ev is untouched on failure.  SK_E_NO_MEMORY is not
 * a verdict on the message.  The order of checks and the decisions (-0 is
 * 0, 1.0 and 1e3 are not_integer, lone \u surrogates are invalid_utf8)
 * are documented in schemas/README.md.  Costs one strict scan of the
 * payload and, on success only, one malloc. */
enum sk_reject sk_event_parse(enum sk_event_kind kind, const void *payload, size_t len,
                              const void *key, size_t key_len, const struct sk_limits *lim,
                              struct sk_event *ev, struct sk_parse_error *err);
void sk_event_clear(struct sk_event *ev);
