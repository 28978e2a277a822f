/* config_check — the second pass over the settings: the checks between
 * keys and the secrets' files (sk_config_finish), and what a reload may
 * change (sk_config_reload_diff, sk_config_apply_reload); also the parse
 * of metrics.listen; see include/config.h. */
#include "config_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbtls.h"

#define MAX_PASSWORD_FILE 4096 /* bytes */

static char *xstrdup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* ---- finish ------------------------------------------------------------- */

/* Read a password file.  missing_ok: a file that does not exist yields
 * *out = NULL.  Messages name the file, never its contents. */
static int read_password(const char *path, bool missing_ok, char **out, char *err, size_t errlen)
{
    *out = NULL;
    /* O_NONBLOCK: a FIFO put there by mistake must not hang the start. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT && missing_ok)
            return 0;
        return sk_errf_code(-e, err, errlen, "cannot open password file %s: %s", path,
                            strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return sk_errf_code(-e, err, errlen, "cannot stat password file %s: %s", path,
                            strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, errlen, "password file %s is not a regular file", path);
    }
    char buf[MAX_PASSWORD_FILE + 2];
    size_t len = 0;
    int rc = 0;
    while (len < MAX_PASSWORD_FILE + 1) { /* one byte more to see a too large file */
        ssize_t n = read(fd, buf + len, MAX_PASSWORD_FILE + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            rc = sk_errf_code(-e, err, errlen, "cannot read password file %s: %s", path,
                              strerror(e));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > MAX_PASSWORD_FILE) {
        rc = fail(err, errlen, "password file %s is larger than %d bytes", path,
                  MAX_PASSWORD_FILE);
        goto out;
    }
    if (len && buf[len - 1] == '\n') {
        len--;
        if (len && buf[len - 1] == '\r')
            len--;
    }
    if (len == 0) {
        rc = fail(err, errlen, "password file %s is empty", path);
        goto out;
    }
    if (memchr(buf, '\0', len) || memchr(buf, '\n', len)) {
        rc = fail(err, errlen, "password file %s holds more than one line or a NUL byte", path);
        goto out;
    }
    buf[len] = '\0';
    *out = strdup(buf);
    if (!*out)
        rc = sk_errf_code(-ENOMEM, err, errlen, "out of memory");
out:
    explicit_bzero(buf, sizeof buf);
    close(fd);
    return rc;
}

/* The systemd credential name (e.g. "db.password") read when present:
 * *out NULL without $CREDENTIALS_DIRECTORY or without that file.  *path
 * (freed by the caller) is where it was read. */
static int read_credential(const char *name, char **out, char **path, char *err, size_t errlen)
{
    *out = *path = NULL;
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir)
        return 0;
    *path = malloc(strlen(dir) + strlen(name) + 2);
    if (!*path)
        return sk_errf_code(-ENOMEM, err, errlen, "out of memory");
    sprintf(*path, "%s/%s", dir, name);
    return read_password(*path, true, out, err, errlen);
}

static int load_password(struct sk_config *c, char *err, size_t errlen)
{
    if (c->db_password_file)
        return read_password(c->db_password_file, false, &c->db_password, err, errlen);
    char *path;
    int rc = read_credential("db.password", &c->db_password, &path, err, errlen);
    free(path);
    return rc;
}

/* A TLS file: the setting, else the systemd credential of the same name
 * when it exists (LoadCredential=db.tls_key:/etc/... gives a DynamicUser=
 * service a key only it can read).  *path NULL when neither. */
static int tls_file(const char *setting, const char *cred, char **path, char *err, size_t errlen)
{
    *path = NULL;
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    char *p = NULL;
    if (setting) {
        p = strdup(setting);
    } else if (dir && *dir) {
        if (asprintf(&p, "%s/%s", dir, cred) < 0)
            p = NULL;
        else if (access(p, F_OK) != 0) {
            free(p);
            return 0;
        }
    } else {
        return 0;
    }
    if (!p)
        return sk_errf_code(-ENOMEM, err, errlen, "out of memory");
    *path = p;
    return 0;
}

/* The TLS settings against each other and db.url, the client certificate
 * and key in use, the key's passphrase, then the files themselves.  A TLS
 * file set while TLS is off is refused: the operator meant TLS, and a
 * connection that silently is not encrypted is what must never happen. */
static int load_tls(struct sk_config *c, char *err, size_t errlen)
{
    free(c->tls_cert_path);
    free(c->tls_key_path);
    c->tls_cert_path = c->tls_key_path = NULL;
    config_wipe_free(c->db_tls_key_password);
    c->db_tls_key_password = NULL;
    if (c->db_tls == SK_DB_TLS_OFF) {
        const char *set = c->db_tls_ca     ? "db.tls_ca"
                          : c->db_tls_cert ? "db.tls_cert"
                          : c->db_tls_key  ? "db.tls_key"
                          : c->db_tls_key_password_file ? "db.tls_key_password_file"
                                                        : NULL;
        if (set)
            return fail(err, errlen, "\"%s\" is set but \"db.tls\" is off: the connection would "
                        "not be encrypted; set db.tls = verify-full (or remove %s)", set, set);
        return 0;
    }
    if (c->db.socket)
        return fail(err, errlen, "\"db.tls\" needs a host in \"db.url\": a unix socket "
                                 "(?socket=) is local and carries no TLS");
    if (c->db_tls == SK_DB_TLS_REQUIRED && c->db_tls_ca)
        return fail(err, errlen, "\"db.tls_ca\" is set but \"db.tls = required\" checks no "
                                 "certificate; use db.tls = verify-full (or verify-ca)");
    int r = tls_file(c->db_tls_cert, "db.tls_cert", &c->tls_cert_path, err, errlen);
    if (r >= 0)
        r = tls_file(c->db_tls_key, "db.tls_key", &c->tls_key_path, err, errlen);
    if (r < 0)
        return r;
    if (!c->tls_cert_path != !c->tls_key_path)
        return fail(err, errlen, "a client certificate goes with its key: %s is set but %s is "
                    "not (settings db.tls_cert and db.tls_key, or the credentials of the same "
                    "names)", c->tls_cert_path ? "db.tls_cert" : "db.tls_key",
                    c->tls_cert_path ? "db.tls_key" : "db.tls_cert");
    if (c->db_tls_key_password_file) {
        r = read_password(c->db_tls_key_password_file, false, &c->db_tls_key_password, err,
                          errlen);
    } else {
        char *path;
        r = read_credential("db.tls_key_password", &c->db_tls_key_password, &path, err, errlen);
        free(path);
    }
    if (r < 0)
        return r;
    if (c->db_tls_key_password && !c->tls_key_path)
        return fail(err, errlen, "a passphrase for the TLS key is given (db.tls_key_password) "
                                 "but no key (db.tls_key)");
    return sk_dbtls_check(c, err, errlen);
}

/* Store a secret read from path as the passthrough setting key; wipes it. */
static int put_secret(struct sk_config *c, const char *key, char *secret, const char *path,
                      char *err, size_t errlen)
{
    int r = config_kafka_put(c, key, secret, path);
    config_wipe_free(secret);
    return r < 0 ? sk_errf_code(r, err, errlen, "out of memory") : 0;
}

/* kafka.<key>_file settings, then the credentials of the secrets not set
 * by one.  What an earlier call read is dropped first (a secret is never
 * set otherwise: config_set_kafka refuses it). */
static int load_kafka_secrets(struct sk_config *c, char *err, size_t errlen)
{
    static const char *const creds[] = {"sasl.password", "ssl.key.password",
                                        "ssl.keystore.password", "sasl.oauthbearer.client.secret"};
    const size_t sn = strlen("_file");
    for (size_t i = c->n_kafka; i-- > 0;) {
        const char *prop;
        if (sk_config_kafka_client(c->kafka[i].key, &prop) != SK_KAFKA_NONE &&
            config_kafka_secret_prop(prop))
            config_kafka_drop(c, i);
    }
    for (size_t i = 0, n = c->n_kafka; i < n; i++) {
        const char *prop;
        if (sk_config_kafka_client(c->kafka[i].key, &prop) != SK_KAFKA_NONE ||
            !*c->kafka[i].value) /* "" leaves it unset */
            continue;
        char *key = strndup(c->kafka[i].key, strlen(c->kafka[i].key) - sn), *path = NULL;
        char *secret = NULL;
        int r = key ? 0 : sk_errf_code(-ENOMEM, err, errlen, "out of memory");
        if (r == 0 && (path = strdup(c->kafka[i].value)) == NULL)
            r = sk_errf_code(-ENOMEM, err, errlen, "out of memory");
        if (r == 0)
            r = read_password(path, false, &secret, err, errlen);
        if (r == 0)
            r = put_secret(c, key, secret, path, err, errlen);
        free(key);
        free(path);
        if (r < 0)
            return r;
    }
    for (size_t i = 0; i < sizeof creds / sizeof creds[0]; i++) {
        char name[64], *secret, *path;
        if (config_find_kv(c, creds[i]))
            continue;
        snprintf(name, sizeof name, "kafka.%s", creds[i]);
        int r = read_credential(name, &secret, &path, err, errlen);
        if (r == 0 && secret)
            r = put_secret(c, creds[i], secret, path, err, errlen);
        free(path);
        if (r < 0)
            return r;
    }
    return 0;
}

int sk_config_parse_listen(const char *listen, struct sockaddr_in *sa, char *why, size_t n)
{
    if (strcmp(listen, "off") == 0)
        return 0;
    char host[64];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host) {
        snprintf(why, n, "expected HOST:PORT (numeric IPv4) or \"off\"");
        return -EINVAL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    unsigned long port = 0;
    const char *p = colon + 1;
    for (; *p >= '0' && *p <= '9' && port <= 65535; p++)
        port = port * 10 + (unsigned long)(*p - '0');
    if (p == colon + 1 || *p || port > 65535) {
        snprintf(why, n, "bad port: expected 0..65535");
        return -EINVAL;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        snprintf(why, n, "host must be a numeric IPv4 address");
        return -EINVAL;
    }
    *sa = a;
    return 1;
}

int sk_config_finish(struct sk_config *c, char *err, size_t errlen)
{
    char why[256];
    sk_dburl_free(&c->db);
    config_wipe_free(c->db_password);
    c->db_password = NULL;

    if (!c->db_url)
        return fail(err, errlen, "missing required setting \"db.url\" "
                                 "(e.g. db.url = mariadb://scorekeeper@localhost/scorekeeper)");
    if (c->db_retry_min_ms > c->db_retry_max_ms)
        return fail(err, errlen, "\"db.retry_min_ms\" (%u) exceeds \"db.retry_max_ms\" (%u)",
                    c->db_retry_min_ms, c->db_retry_max_ms);
    static const char *const topic_keys[] = {"topic.users", "topic.scores", "topic.results",
                                             "topic.dead_letter"};
    const char *topics[] = {c->topic_users, c->topic_scores, c->topic_results,
                            c->topic_dead_letter};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = i + 1; j < 4; j++)
            if (topics[i] && topics[j] && strcmp(topics[i], topics[j]) == 0)
                return fail(err, errlen, "\"%s\" and \"%s\" name the same topic \"%s\"; "
                            "each topic must be different", topic_keys[i], topic_keys[j],
                            topics[i]);
    int r = sk_dburl_parse(c->db_url, &c->db, why, sizeof why);
    if (r < 0)
        return sk_errf_code(r, err, errlen, "invalid value for \"db.url\": %s", why);
    r = load_password(c, err, errlen);
    if (r >= 0)
        r = load_tls(c, err, errlen);
    if (r >= 0)
        r = load_kafka_secrets(c, err, errlen);
    if (r < 0) {
        sk_dburl_free(&c->db);
        return r;
    }
    return 0;
}

int sk_config_require_kafka(const struct sk_config *c, char *err, size_t errlen)
{
    if (!c->kafka_brokers)
        return fail(err, errlen, "missing required setting \"kafka.bootstrap.servers\" "
                                 "(e.g. kafka.bootstrap.servers = localhost:9092)");
    return 0;
}

/* ---- reload ------------------------------------------------------------- */

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool opt_equal(const struct sk_config *a, const struct sk_config *b, const struct opt *o)
{
    if (o->type == OT_STR)
        return str_eq(config_get_str(a, o), config_get_str(b, o));
    return config_get_num(a, o) == config_get_num(b, o);
}

static const char *quoted_or_unset(const char *v, bool secret, char *out, size_t n)
{
    char sh[SHOWN_MAX + 4];
    if (!v)
        snprintf(out, n, "unset");
    else
        snprintf(out, n, "\"%s\"", config_shown(v, secret, sh));
    return out;
}

int sk_config_reload_diff(const struct sk_config *old, const struct sk_config *next, char *err,
                          size_t errlen)
{
    int changed = 0;
    char t1[32], t2[32], a[SHOWN_MAX + 8], b[SHOWN_MAX + 8];
    for (size_t i = 0; i < config_nopts; i++) {
        const struct opt *o = &config_opts[i];
        if (opt_equal(old, next, o))
            continue;
        if (o->flags & OF_RELOAD) {
            changed++;
            continue;
        }
        bool secret = config_opt_secret(o);
        return fail(err, errlen, "\"%s\" cannot be changed by a reload (%s -> %s); restart "
                    "scorekeeper to apply it", o->key,
                    quoted_or_unset(config_value_text(old, o, t1, sizeof t1), secret, a, sizeof a),
                    quoted_or_unset(config_value_text(next, o, t2, sizeof t2), secret, b, sizeof b));
    }
    if (!str_eq(old->db_password, next->db_password))
        return fail(err, errlen, "the database password (db.password_file) cannot be changed by "
                                 "a reload; restart scorekeeper to apply it");
    if (!str_eq(old->db_tls_key_password, next->db_tls_key_password))
        return fail(err, errlen, "the passphrase of the TLS key (db.tls_key_password_file) "
                                 "cannot be changed by a reload; restart scorekeeper to apply it");
    /* kafka.* passthrough: the client is built once. */
    for (int pass = 0; pass < 2; pass++) {
        const struct sk_config *x = pass ? next : old, *y = pass ? old : next;
        for (size_t i = 0; i < x->n_kafka; i++) {
            const struct sk_kv *kv = &x->kafka[i];
            const struct sk_kv *other = config_find_kv(y, kv->key);
            if (other && strcmp(other->value, kv->value) == 0)
                continue;
            char key[300];
            snprintf(key, sizeof key, "kafka.%s", kv->key);
            bool secret = sk_config_key_is_secret(key);
            const char *ov = pass ? (other ? other->value : NULL) : kv->value;
            const char *nv = pass ? kv->value : (other ? other->value : NULL);
            return fail(err, errlen, "\"%s\" cannot be changed by a reload (%s -> %s); restart "
                        "scorekeeper to apply it", key,
                        quoted_or_unset(ov, secret, a, sizeof a),
                        quoted_or_unset(nv, secret, b, sizeof b));
        }
    }
    return changed;
}

int sk_config_apply_reload(struct sk_config *dst, const struct sk_config *src)
{
    for (size_t i = 0; i < config_nopts; i++) {
        const struct opt *o = &config_opts[i];
        if (!(o->flags & OF_RELOAD))
            continue;
        if (o->type == OT_STR) {
            const char *s = config_get_str(src, o);
            char *d = xstrdup_or_null(s);
            if (s && !d)
                return -ENOMEM;
            config_put_str(dst, o, d);
        } else {
            config_put_num(dst, o, config_get_num(src, o));
        }
    }
    return 0;
}

