/* buf — growable byte buffer, see include/buf.h. */
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sk_buf_init(struct sk_buf *b) { *b = (struct sk_buf){0}; }

void sk_buf_free(struct sk_buf *b)
{
    free(b->p);
    *b = (struct sk_buf){0};
}

void sk_buf_reset(struct sk_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->p)
        b->p[0] = '\0';
}

bool sk_buf_reserve(struct sk_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    /* +1 keeps room for the terminating NUL of sk_buf_cstr(). */
    if (extra > SIZE_MAX / 2 - b->len - 1) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void sk_buf_append_slow(struct sk_buf *b, const void *data, size_t len)
{
    if (!sk_buf_reserve(b, len))
        return;
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void sk_buf_printf(struct sk_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sk_buf_reserve(b, (size_t)n)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sk_buf_i64(struct sk_buf *b, int64_t v)
{
    char tmp[24];
    char *e = tmp + sizeof tmp, *q = e;
    /* Work in unsigned so INT64_MIN has no overflow. */
    uint64_t u = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--q = '-';
    sk_buf_append(b, q, (size_t)(e - q));
}

void sk_buf_json_str(struct sk_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (!sk_buf_reserve(b, len + 2))
        return;
    sk_buf_putc(b, '"');
    size_t run = 0; /* bytes copied verbatim in one go */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
            continue;
        sk_buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': sk_buf_append(b, "\\\"", 2); break;
        case '\\': sk_buf_append(b, "\\\\", 2); break;
        case '\n': sk_buf_append(b, "\\n", 2); break;
        case '\r': sk_buf_append(b, "\\r", 2); break;
        case '\t': sk_buf_append(b, "\\t", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            sk_buf_append(b, u, sizeof u);
        }
        }
    }
    sk_buf_append(b, s + run, len - run);
    sk_buf_putc(b, '"');
}

void sk_buf_sql_str(struct sk_buf *b, const char *s, size_t len)
{
    /* In utf8mb4 no multi-byte sequence contains a byte below 0x80, so
     * escaping the ASCII specials byte by byte is exact. */
    if (!sk_buf_reserve(b, len + 2))
        return;
    sk_buf_putc(b, '\'');
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        const char *esc;
        switch (s[i]) {
        case '\'': esc = "\\'"; break;
        case '\\': esc = "\\\\"; break;
        case '\0': esc = "\\0"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\x1a': esc = "\\Z"; break;
        default: continue;
        }
        sk_buf_append(b, s + run, i - run);
        sk_buf_append(b, esc, 2);
        run = i + 1;
    }
    sk_buf_append(b, s + run, len - run);
    sk_buf_putc(b, '\'');
}

const char *sk_buf_cstr(struct sk_buf *b)
{
    if (!b->p || b->failed)
        return "";
    return b->p;
}

static void verrf(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void verrf(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
}

int sk_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int sk_errf_code(int code, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}
