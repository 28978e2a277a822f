/* dburl — parse db.url, see include/dburl.h.
 *
 * Accepted:  mariadb://user@host[:port]/dbname
 *            mariadb://user@[ipv6]:port/dbname
 *            mariadb://user@localhost/dbname?socket=/abs/path.sock
 * ("mysql://" is a synonym).  A password in the URL is refused: it would
 * end up in `ps`, unit files and logs; db.password_file exists for it.
 *
 * No error message quotes any part of the URL: a mistyped URL may well
 * carry a password in a place we do not expect it. */
#include "dburl.h"

#include "buf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DBURL_USER_MAX 80   /* MariaDB user names: up to 80 characters */
#define DBURL_DBNAME_MAX 64 /* MariaDB identifiers: up to 64 characters */
#define DBURL_HOST_MAX 255
#define DBURL_SOCKET_MAX 107 /* sizeof(sun_path) - 1 */

#define fail sk_errf /* format the one-line error, return -EINVAL */

/* Percent-decode s[0..len) into a new string.  NULL with *bad set on a
 * malformed escape or an encoded NUL / control character; NULL with *bad
 * clear on ENOMEM. */
static char *pct_decode(const char *s, size_t len, bool *bad)
{
    *bad = false;
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '%') {
            if (len - i < 3) { /* fewer than two characters follow */
                free(out);
                *bad = true;
                return NULL;
            }
            int h = sk_hex_digit(s[i + 1]), l = sk_hex_digit(s[i + 2]);
            if (h < 0 || l < 0) {
                free(out);
                *bad = true;
                return NULL;
            }
            ch = (unsigned char)(h * 16 + l);
            i += 2;
        }
        if (ch < 0x20 || ch == 0x7f) {
            free(out);
            *bad = true;
            return NULL;
        }
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return out;
}

void sk_dburl_free(struct sk_dburl *u)
{
    if (!u)
        return;
    free(u->user);
    free(u->host);
    free(u->socket);
    free(u->dbname);
    *u = (struct sk_dburl){0};
}

static bool valid_hostname(const char *s, size_t len)
{
    if (len == 0 || len > DBURL_HOST_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && ch != '.' && ch != '-' && ch != '_')
            return false;
    }
    return true;
}

static bool valid_v6(const char *s, size_t len)
{
    if (len < 2 || len > 64)
        return false;
    size_t colons = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == ':')
            colons++;
        else if (!isxdigit(ch) && ch != '.')
            return false;
    }
    return colons >= 2;
}

static bool valid_dbname(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > DBURL_DBNAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && ch != '_' && ch != '$')
            return false;
    }
    return true;
}

#define FORMS "expected mariadb://user@host[:port]/dbname or mariadb://user@localhost/dbname?socket=/path"

int sk_dburl_parse(const char *url, struct sk_dburl *u, char *err, size_t errlen)
{
    struct sk_dburl r = {0};
    bool bad = false;
    r.port = 3306;
    if (u)
        *u = (struct sk_dburl){0};
    if (!url || !u)
        return fail(err, errlen, "no URL given");
    if (!*url)
        return fail(err, errlen, "empty URL; " FORMS);

    const char *p;
    if (strncasecmp(url, "mariadb://", 10) == 0)
        p = url + 10;
    else if (strncasecmp(url, "mysql://", 8) == 0)
        p = url + 8;
    else if (strstr(url, "://"))
        return fail(err, errlen, "unsupported scheme (only mariadb:// and mysql://)");
    else
        return fail(err, errlen, "missing scheme; " FORMS);

    for (const char *q = p; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f || *q == ' ')
            return fail(err, errlen, "the URL contains blanks or control characters");

    /* Everything up to the query string. */
    const char *query = strchr(p, '?');
    const char *end = query ? query : p + strlen(p);

    /* The user part ends at the last '@' before the query, so that a
     * password containing '@' or '/' is still recognised as one. */
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (!at)
        return fail(err, errlen, "missing user name (user@ before the host); " FORMS);
    if (memchr(p, ':', (size_t)(at - p)))
        return fail(err, errlen,
                    "the URL contains a password; remove it and put the password into the file "
                    "named by db.password_file (or a systemd credential \"db.password\")");
    if (at == p)
        return fail(err, errlen, "empty user name; " FORMS);

    r.user = pct_decode(p, (size_t)(at - p), &bad);
    if (!r.user)
        goto decode_failed;
    if (strlen(r.user) > DBURL_USER_MAX) {
        sk_dburl_free(&r);
        return fail(err, errlen, "user name longer than %d characters", DBURL_USER_MAX);
    }

    /* host[:port] up to '/' */
    const char *h = at + 1;
    const char *slash = memchr(h, '/', (size_t)(end - h));
    if (!slash) {
        sk_dburl_free(&r);
        return fail(err, errlen, "missing /dbname after the host; " FORMS);
    }
    const char *hend, *portstr = NULL;
    size_t hlen;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(slash - h));
        if (!rb) {
            sk_dburl_free(&r);
            return fail(err, errlen, "unterminated [ in the IPv6 host address");
        }
        if (!valid_v6(h + 1, (size_t)(rb - h - 1))) {
            sk_dburl_free(&r);
            return fail(err, errlen, "invalid IPv6 host address");
        }
        h++;
        hlen = (size_t)(rb - h);
        hend = rb + 1;
        if (hend < slash) {
            if (*hend != ':') {
                sk_dburl_free(&r);
                return fail(err, errlen, "unexpected characters after the IPv6 host address");
            }
            portstr = hend + 1;
        }
    } else {
        const char *colon = memchr(h, ':', (size_t)(slash - h));
        hend = colon ? colon : slash;
        hlen = (size_t)(hend - h);
        if (colon)
            portstr = colon + 1;
        if (hlen && !valid_hostname(h, hlen)) {
            sk_dburl_free(&r);
            return fail(err, errlen, "invalid host name (letters, digits, '.', '-', '_')");
        }
    }
    if (portstr) {
        unsigned long port = 0;
        size_t n = (size_t)(slash - portstr);
        if (n == 0 || n > 5) {
            sk_dburl_free(&r);
            return fail(err, errlen, "invalid port (expected 1..65535)");
        }
        for (size_t i = 0; i < n; i++) {
            if (!isdigit((unsigned char)portstr[i])) {
                sk_dburl_free(&r);
                return fail(err, errlen, "invalid port (expected 1..65535)");
            }
            port = port * 10 + (unsigned long)(portstr[i] - '0');
        }
        if (port < 1 || port > 65535) {
            sk_dburl_free(&r);
            return fail(err, errlen, "invalid port (expected 1..65535)");
        }
        r.port = (unsigned)port;
    }

    r.dbname = pct_decode(slash + 1, (size_t)(end - slash - 1), &bad);
    if (!r.dbname)
        goto decode_failed;
    if (!*r.dbname) {
        sk_dburl_free(&r);
        return fail(err, errlen, "missing database name after the host; " FORMS);
    }
    if (!valid_dbname(r.dbname)) {
        sk_dburl_free(&r);
        return fail(err, errlen,
                    "invalid database name (1..%d characters of A-Z a-z 0-9 _ $)", DBURL_DBNAME_MAX);
    }

    if (query) {
        const char *qs = query + 1;
        if (strncmp(qs, "socket=", 7) != 0 || strchr(qs, '&')) {
            sk_dburl_free(&r);
            return fail(err, errlen, "unsupported URL parameter (only ?socket=/path is known)");
        }
        r.socket = pct_decode(qs + 7, strlen(qs + 7), &bad);
        if (!r.socket)
            goto decode_failed;
        if (r.socket[0] != '/') {
            sk_dburl_free(&r);
            return fail(err, errlen, "socket= needs an absolute path");
        }
        if (strlen(r.socket) > DBURL_SOCKET_MAX) {
            sk_dburl_free(&r);
            return fail(err, errlen, "socket path longer than %d bytes", DBURL_SOCKET_MAX);
        }
        if (portstr) {
            sk_dburl_free(&r);
            return fail(err, errlen, "a port cannot be combined with socket=");
        }
        if (hlen && !(hlen == 9 && strncasecmp(h, "localhost", 9) == 0)) {
            sk_dburl_free(&r);
            return fail(err, errlen, "socket= requires the host \"localhost\"");
        }
    } else {
        if (hlen == 0) {
            sk_dburl_free(&r);
            return fail(err, errlen, "missing host; " FORMS);
        }
        r.host = strndup(h, hlen);
        if (!r.host) {
            sk_dburl_free(&r);
            return sk_errf_code(-ENOMEM, err, errlen, "out of memory");
        }
    }
    *u = r;
    return 0;

decode_failed:
    sk_dburl_free(&r);
    if (bad)
        return fail(err, errlen, "invalid percent-encoding or control character in the URL");
    return sk_errf_code(-ENOMEM, err, errlen, "out of memory");
}
