/* dbtls — TLS to MariaDB, see include/dbtls.h.
 *
 * Connector/C does the handshake and checks the chain (SSL_VERIFY_PEER
 * with the CA) and, for verify-full, the name (mysql->host, see the
 * header), both before it sends any credential.  This file sets that up,
 * and once a connection is made checks with OpenSSL what it got: TLS on,
 * the verify result, the name on the peer certificate.  The SSL object is
 * reached through Connector/C's plugin headers (net.pvio->ctls->ssl);
 * sk_dbtls_check() makes sure at start that Connector/C runs on the same
 * OpenSSL, so that object is one this program may use. */
/* OpenSSL's headers first: Connector/C's mysql.h leaves the feature
 * macros so that pthread.h, included again by OpenSSL, lacks cpu_set_t. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dbtls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"

/* ma_tls.h, which ma_pvio.h includes when HAVE_TLS is set, uses uchar
 * before ma_pvio.h defines it. */
#define HAVE_TLS 1
typedef unsigned char uchar;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes" /* ma_tls.h: ma_pvio_tls_end() */
#include <ma_pvio.h>
#pragma GCC diagnostic pop

#define fail sk_errf /* format the one-line error, return -EINVAL */

static SSL *conn_ssl(const MYSQL *m)
{
    const MARIADB_PVIO *p = m->net.pvio;
    return p && p->ctls ? p->ctls->ssl : NULL;
}

static bool is_address(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static const char *mode_name(unsigned mode)
{
    switch (mode) {
    case SK_DB_TLS_REQUIRED: return "required";
    case SK_DB_TLS_VERIFY_CA: return "verify-ca";
    case SK_DB_TLS_VERIFY_FULL: return "verify-full";
    default: return "off";
    }
}

/* The CA the certificate must chain to: db.tls_ca, else the directory of
 * the system's store OpenSSL uses by default (/usr/lib/ssl/certs, which
 * is /etc/ssl/certs on Debian). */
static const char *ca_dir(const struct sk_config *cfg)
{
    return cfg->db_tls_ca ? NULL : X509_get_default_cert_dir();
}

static void ca_text(const struct sk_config *cfg, char *out, size_t n)
{
    if (cfg->db_tls_ca)
        snprintf(out, n, "CA %s", cfg->db_tls_ca);
    else
        snprintf(out, n, "the system's CA store %s", ca_dir(cfg));
}

/* ---- at start ---------------------------------------------------------- */

/* The version of an OpenSSL as Connector/C reports it: without the date
 * (two blanks start it). */
static bool same_openssl(const char *theirs)
{
    const char *ours = OpenSSL_version(OPENSSL_VERSION);
    const char *cut = strstr(ours, "  ");
    size_t n = cut ? (size_t)(cut - ours) : strlen(ours);
    return strncmp(theirs, ours, n) == 0 && (theirs[n] == '\0' || theirs[n] == ' ');
}

static void openssl_reason(char *out, size_t n)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(out, n, "%s", r ? r : "not a PEM file of that kind");
    ERR_clear_error();
}

/* Opened as the connect will open it: a clear errno message now rather
 * than a failed handshake at every retry. */
static int readable(const char *key, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return fail(err, errlen, "\"%s\": cannot open %s: %s", key, path, strerror(errno));
    struct stat st;
    bool reg = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    close(fd);
    if (!reg)
        return fail(err, errlen, "\"%s\": %s is not a regular file", key, path);
    return 0;
}

/* No passphrase from a terminal, ever: the one given, or none. */
static int passphrase(char *buf, int size, int rwflag, void *ud)
{
    (void)rwflag;
    const char *pw = ud;
    size_t n = pw ? strlen(pw) : 0;
    if (!pw || n >= (size_t)size)
        return -1;
    memcpy(buf, pw, n);
    return (int)n;
}

static int check_files(const struct sk_config *cfg, SSL_CTX *ctx, char *err, size_t errlen)
{
    char why[160];
    if (cfg->db_tls_ca) {
        if (readable("db.tls_ca", cfg->db_tls_ca, err, errlen) < 0)
            return -EINVAL;
        if (SSL_CTX_load_verify_locations(ctx, cfg->db_tls_ca, NULL) != 1) {
            openssl_reason(why, sizeof why);
            return fail(err, errlen, "\"db.tls_ca\": no CA certificate could be read from %s: %s",
                        cfg->db_tls_ca, why);
        }
    }
    if (!cfg->tls_cert_path)
        return 0;
    if (readable("db.tls_cert", cfg->tls_cert_path, err, errlen) < 0 ||
        readable("db.tls_key", cfg->tls_key_path, err, errlen) < 0)
        return -EINVAL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_path) != 1) {
        openssl_reason(why, sizeof why);
        return fail(err, errlen, "\"db.tls_cert\": no certificate could be read from %s: %s",
                    cfg->tls_cert_path, why);
    }
    SSL_CTX_set_default_passwd_cb(ctx, passphrase);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, cfg->db_tls_key_password);
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_path, SSL_FILETYPE_PEM) != 1) {
        openssl_reason(why, sizeof why);
        return fail(err, errlen, "\"db.tls_key\": no private key could be read from %s: %s (an "
                    "encrypted key needs its passphrase in db.tls_key_password_file or the "
                    "credential db.tls_key_password)", cfg->tls_key_path, why);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        return fail(err, errlen, "\"db.tls_key\": the key in %s does not belong to the "
                    "certificate in %s (db.tls_cert)", cfg->tls_key_path, cfg->tls_cert_path);
    }
    return 0;
}

int sk_dbtls_check(const struct sk_config *cfg, char *err, size_t errlen)
{
    if (cfg->db_tls == SK_DB_TLS_OFF)
        return 0;
    /* Fills in the TLS library's name (start-up, before any connection). */
    if (mysql_library_init(0, NULL, NULL)) /* no I/O */
        return fail(err, errlen, "\"db.tls\": the MariaDB client library cannot start");
    const char *lib = NULL;
    if (mariadb_get_infov(NULL, MARIADB_TLS_LIBRARY, &lib) || !lib || !same_openssl(lib))
        return fail(err, errlen, "\"db.tls\" needs a MariaDB Connector/C built with %s, which "
                    "scorekeeper checks the server's certificate with; this one uses %s",
                    OpenSSL_version(OPENSSL_VERSION), lib ? lib : "no TLS library");
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return sk_errf_code(-ENOMEM, err, errlen, "out of memory");
    int r = check_files(cfg, ctx, err, errlen);
    SSL_CTX_free(ctx);
    return r;
}

/* ---- each connect ------------------------------------------------------ */

int sk_dbtls_options(MYSQL *m, const struct sk_config *cfg)
{
    if (cfg->db_tls == SK_DB_TLS_OFF)
        return 0;
    my_bool on = 1;
    int bad = mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &on);
    if (cfg->db_tls >= SK_DB_TLS_VERIFY_CA)
        bad |= cfg->db_tls_ca ? mysql_options(m, MYSQL_OPT_SSL_CA, cfg->db_tls_ca)
                              : mysql_options(m, MYSQL_OPT_SSL_CAPATH, ca_dir(cfg));
    /* The name check, done by Connector/C before it logs in; it also
     * refuses a server that offers no TLS before the login. */
    if (cfg->db_tls == SK_DB_TLS_VERIFY_FULL)
        bad |= mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
    if (cfg->tls_cert_path)
        bad |= mysql_options(m, MYSQL_OPT_SSL_CERT, cfg->tls_cert_path) |
               mysql_options(m, MYSQL_OPT_SSL_KEY, cfg->tls_key_path);
    if (cfg->db_tls_key_password)
        bad |= mysql_options(m, MARIADB_OPT_TLS_PASSPHRASE, cfg->db_tls_key_password);
    return bad ? -EINVAL : 0;
}

bool sk_dbtls_connect_paused(const struct sk_config *cfg, char *host, size_t hostlen)
{
    if (cfg->db_tls != SK_DB_TLS_VERIFY_FULL || !cfg->db.host ||
        strlen(cfg->db.host) >= hostlen)
        return false;
    memcpy(host, cfg->db.host, strlen(cfg->db.host) + 1);
    return true;
}

int sk_dbtls_connected(MYSQL *m, const struct sk_config *cfg, bool named, char *desc,
                       size_t desclen, char *why, size_t whylen)
{
    if (cfg->db_tls == SK_DB_TLS_OFF) {
        snprintf(desc, desclen, "not encrypted (db.tls = off)");
        return 0;
    }
    SSL *ssl = conn_ssl(m);
    if (!ssl || !SSL_is_init_finished(ssl)) {
        snprintf(why, whylen, "the server did not start TLS, and db.tls = %s refuses an "
                 "unencrypted session", mode_name(cfg->db_tls));
        return -EPROTO;
    }
    /* Connector/C left the socket blocking: SSL_read would wait inside
     * every _start call.  Non-blocking, it reports WANT_READ and the call
     * pauses for the loop (its own helper keeps its idea of the mode). */
    MARIADB_PVIO *pvio = m->net.pvio;
    my_bool was;
    if (!pvio->methods || !pvio->methods->blocking || pvio->methods->blocking(pvio, 0, &was)) {
        snprintf(why, whylen, "cannot make the TLS connection's socket non-blocking");
        return -EPROTO;
    }
    char ca[300];
    ca_text(cfg, ca, sizeof ca);
    const char *proto = SSL_get_version(ssl), *cipher = SSL_get_cipher_name(ssl);
    if (cfg->db_tls == SK_DB_TLS_REQUIRED) {
        snprintf(desc, desclen, "%s %s, the server's certificate not checked (db.tls = required)",
                 proto, cipher);
        return 0;
    }
    long vr = SSL_get_verify_result(ssl);
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (vr != X509_V_OK || !peer) {
        snprintf(why, whylen, "the server's certificate is not verified against %s: %s", ca,
                 peer ? X509_verify_cert_error_string(vr) : "the server sent none");
        return -EPROTO;
    }
    if (cfg->db_tls == SK_DB_TLS_VERIFY_CA) {
        snprintf(desc, desclen, "%s %s, certificate verified (%s), its host name not checked "
                 "(db.tls = verify-ca)", proto, cipher, ca);
        return 0;
    }
    const char *name = cfg->db.host;
    if (!named) {
        /* Connector/C compared the certificate with the address. */
        snprintf(why, whylen, "the server's certificate was checked against the address, not "
                 "the host name %s (the connect did not pause before the server's greeting)",
                 name);
        return -EPROTO;
    }
    int ok = is_address(name) ? X509_check_ip_asc(peer, name, 0)
                              : X509_check_host(peer, name, strlen(name),
                                                X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL);
    if (ok != 1) {
        snprintf(why, whylen, "the server's certificate is not valid for the host name %s of "
                 "db.url", name);
        return -EPROTO;
    }
    snprintf(desc, desclen, "%s %s, certificate verified for %s (%s)", proto, cipher, name, ca);
    return 0;
}

void sk_dbtls_failure(MYSQL *m, const struct sk_config *cfg, bool named, char *why,
                      size_t whylen)
{
    const char *msg = mysql_error(m);
    unsigned code = mysql_errno(m);
    char ca[300];
    ca_text(cfg, ca, sizeof ca);
    if (cfg->db_tls == SK_DB_TLS_OFF && code == 1045) /* ER_ACCESS_DENIED_ERROR */
        snprintf(why, whylen, "%s (a server with require_secure_transport=ON answers a login "
                 "without TLS this way too: see db.tls)", msg);
    else if (code != 2026 || cfg->db_tls == SK_DB_TLS_OFF) /* CR_SSL_CONNECTION_ERROR */
        snprintf(why, whylen, "%s", msg);
    else if (strstr(msg, "Validation of SSL server certificate failed"))
        snprintf(why, whylen, "%s: the server's certificate is not valid for the %s %s "
                 "(db.tls = verify-full)", msg, named ? "host name" : "address",
                 named ? cfg->db.host : "connected to");
    else if (strstr(msg, "does not support"))
        snprintf(why, whylen, "%s: the server offers no TLS (db.tls = %s)", msg,
                 mode_name(cfg->db_tls));
    else if (cfg->db_tls >= SK_DB_TLS_VERIFY_CA)
        snprintf(why, whylen, "%s (the TLS handshake, with the server's certificate checked "
                 "against %s)", msg, ca);
    else
        snprintf(why, whylen, "%s (the TLS handshake)", msg);
}
