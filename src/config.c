/* config — the table of settings and setting one value; see
 * include/config.h.
 *
 * Everything about a setting lives in one row of `config_opts[]`: its key,
 * type, range, default, place in struct sk_config, whether a reload may
 * change it, whether it is secret, and its help line.  Defaults go through
 * the same parser as user values, so a default outside its own range is
 * caught by sk_config_init() (and by the unit tests).  Where the values
 * come from is config_text.c (the file) and the caller (-o); the checks
 * between keys are config_check.c. */
#include "config_int.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef SK_SQL_DIR
#define SQL_DIR_DEFAULT SK_SQL_DIR
#else
#define SQL_DIR_DEFAULT "sql"
#endif

static_assert(sizeof(enum sk_log_level) == sizeof(unsigned), "log level stored as unsigned");

#define AT(m) .off = offsetof(struct sk_config, m), .size = sizeof(((struct sk_config *)0)->m)
#define KIB 1024u
#define MIB (1024u * 1024u)

static bool check_nonempty(const char *v, char *why, size_t n);
static bool check_dburl(const char *v, char *why, size_t n);
static bool check_listen(const char *v, char *why, size_t n);
static bool check_abs_path(const char *v, char *why, size_t n);

static const struct enum_name log_levels[] = {
    {"err", SK_LOG_ERR},   {"warning", SK_LOG_WARNING}, {"notice", SK_LOG_NOTICE},
    {"info", SK_LOG_INFO}, {"debug", SK_LOG_DEBUG},     {NULL, 0},
};

/* "on" is verify-full: TLS that is on checks the certificate and the name. */
static const struct enum_name tls_modes[] = {
    {"off", SK_DB_TLS_OFF},
    {"required", SK_DB_TLS_REQUIRED},
    {"verify-ca", SK_DB_TLS_VERIFY_CA},
    {"verify-full", SK_DB_TLS_VERIFY_FULL},
    {"on", SK_DB_TLS_VERIFY_FULL},
    {NULL, 0},
};

static const struct enum_name unknown_fields_names[] = {
    {"reject", SK_UNKNOWN_REJECT}, {"ignore", SK_UNKNOWN_IGNORE}, {NULL, 0},
};

const struct opt config_opts[] = {
    {.key = "db.url", .type = OT_STR, AT(db_url), .check = check_dburl,
     .flags = OF_NOECHO | OF_EMPTY_UNSET,
     .help = "Database, mariadb://user@host[:port]/dbname or "
             "mariadb://user@localhost/dbname?socket=/path (required; no password here)"},
    {.key = "db.password_file", .type = OT_STR, AT(db_password_file),
     .flags = OF_SECRET | OF_EMPTY_UNSET,
     .help = "File holding the database password (max 4 KiB, one trailing newline "
             "ignored); unset: $CREDENTIALS_DIRECTORY/db.password if present"},
    {.key = "db.tls", .type = OT_ENUM, AT(db_tls), .names = tls_modes, .def = "off",
     .help = "TLS to the database: off; required (encrypted, the server's certificate not "
             "checked); verify-ca (signed by a CA of db.tls_ca); verify-full or on (and valid "
             "for the host name of db.url)"},
    {.key = "db.tls_ca", .type = OT_STR, AT(db_tls_ca), .check = check_abs_path,
     .flags = OF_EMPTY_UNSET,
     .help = "CA certificates (PEM file) the server's certificate must be signed by; unset: "
             "the system's CA store"},
    {.key = "db.tls_cert", .type = OT_STR, AT(db_tls_cert), .check = check_abs_path,
     .flags = OF_EMPTY_UNSET,
     .help = "Client certificate (PEM file) shown to the server, for an account that REQUIREs "
             "X509; unset: $CREDENTIALS_DIRECTORY/db.tls_cert if present"},
    {.key = "db.tls_key", .type = OT_STR, AT(db_tls_key), .check = check_abs_path,
     .flags = OF_EMPTY_UNSET,
     .help = "Private key of db.tls_cert (PEM file); unset: $CREDENTIALS_DIRECTORY/db.tls_key "
             "if present"},
    {.key = "db.tls_key_password_file", .type = OT_STR, AT(db_tls_key_password_file),
     .flags = OF_SECRET | OF_EMPTY_UNSET,
     .help = "File holding the passphrase of an encrypted db.tls_key; unset: "
             "$CREDENTIALS_DIRECTORY/db.tls_key_password if present"},
    {.key = "db.pool_size", .type = OT_UINT, AT(db_pool_size), .min = 1, .max = 64, .def = "4",
     .help = "Number of database connections"},
    {.key = "db.connect_timeout_ms", .type = OT_MS, AT(db_connect_timeout_ms), .min = 100,
     .max = 600000, .def = "5000", .help = "Timeout for connecting to the database"},
    {.key = "db.query_timeout_ms", .type = OT_MS, AT(db_query_timeout_ms), .min = 100,
     .max = 3600000, .def = "30000",
     .help = "Longest one database statement may take: the server ends it a little before "
             "(max_statement_time: a tenth less, at most 1 s), the client gives up on the "
             "connection after it"},
    {.key = "db.retry_min_ms", .type = OT_MS, AT(db_retry_min_ms), .min = 1, .max = 60000,
     .def = "100", .help = "First delay before retrying a failed database operation"},
    {.key = "db.retry_max_ms", .type = OT_MS, AT(db_retry_max_ms), .min = 10, .max = 600000,
     .def = "10000", .help = "Longest retry delay (the delay doubles up to this)"},
    {.key = "db.slow_transaction_ms", .type = OT_MS, AT(db_slow_txn_ms), .min = 0, .max = 3600000,
     .def = "1000", .flags = OF_RELOAD,
     .help = "A transaction that takes this long or longer, from taking its connection to its "
             "COMMIT, is logged as a warning (0: never)"},
    {.key = "db.idle_ping_ms", .type = OT_MS, AT(db_idle_ping_ms), .min = 1000, .max = 3600000,
     .def = "30000", .help = "Ping a connection idle this long (finds silently dropped ones)"},
    {.key = "db.keepalive_ms", .type = OT_MS, AT(db_keepalive_ms), .min = 0, .max = 3600000,
     .def = "10000",
     .help = "TCP keepalive of the database connections: one whose peer stopped answering "
             "while nothing was in flight is closed within about this long (whole seconds, "
             "at least 2; 0: off)"},
    {.key = "kafka.bootstrap.servers", .alias = "kafka.brokers", .type = OT_STR,
     AT(kafka_brokers), .flags = OF_EMPTY_UNSET,
     .help = "Kafka brokers, host:port[,host:port...] (required)"},
    {.key = "kafka.group.id", .type = OT_STR, AT(group_id), .def = "scorekeeper",
     .check = check_nonempty, .help = "Kafka consumer group"},
    {.key = "topic.users", .type = OT_STR, AT(topic_users), .def = "game.users",
     .check = config_check_topic, .help = "Topic of user events"},
    {.key = "topic.scores", .type = OT_STR, AT(topic_scores), .def = "game.scores",
     .check = config_check_topic, .help = "Topic of score events"},
    {.key = "topic.results", .type = OT_STR, AT(topic_results), .def = "game.results",
     .check = config_check_topic, .help = "Topic the results are produced to"},
    {.key = "topic.dead_letter", .type = OT_STR, AT(topic_dead_letter),
     .def = "game.dead-letter", .check = config_check_topic,
     .help = "Topic rejected messages are copied to"},
    {.key = "batch.max_events", .type = OT_UINT, AT(batch_max_events), .min = 1,
     .max = 100000, .def = "2000", .flags = OF_RELOAD,
     .help = "Most events of one game in one batch"},
    {.key = "batch.linger_ms", .type = OT_MS, AT(batch_linger_ms), .min = 0, .max = 60000,
     .def = "5", .flags = OF_RELOAD,
     .help = "How long a game's first queued event waits for more before its batch goes (it "
             "adds to every event's latency, and fuller batches share commits)"},
    {.key = "batch.txn_max_events", .type = OT_UINT, AT(txn_max_events), .min = 1, .max = 1000000,
     .def = "2000", .flags = OF_RELOAD,
     .help = "Most events in one database transaction: ready batches of several games share "
             "a transaction (and its commit) up to this many events"},
    {.key = "batch.max_bytes", .type = OT_SIZE, AT(batch_max_bytes), .min = KIB,
     .max = 64 * (uint64_t)MIB, .def = "1M", .flags = OF_RELOAD,
     .help = "Most payload bytes in one batch (less when the server's max_allowed_packet "
             "calls for it)"},
    {.key = "pipeline.max_inflight_events", .type = OT_UINT, AT(max_inflight_events), .min = 1,
     .max = 10000000, .def = "20000", .flags = OF_RELOAD,
     .help = "Events consumed whose results are not delivered yet; each partition with traffic "
             "may hold its share, then it is paused until half of that is done (bounds memory)"},
    {.key = "pipeline.max_inflight_bytes", .type = OT_SIZE, AT(max_inflight_bytes), .min = MIB,
     .max = 64 * 1024 * (uint64_t)MIB, .def = "24M", .flags = OF_RELOAD,
     .help = "Memory the events in flight may hold (the payload's copy, the parsed event, the "
             "result), shared like pipeline.max_inflight_events: a partition at its share is "
             "paused until half of that is done"},
    {.key = "limits.max_message_bytes", .type = OT_SIZE, AT(limits.max_message_bytes),
     .min = 64, .max = 16 * (uint64_t)MIB, .def = "65536", .flags = OF_RELOAD,
     .help = "Largest accepted message payload"},
    {.key = "limits.max_depth", .type = OT_UINT, AT(limits.max_depth), .min = 1, .max = 64,
     .def = "4", .flags = OF_RELOAD, .help = "Deepest accepted JSON nesting"},
    {.key = "limits.max_event_id_len", .type = OT_UINT, AT(limits.max_event_id_len), .min = 1,
     .max = 128, .def = "128", .flags = OF_RELOAD, .help = "Longest accepted event_id (bytes)"},
    {.key = "limits.max_name_chars", .type = OT_UINT, AT(limits.max_name_chars), .min = 1,
     .max = 50, .def = "50", .flags = OF_RELOAD,
     .help = "Longest username/nickname (characters; the column is VARCHAR(50))"},
    {.key = "limits.max_game_name_chars", .type = OT_UINT, AT(limits.max_game_name_chars),
     .min = 1, .max = 100, .def = "100", .flags = OF_RELOAD,
     .help = "Longest game name (characters)"},
    {.key = "events.unknown_fields", .type = OT_ENUM, AT(limits.unknown_fields),
     .names = unknown_fields_names, .def = "reject", .flags = OF_RELOAD,
     .help = "An input member the contract does not define: reject the event (unknown_field), "
             "or ignore the member (still strict JSON, no name twice); reject|ignore"},
    {.key = "log.level", .type = OT_ENUM, AT(log_level), .names = log_levels, .def = "info",
     .flags = OF_RELOAD, .help = "Least severe message logged: err|warning|notice|info|debug"},
    {.key = "shutdown.timeout_ms", .type = OT_MS, AT(shutdown_timeout_ms), .min = 1000,
     .max = 600000, .def = "30000",
     .help = "How long a stop may take to drain in-flight events"},
    {.key = "offsets.commit_interval_ms", .type = OT_MS, AT(commit_interval_ms), .min = 100,
     .max = 60000, .def = "1000", .help = "How often processed offsets are committed"},
    {.key = "pipeline.known_users", .type = OT_UINT, AT(known_users), .min = 1, .max = 100000000,
     .def = "200000",
     .help = "Usernames remembered as existing, so they are not inserted again (about 40 bytes "
             "each; when full, the names unused for the longest are forgotten)"},
    {.key = "pipeline.known_users_preload", .type = OT_UINT, AT(known_users_preload), .min = 0,
     .max = 100000000, .def = "100000",
     .help = "Usernames read from the database at start, newest first (at most half of "
             "pipeline.known_users; 0: none), so that a restarted daemon does not send them "
             "to INSERT IGNORE again"},
    {.key = "pipeline.game_marks", .type = OT_UINT, AT(game_marks), .min = 64, .max = 100000000,
     .def = "65536",
     .help = "Games whose applied offset (mark) is remembered, over all assigned score "
             "partitions (shared equally; at most 64 bytes each), so that their transactions "
             "need no read first; when full, the games idle the longest are forgotten"},
    {.key = "pipeline.stall_timeout_ms", .type = OT_MS, AT(stall_timeout_ms), .min = 1000,
     .max = 3600000, .def = "90000", .flags = OF_RELOAD,
     .help = "A batch running longer than this means the pipeline is wedged: the systemd "
             "watchdog is no longer fed"},
    {.key = "metrics.listen", .type = OT_STR, AT(metrics_listen), .def = "127.0.0.1:9464",
     .check = check_listen,
     .help = "Address of the Prometheus /metrics and /healthz endpoint, HOST:PORT (numeric "
             "IPv4; port 0 picks a free one), or \"off\""},
    {.key = "results.echo_headers", .type = OT_STR, AT(echo_headers),
     .def = "correlation-id,correlation_id,x-correlation-id,x-request-id,traceparent,tracestate",
     .check = check_nonempty,
     .help = "Input headers copied onto the result event (comma-separated names, any case)"},
    {.key = "sql.dir", .type = OT_STR, AT(sql_dir), .def = SQL_DIR_DEFAULT,
     .check = check_nonempty, .help = "Directory of the SQL migrations (for `migrate`)"},
};
const size_t config_nopts = sizeof config_opts / sizeof config_opts[0];

/* ---- small helpers ------------------------------------------------------ */

bool config_has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

const char *config_shown(const char *v, bool secret, char out[SHOWN_MAX + 4])
{
    if (secret)
        return MASK;
    size_t i = 0;
    for (; v[i] && i < SHOWN_MAX; i++) {
        unsigned char ch = (unsigned char)v[i];
        out[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    if (v[i])
        memcpy(out + i, "...", 3), i += 3;
    out[i] = '\0';
    return out;
}

static const char *orig(const char *origin) { return origin ? origin : "-o"; }

void config_wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void *field(struct sk_config *c, const struct opt *o) { return (char *)c + o->off; }
static const void *cfield(const struct sk_config *c, const struct opt *o)
{
    return (const char *)c + o->off;
}

char *config_get_str(const struct sk_config *c, const struct opt *o)
{
    char *s;
    memcpy(&s, cfield(c, o), sizeof s);
    return s;
}

void config_put_str(struct sk_config *c, const struct opt *o, char *s)
{
    char *old = config_get_str(c, o);
    memcpy(field(c, o), &s, sizeof s);
    if (old != s)
        free(old);
}

uint64_t config_get_num(const struct sk_config *c, const struct opt *o)
{
    const void *p = cfield(c, o);
    if (o->size == sizeof(size_t)) {
        size_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    if (o->size == sizeof(unsigned)) {
        unsigned v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    bool b;
    memcpy(&b, p, sizeof b);
    return b;
}

void config_put_num(struct sk_config *c, const struct opt *o, uint64_t x)
{
    void *p = field(c, o);
    if (o->size == sizeof(size_t)) {
        size_t v = (size_t)x;
        memcpy(p, &v, sizeof v);
    } else if (o->size == sizeof(unsigned)) {
        unsigned v = (unsigned)x;
        memcpy(p, &v, sizeof v);
    } else {
        bool v = x != 0;
        memcpy(p, &v, sizeof v);
    }
}

static const struct opt *find_opt(const char *key)
{
    for (size_t i = 0; i < config_nopts; i++)
        if (strcmp(config_opts[i].key, key) == 0 || (config_opts[i].alias && strcmp(config_opts[i].alias, key) == 0))
            return &config_opts[i];
    return NULL;
}

bool config_opt_secret(const struct opt *o)
{
    return (o->flags & OF_SECRET) || sk_config_key_is_secret(o->key);
}

/* ---- value checks ------------------------------------------------------- */

static bool check_nonempty(const char *v, char *why, size_t n)
{
    if (*v)
        return true;
    snprintf(why, n, "must not be empty");
    return false;
}

bool config_check_topic(const char *v, char *why, size_t n)
{
    size_t len = strlen(v);
    bool ok = len >= 1 && len <= 249 && strcmp(v, ".") != 0 && strcmp(v, "..") != 0;
    for (size_t i = 0; ok && i < len; i++) {
        unsigned char ch = (unsigned char)v[i];
        ok = isalnum(ch) || ch == '.' || ch == '_' || ch == '-';
    }
    if (!ok)
        snprintf(why, n, "expected a Kafka topic name, 1..249 characters of A-Z a-z 0-9 . _ -");
    return ok;
}

static bool check_dburl(const char *v, char *why, size_t n)
{
    if (!*v)
        return true; /* unset; sk_config_finish() insists on it */
    struct sk_dburl u;
    if (sk_dburl_parse(v, &u, why, n) < 0)
        return false;
    sk_dburl_free(&u);
    return true;
}

/* A file named by its absolute path: never a relative name (relative to
 * what?) nor the contents themselves (a PEM key pasted into the file). */
static bool check_abs_path(const char *v, char *why, size_t n)
{
    if (*v == '/' || !*v)
        return true;
    snprintf(why, n, "expected an absolute path to a PEM file");
    return false;
}

static bool check_listen(const char *v, char *why, size_t n)
{
    struct sockaddr_in sa;
    return sk_config_parse_listen(v, &sa, why, n) >= 0;
}

/* ---- numbers ------------------------------------------------------------ */

/* Decimal digits only (no sign, no blanks); false on overflow. */
static bool parse_digits(const char *s, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    *end = p;
    return p != s;
}

static bool parse_uint(const char *s, uint64_t *out)
{
    const char *end;
    return parse_digits(s, out, &end) && *end == '\0';
}

bool config_parse_size(const char *s, uint64_t *out)
{
    const char *end;
    uint64_t v, mul = 1;
    if (!parse_digits(s, &v, &end))
        return false;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mul = KIB; end++; break;
    case 'm': case 'M': mul = MIB; end++; break;
    case 'g': case 'G': mul = 1024u * MIB; end++; break;
    default: return false;
    }
    if (*end || v > UINT64_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

void config_fmt_size(uint64_t v, char *out, size_t n)
{
    if (v && v % (1024u * MIB) == 0)
        snprintf(out, n, "%" PRIu64 "G", v / (1024u * MIB));
    else if (v && v % MIB == 0)
        snprintf(out, n, "%" PRIu64 "M", v / MIB);
    else if (v && v % KIB == 0)
        snprintf(out, n, "%" PRIu64 "k", v / KIB);
    else
        snprintf(out, n, "%" PRIu64, v);
}

void config_expected(const struct opt *o, char *out, size_t n)
{
    char a[32], b[32];
    switch (o->type) {
    case OT_UINT:
        snprintf(out, n, "expected an integer %" PRIu64 "..%" PRIu64, o->min, o->max);
        break;
    case OT_MS:
        snprintf(out, n, "expected milliseconds %" PRIu64 "..%" PRIu64, o->min, o->max);
        break;
    case OT_SIZE:
        config_fmt_size(o->min, a, sizeof a);
        config_fmt_size(o->max, b, sizeof b);
        snprintf(out, n, "expected a size in bytes %s..%s (suffix k, M or G, 1024-based)", a, b);
        break;
    case OT_ENUM: {
        size_t len = (size_t)snprintf(out, n, "expected one of");
        for (const struct enum_name *e = o->names; e->name && len < n; e++)
            len += (size_t)snprintf(out + len, n - len, "%s %s", e == o->names ? "" : ",",
                                    e->name);
        break;
    }
    case OT_BOOL:
        snprintf(out, n, "expected true or false");
        break;
    case OT_STR:
        snprintf(out, n, "expected text");
        break;
    }
}

/* ---- setting ------------------------------------------------------------ */

static int set_opt(struct sk_config *c, const struct opt *o, const char *value,
                   const char *origin, char *err, size_t errlen)
{
    char why[256] = "";
    char sh[SHOWN_MAX + 4];
    uint64_t v = 0;
    bool ok;

    if (config_has_ctl(value)) {
        snprintf(why, sizeof why, "control characters are not allowed");
        ok = false;
    } else {
        switch (o->type) {
        case OT_STR:
            ok = !o->check || o->check(value, why, sizeof why);
            if (ok) {
                char *s = NULL;
                if (*value || !(o->flags & OF_EMPTY_UNSET)) {
                    s = strdup(value);
                    if (!s)
                        return sk_errf_code(-ENOMEM, err, errlen, "out of memory setting \"%s\"",
                                            o->key);
                }
                config_put_str(c, o, s);
                return 0;
            }
            break;
        case OT_UINT:
        case OT_MS:
            ok = parse_uint(value, &v) && v >= o->min && v <= o->max;
            break;
        case OT_SIZE:
            ok = config_parse_size(value, &v) && v >= o->min && v <= o->max;
            break;
        case OT_ENUM:
            ok = false;
            for (const struct enum_name *e = o->names; e->name; e++)
                if (strcasecmp(e->name, value) == 0) {
                    v = e->value;
                    ok = true;
                    break;
                }
            break;
        case OT_BOOL:
            ok = true;
            if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") ||
                !strcasecmp(value, "on") || !strcmp(value, "1"))
                v = 1;
            else if (!strcasecmp(value, "false") || !strcasecmp(value, "no") ||
                     !strcasecmp(value, "off") || !strcmp(value, "0"))
                v = 0;
            else
                ok = false;
            break;
        }
        if (ok) {
            config_put_num(c, o, v);
            return 0;
        }
        if (!why[0])
            config_expected(o, why, sizeof why);
    }
    if (o->flags & OF_NOECHO)
        return fail(err, errlen, "invalid value for \"%s\" (from %s): %s", o->key, orig(origin),
                    why);
    return fail(err, errlen, "invalid value \"%s\" for \"%s\" (from %s): %s",
                config_shown(value, config_opt_secret(o), sh), o->key, orig(origin), why);
}

/* Optimal string alignment distance (edits + adjacent transpositions). */
static size_t edit_distance(const char *a, const char *b)
{
    enum { M = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la > M || lb > M)
        return SIZE_MAX;
    size_t d[M + 1][M + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

static const char *suggest(const char *key)
{
    const char *best = NULL;
    size_t bestd = 3; /* suggest only within distance 2 */
    for (size_t i = 0; i < config_nopts; i++) {
        size_t dk = edit_distance(key, config_opts[i].key);
        if (dk < bestd)
            bestd = dk, best = config_opts[i].key;
        if (config_opts[i].alias) {
            size_t da = edit_distance(key, config_opts[i].alias);
            if (da < bestd)
                bestd = da, best = config_opts[i].alias;
        }
    }
    return best;
}

int sk_config_set(struct sk_config *c, const char *key, const char *value, const char *origin,
                  char *err, size_t errlen)
{
    char sh[SHOWN_MAX + 4];
    if (!key || !*key)
        return fail(err, errlen, "empty key (from %s)", orig(origin));
    if (!value)
        value = "";
    const struct opt *o = find_opt(key);
    if (o)
        return set_opt(c, o, value, origin, err, errlen);
    if (strncmp(key, "kafka.", 6) == 0)
        return config_set_kafka(c, key, value, orig(origin), err, errlen);
    if (strcmp(key, "db.password") == 0)
        return config_secret_refused(key, orig(origin), err, errlen);
    if (strcmp(key, "include") == 0)
        return fail(err, errlen, "\"include\" (from %s) is a line of a configuration file, "
                    "not a setting", orig(origin));
    const char *s = suggest(key);
    if (s)
        return fail(err, errlen, "unknown key \"%s\" (from %s); did you mean \"%s\"?",
                    config_shown(key, false, sh), orig(origin), s);
    return fail(err, errlen, "unknown key \"%s\" (from %s)", config_shown(key, false, sh), orig(origin));
}

/* ---- init / free -------------------------------------------------------- */

static bool opt_size_ok(const struct opt *o)
{
    switch (o->type) {
    case OT_STR: return o->size == sizeof(char *);
    case OT_UINT: case OT_MS: case OT_ENUM: return o->size == sizeof(unsigned);
    case OT_SIZE: return o->size == sizeof(size_t) || o->size == sizeof(unsigned);
    case OT_BOOL: return o->size == sizeof(bool);
    }
    return false;
}

int sk_config_init(struct sk_config *c)
{
    *c = (struct sk_config){0};
    for (size_t i = 0; i < config_nopts; i++) {
        const struct opt *o = &config_opts[i];
        /* A table row whose type does not fit its field is a bug the unit
         * tests catch through this failure. */
        if (!opt_size_ok(o) || (o->size == sizeof(unsigned) && o->max > UINT_MAX)) {
            sk_config_free(c);
            return -EINVAL;
        }
        if (!o->def)
            continue;
        /* Only ENOMEM can fail here (the unit tests check every default). */
        int r = set_opt(c, o, o->def, "default", NULL, 0);
        if (r < 0) {
            sk_config_free(c);
            return r;
        }
    }
    return 0;
}

void sk_config_free(struct sk_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < config_nopts; i++)
        if (config_opts[i].type == OT_STR)
            config_put_str(c, &config_opts[i], NULL);
    for (size_t i = 0; i < c->n_kafka; i++) {
        char key[300];
        snprintf(key, sizeof key, "kafka.%s", c->kafka[i].key);
        if (sk_config_key_is_secret(key))
            config_wipe_free(c->kafka[i].value);
        else
            free(c->kafka[i].value);
        free(c->kafka[i].key);
        free(c->kafka[i].origin);
    }
    free(c->kafka);
    for (size_t i = 0; i < c->n_files; i++)
        free(c->files[i]);
    free(c->files);
    sk_dburl_free(&c->db);
    config_wipe_free(c->db_password);
    config_wipe_free(c->db_tls_key_password);
    free(c->tls_cert_path);
    free(c->tls_key_path);
    *c = (struct sk_config){0};
}

/* ---- secrets, reload, text of a value ----------------------------------- */

bool sk_config_key_is_secret(const char *key)
{
    static const char *const parts[] = {"password", "secret", "sasl.oauthbearer.config",
                                        "ssl.key.pem", "ssl_key"};
    if (!key)
        return false;
    if (strncmp(key, "db.password", 11) == 0)
        return true;
    const struct opt *o = find_opt(key);
    if (o && (o->flags & OF_SECRET))
        return true;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (strcasestr(key, parts[i]))
            return true;
    return false;
}

bool sk_config_key_is_reloadable(const char *key)
{
    const struct opt *o = key ? find_opt(key) : NULL;
    return o && (o->flags & OF_RELOAD);
}

const char *config_value_text(const struct sk_config *c, const struct opt *o, char *tmp,
                              size_t n)
{
    uint64_t v;
    switch (o->type) {
    case OT_STR:
        return config_get_str(c, o);
    case OT_ENUM:
        v = config_get_num(c, o);
        for (const struct enum_name *e = o->names; e->name; e++)
            if (e->value == v)
                return e->name;
        snprintf(tmp, n, "%" PRIu64, v);
        return tmp;
    case OT_BOOL:
        return config_get_num(c, o) ? "true" : "false";
    case OT_UINT:
    case OT_MS:
    case OT_SIZE:
        break;
    }
    snprintf(tmp, n, "%" PRIu64, config_get_num(c, o));
    return tmp;
}
