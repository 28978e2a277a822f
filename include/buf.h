/* buf — a growable byte buffer for building SQL statements and JSON texts.
 *
 * Owns one heap block.  Appends never fail silently: on allocation failure
 * the buffer is marked failed, further appends are ignored, and
 * sk_buf_failed() tells the caller once it is done building. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sk_buf {
    char *p;
    size_t len;
    size_t cap;
    bool failed;
};

void sk_buf_init(struct sk_buf *b);
void sk_buf_free(struct sk_buf *b);
void sk_buf_reset(struct sk_buf *b); /* len = 0, keeps the memory */
bool sk_buf_reserve(struct sk_buf *b, size_t extra);
void sk_buf_append_slow(struct sk_buf *b, const void *data, size_t len);
/* Appends are inline when the room is there: results and statements are
 * built from many short pieces (about 45 appends per event). */
static inline void sk_buf_append(struct sk_buf *b, const void *data, size_t len)
{
    if (!b->failed && len < b->cap - b->len) { /* room for the bytes and the NUL */
        if (len)
            __builtin_memcpy(b->p + b->len, data, len);
        b->len += len;
        b->p[b->len] = '\0';
        return;
    }
    sk_buf_append_slow(b, data, len);
}
/* Inline so that a literal's length is known when compiled. */
static inline void sk_buf_puts(struct sk_buf *b, const char *s) { sk_buf_append(b, s, __builtin_strlen(s)); }
static inline void sk_buf_putc(struct sk_buf *b, char c) { sk_buf_append(b, &c, 1); }
void sk_buf_printf(struct sk_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sk_buf_i64(struct sk_buf *b, int64_t v);
/* A JSON string literal, quotes included; the input must be valid UTF-8. */
void sk_buf_json_str(struct sk_buf *b, const char *s, size_t len);
/* A SQL string literal, quotes included, for a connection whose character
 * set is utf8mb4 and whose sql_mode has NO_BACKSLASH_ESCAPES off (the
 * daemon sets both on connect).  Safe for any bytes of valid UTF-8. */
void sk_buf_sql_str(struct sk_buf *b, const char *s, size_t len);
static inline bool sk_buf_failed(const struct sk_buf *b) { return b->failed; }
/* The value of one hex digit, -1 when c is not one (JSON \u escapes,
 * percent-encoding in URLs). */
static inline int sk_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
/* Format a one-line error message into err (when err and errlen) and
 * return -EINVAL: the "set the message, refuse the input" step of parsers. */
int sk_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same for another failure: returns code, a negative errno (-ENOMEM,
 * -ENOENT, ...). */
int sk_errf_code(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* NUL-terminated view of the content (always valid, "" when empty). */
const char *sk_buf_cstr(struct sk_buf *b);
