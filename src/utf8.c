/* utf8 — strict UTF-8 validation and helpers, see include/utf8.h. */
#include "utf8.h"

#include <limits.h>
#include <string.h>

size_t sk_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    if (len == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the 2nd byte */
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        v = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        v = c & 0x0fu;
        if (c == 0xe0)
            lo = 0xa0; /* no overlongs */
        else if (c == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        v = c & 0x07u;
        if (c == 0xf0)
            lo = 0x90; /* no overlongs */
        else if (c == 0xf4)
            hi = 0x8f; /* nothing above U+10FFFF */
    } else {
        return 0; /* continuation byte, C0/C1 (overlong) or F5..FF */
    }
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    v = (v << 6) | (s[1] & 0x3fu);
    for (size_t i = 2; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3fu);
    }
    *cp = v;
    return n;
}

size_t sk_utf8_check(const char *s, size_t len, size_t *chars)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, count = 0;
    while (i < len) {
        if (u[i] < 0x80) { /* ASCII fast path */
            i++;
            count++;
            continue;
        }
        uint32_t cp;
        size_t n = sk_utf8_decode(u + i, len - i, &cp);
        if (n == 0)
            break;
        i += n;
        count++;
    }
    if (chars)
        *chars = count;
    return i;
}

long sk_utf8_count(const char *s, size_t len)
{
    size_t chars;
    if (sk_utf8_check(s, len, &chars) != len || chars > LONG_MAX)
        return -1;
    return (long)chars;
}

size_t sk_utf8_len(uint32_t cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

size_t sk_utf8_put(char *out, uint32_t cp)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

size_t sk_utf8_sanitize(char *out, size_t cap, const char *s, size_t len, size_t max_in)
{
    static const char more[] = "...";
    if (cap < sizeof more) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0, i = 0;
    bool cut = false;
    while (i < len) {
        uint32_t cp = 0;
        size_t n = sk_utf8_decode(u + i, len - i, &cp);
        /* cp is only meaningful when n > 0 (it used to be read
         * uninitialized for invalid bytes; MemorySanitizer found it). */
        bool keep = n > 0 && !sk_utf8_is_control(cp);
        if (n == 0)
            n = 1; /* an invalid byte becomes one '?' */
        size_t w = keep ? n : 1;
        /* keep room for "..." and the NUL */
        if (i + n > max_in || o + w + sizeof more > cap) {
            cut = true;
            break;
        }
        if (keep)
            memcpy(out + o, s + i, w);
        else
            out[o] = '?';
        o += w;
        i += n;
    }
    if (cut) {
        memcpy(out + o, more, sizeof more - 1);
        o += sizeof more - 1;
    }
    out[o] = '\0';
    return o;
}
