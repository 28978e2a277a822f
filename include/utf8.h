/* utf8 — strict UTF-8 (RFC 3629): no overlong forms, no surrogates
 * (U+D800..U+DFFF, also when encoded as ED A0..BF xx), nothing above
 * U+10FFFF. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decode the sequence at s[0..len).  Returns its length (1..4) and stores
 * the code point in *cp, or 0 when the bytes there are not strict UTF-8
 * (including a sequence truncated by len). */
size_t sk_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* Validate s[0..len).  Returns the offset of the first byte that does not
 * start a valid sequence, or len when all is valid; *chars (may be NULL)
 * receives the number of code points in the valid prefix. */
size_t sk_utf8_check(const char *s, size_t len, size_t *chars);

/* The number of code points of s[0..len), or -1 when it is not strict
 * UTF-8. */
long sk_utf8_count(const char *s, size_t len);

/* Number of bytes the UTF-8 encoding of cp takes (1..4). */
size_t sk_utf8_len(uint32_t cp);
/* Write the UTF-8 encoding of cp (<= U+10FFFF, not a surrogate) to out
 * (room for 4 bytes); returns the number of bytes written. */
size_t sk_utf8_put(char *out, uint32_t cp);

/* C0 controls, DEL and C1 controls (U+0080..U+009F). */
static inline bool sk_utf8_is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* Copy at most max_in bytes of untrusted s[0..len) into out (cap bytes,
 * always NUL-terminated when cap > 0) as text fit for a log line or an
 * error message: invalid sequences and control characters become '?',
 * copying stops at a character boundary, and "..." is appended when the
 * input was cut.  Returns the number of bytes written (without the NUL). */
size_t sk_utf8_sanitize(char *out, size_t cap, const char *s, size_t len, size_t max_in);
