/* config — settings table, file parser, overrides and cross-key checks; see
 * include/config.h.
 *
 * Everything about a setting lives in one row of `opts[]`: its key, type,
 * range, default, place in struct sk_config, whether a reload may change
 * it, whether it is secret, and its help line.  Defaults go through the same
 * parser as user values, so a default outside its own range is caught by
 * sk_config_init() (and by the unit tests).
 *
 * File syntax (also in sk_config_help()):
 *   key = value        blanks around key and value are trimmed
 *   # comment          only as the first non-blank character of a line
 *   key = a#b          '#' anywhere else belongs to the value
 *   key = "  x  "      a value starting with '"' must be exactly one quoted
 *                      string; it keeps blanks, \" and \\ are its escapes
 * Quotes are file syntax only: `-o key=value` takes the value literally,
 * the shell has already done the quoting there. */
#include "config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <threads.h>
#include <unistd.h>

#include "buf.h"

#ifdef SK_SQL_DIR
#define SQL_DIR_DEFAULT SK_SQL_DIR
#else
#define SQL_DIR_DEFAULT "sql"
#endif

#define MAX_LINE 4096          /* bytes per config file line, newline excluded */
#define MAX_PASSWORD_FILE 4096 /* bytes */
#define MASK "********"
#define SHOWN_MAX 64 /* bytes of a value quoted in a message */

static_assert(sizeof(enum sk_log_level) == sizeof(unsigned), "log level stored as unsigned");

enum opt_type { OT_STR, OT_UINT, OT_SIZE, OT_MS, OT_ENUM, OT_BOOL };

enum {
    OF_RELOAD = 1u << 0,      /* a reload may change it */
    OF_SECRET = 1u << 1,      /* never shown */
    OF_NOECHO = 1u << 2,      /* value not quoted in errors (db.url: may hold a password) */
    OF_EMPTY_UNSET = 1u << 3, /* "" means unset (NULL) */
};

struct enum_name {
    const char *name;
    unsigned value;
};

struct opt {
    const char *key;
    const char *alias;
    enum opt_type type;
    size_t off, size;
    uint64_t min, max;
    const char *def; /* NULL: no default (string stays NULL) */
    /* Extra validation for strings; writes why into `why` on failure. */
    bool (*check)(const char *v, char *why, size_t n);
    const struct enum_name *names;
    unsigned flags;
    const char *help;
};

#define AT(m) .off = offsetof(struct sk_config, m), .size = sizeof(((struct sk_config *)0)->m)
#define KIB 1024u
#define MIB (1024u * 1024u)

static bool check_nonempty(const char *v, char *why, size_t n);
static bool check_topic(const char *v, char *why, size_t n);
static bool check_dburl(const char *v, char *why, size_t n);

static const struct enum_name log_levels[] = {
    {"err", SK_LOG_ERR},   {"warning", SK_LOG_WARNING}, {"notice", SK_LOG_NOTICE},
    {"info", SK_LOG_INFO}, {"debug", SK_LOG_DEBUG},     {NULL, 0},
};

static const struct opt opts[] = {
    {.key = "db.url", .type = OT_STR, AT(db_url), .check = check_dburl,
     .flags = OF_NOECHO | OF_EMPTY_UNSET,
     .help = "Database, mariadb://user@host[:port]/dbname or "
             "mariadb://user@localhost/dbname?socket=/path (required; no password here)"},
    {.key = "db.password_file", .type = OT_STR, AT(db_password_file),
     .flags = OF_SECRET | OF_EMPTY_UNSET,
     .help = "File holding the database password (max 4 KiB, one trailing newline "
             "ignored); unset: $CREDENTIALS_DIRECTORY/db.password if present"},
    {.key = "db.pool_size", .type = OT_UINT, AT(db_pool_size), .min = 1, .max = 64, .def = "4",
     .help = "Number of database connections"},
    {.key = "db.connect_timeout_ms", .type = OT_MS, AT(db_connect_timeout_ms), .min = 100,
     .max = 600000, .def = "5000", .help = "Timeout for connecting to the database"},
    {.key = "db.query_timeout_ms", .type = OT_MS, AT(db_query_timeout_ms), .min = 100,
     .max = 3600000, .def = "30000", .help = "Timeout for one database statement"},
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
    {.key = "kafka.bootstrap.servers", .alias = "kafka.brokers", .type = OT_STR,
     AT(kafka_brokers), .flags = OF_EMPTY_UNSET,
     .help = "Kafka brokers, host:port[,host:port...] (required)"},
    {.key = "kafka.group.id", .type = OT_STR, AT(group_id), .def = "scorekeeper",
     .check = check_nonempty, .help = "Kafka consumer group"},
    {.key = "topic.users", .type = OT_STR, AT(topic_users), .def = "game.users",
     .check = check_topic, .help = "Topic of user events"},
    {.key = "topic.scores", .type = OT_STR, AT(topic_scores), .def = "game.scores",
     .check = check_topic, .help = "Topic of score events"},
    {.key = "topic.results", .type = OT_STR, AT(topic_results), .def = "game.results",
     .check = check_topic, .help = "Topic the results are produced to"},
    {.key = "topic.dead_letter", .type = OT_STR, AT(topic_dead_letter),
     .def = "game.dead-letter", .check = check_topic,
     .help = "Topic rejected messages are copied to"},
    {.key = "batch.max_events", .type = OT_UINT, AT(batch_max_events), .min = 1,
     .max = 100000, .def = "2000", .flags = OF_RELOAD,
     .help = "Most events of one game in one batch"},
    {.key = "batch.linger_ms", .type = OT_MS, AT(batch_linger_ms), .min = 0, .max = 60000,
     .def = "5", .flags = OF_RELOAD,
     .help = "How long a game's first queued event waits for more before its batch goes (p99 "
             "latency at moderate load is about this plus 30 ms)"},
    {.key = "batch.txn_max_events", .type = OT_UINT, AT(txn_max_events), .min = 1, .max = 1000000,
     .def = "2000", .flags = OF_RELOAD,
     .help = "Most events in one database transaction: ready batches of several games share "
             "a transaction (and its commit) up to this many events"},
    {.key = "batch.max_bytes", .type = OT_SIZE, AT(batch_max_bytes), .min = KIB,
     .max = 64 * (uint64_t)MIB, .def = "1M", .flags = OF_RELOAD,
     .help = "Most payload bytes in one batch"},
    {.key = "pipeline.max_inflight_events", .type = OT_UINT, AT(max_inflight_events), .min = 1,
     .max = 10000000, .def = "20000", .flags = OF_RELOAD,
     .help = "Events consumed whose results are not delivered yet; each partition with traffic "
             "may hold its share, then it is paused until half of that is done (bounds memory)"},
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
    {.key = "pipeline.stall_timeout_ms", .type = OT_MS, AT(stall_timeout_ms), .min = 1000,
     .max = 3600000, .def = "90000", .flags = OF_RELOAD,
     .help = "A batch running longer than this means the pipeline is wedged: the systemd "
             "watchdog is no longer fed"},
    {.key = "metrics.listen", .type = OT_STR, AT(metrics_listen), .def = "127.0.0.1:9464",
     .check = check_nonempty,
     .help = "Address of the Prometheus /metrics and /healthz endpoint, HOST:PORT (numeric "
             "IPv4; port 0 picks a free one), or \"off\""},
    {.key = "results.echo_headers", .type = OT_STR, AT(echo_headers),
     .def = "correlation-id,correlation_id,x-correlation-id,x-request-id,traceparent,tracestate",
     .check = check_nonempty,
     .help = "Input headers copied onto the result event (comma-separated names, any case)"},
    {.key = "sql.dir", .type = OT_STR, AT(sql_dir), .def = SQL_DIR_DEFAULT,
     .check = check_nonempty, .help = "Directory of the SQL migrations (for `migrate`)"},
};
#define N_OPTS (sizeof opts / sizeof opts[0])

/* ---- small helpers ------------------------------------------------------ */

#define fail sk_errf /* format the one-line error, return -1 */

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* A value as it may appear in a message: masked when secret, control
 * characters replaced, cut after SHOWN_MAX bytes. */
static const char *shown(const char *v, bool secret, char out[SHOWN_MAX + 4])
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

static char *xstrdup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void wipe_free(char *s)
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

static char *get_str(const struct sk_config *c, const struct opt *o)
{
    char *s;
    memcpy(&s, cfield(c, o), sizeof s);
    return s;
}

static void put_str(struct sk_config *c, const struct opt *o, char *s)
{
    char *old = get_str(c, o);
    memcpy(field(c, o), &s, sizeof s);
    if (old != s)
        free(old);
}

static uint64_t get_num(const struct sk_config *c, const struct opt *o)
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

static void put_num(struct sk_config *c, const struct opt *o, uint64_t x)
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
    for (size_t i = 0; i < N_OPTS; i++)
        if (strcmp(opts[i].key, key) == 0 || (opts[i].alias && strcmp(opts[i].alias, key) == 0))
            return &opts[i];
    return NULL;
}

static bool opt_secret(const struct opt *o)
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

static bool check_topic(const char *v, char *why, size_t n)
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

static bool parse_size(const char *s, uint64_t *out)
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

static void fmt_size(uint64_t v, char *out, size_t n)
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

/* What a value of this setting must look like. */
static void expected(const struct opt *o, char *out, size_t n)
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
        fmt_size(o->min, a, sizeof a);
        fmt_size(o->max, b, sizeof b);
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

    if (has_ctl(value)) {
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
                        return fail(err, errlen, "out of memory setting \"%s\"", o->key);
                }
                put_str(c, o, s);
                return 0;
            }
            break;
        case OT_UINT:
        case OT_MS:
            ok = parse_uint(value, &v) && v >= o->min && v <= o->max;
            break;
        case OT_SIZE:
            ok = parse_size(value, &v) && v >= o->min && v <= o->max;
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
            put_num(c, o, v);
            return 0;
        }
        if (!why[0])
            expected(o, why, sizeof why);
    }
    if (o->flags & OF_NOECHO)
        return fail(err, errlen, "invalid value for \"%s\" (from %s): %s", o->key, orig(origin),
                    why);
    return fail(err, errlen, "invalid value \"%s\" for \"%s\" (from %s): %s",
                shown(value, opt_secret(o), sh), o->key, orig(origin), why);
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
    for (size_t i = 0; i < N_OPTS; i++) {
        size_t dk = edit_distance(key, opts[i].key);
        if (dk < bestd)
            bestd = dk, best = opts[i].key;
        if (opts[i].alias) {
            size_t da = edit_distance(key, opts[i].alias);
            if (da < bestd)
                bestd = da, best = opts[i].alias;
        }
    }
    return best;
}

static bool valid_kafka_property(const char *p)
{
    if (!*p)
        return false;
    for (; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-')
            return false;
    }
    return true;
}

static struct sk_kv *find_kv(const struct sk_config *c, const char *prop)
{
    for (size_t i = 0; i < c->n_kafka; i++)
        if (strcmp(c->kafka[i].key, prop) == 0)
            return &c->kafka[i];
    return NULL;
}

static int set_kafka(struct sk_config *c, const char *key, const char *value, const char *origin,
                     char *err, size_t errlen)
{
    const char *prop = key + strlen("kafka.");
    char sh[SHOWN_MAX + 4];
    if (!valid_kafka_property(prop))
        return fail(err, errlen,
                    "invalid key \"%s\" (from %s): expected kafka.<librdkafka property> "
                    "made of A-Z a-z 0-9 . _ -",
                    shown(key, false, sh), orig(origin));
    if (has_ctl(value))
        return fail(err, errlen, "invalid value \"%s\" for \"%s\" (from %s): control characters "
                    "are not allowed", shown(value, sk_config_key_is_secret(key), sh), key,
                    orig(origin));

    char *v = strdup(value), *o = strdup(orig(origin));
    if (!v || !o)
        goto nomem;
    struct sk_kv *kv = find_kv(c, prop);
    if (kv) { /* a later setting replaces an earlier one */
        if (sk_config_key_is_secret(key))
            wipe_free(kv->value);
        else
            free(kv->value);
        free(kv->origin);
        kv->value = v;
        kv->origin = o;
        return 0;
    }
    char *k = strdup(prop);
    struct sk_kv *arr = k ? realloc(c->kafka, (c->n_kafka + 1) * sizeof *arr) : NULL;
    if (!arr) {
        free(k);
        goto nomem;
    }
    c->kafka = arr;
    c->kafka[c->n_kafka++] = (struct sk_kv){.key = k, .value = v, .origin = o};
    return 0;
nomem:
    free(v);
    free(o);
    return fail(err, errlen, "out of memory setting \"%s\"", key);
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
        return set_kafka(c, key, value, origin, err, errlen);
    if (strcmp(key, "db.password") == 0)
        return fail(err, errlen,
                    "\"db.password\" cannot be set (from %s): put the password into a file and "
                    "name it in db.password_file, or use the systemd credential \"db.password\"",
                    orig(origin));
    const char *s = suggest(key);
    if (s)
        return fail(err, errlen, "unknown key \"%s\" (from %s); did you mean \"%s\"?",
                    shown(key, false, sh), orig(origin), s);
    return fail(err, errlen, "unknown key \"%s\" (from %s)", shown(key, false, sh), orig(origin));
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
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        /* A table row whose type does not fit its field is a bug the unit
         * tests catch through this failure. */
        if (!opt_size_ok(o) || (o->size == sizeof(unsigned) && o->max > UINT_MAX)) {
            sk_config_free(c);
            return -1;
        }
        if (!o->def)
            continue;
        /* Only ENOMEM can fail here (the unit tests check every default). */
        if (set_opt(c, o, o->def, "default", NULL, 0) < 0) {
            sk_config_free(c);
            return -1;
        }
    }
    return 0;
}

void sk_config_free(struct sk_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < N_OPTS; i++)
        if (opts[i].type == OT_STR)
            put_str(c, &opts[i], NULL);
    for (size_t i = 0; i < c->n_kafka; i++) {
        char key[300];
        snprintf(key, sizeof key, "kafka.%s", c->kafka[i].key);
        if (sk_config_key_is_secret(key))
            wipe_free(c->kafka[i].value);
        else
            free(c->kafka[i].value);
        free(c->kafka[i].key);
        free(c->kafka[i].origin);
    }
    free(c->kafka);
    sk_dburl_free(&c->db);
    wipe_free(c->db_password);
    *c = (struct sk_config){0};
}

/* ---- file --------------------------------------------------------------- */

static bool blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f'; }

static char *trim(char *s)
{
    while (blank(*s))
        s++;
    size_t n = strlen(s);
    while (n && blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Undo the quoting of a value that starts with '"', in place. */
static int unquote(char *v, const char *origin, const char *key, char *err, size_t errlen)
{
    char *out = v;
    const char *p = v + 1;
    for (;; p++) {
        if (*p == '\0')
            return fail(err, errlen, "%s: unterminated quoted value for \"%s\"", origin, key);
        if (*p == '"')
            break;
        if (*p == '\\') {
            p++;
            if (*p != '"' && *p != '\\')
                return fail(err, errlen,
                            "%s: invalid escape in the quoted value for \"%s\" "
                            "(only \\\" and \\\\ are known)", origin, key);
        }
        *out++ = *p;
    }
    if (p[1] != '\0')
        return fail(err, errlen, "%s: text after the closing quote of the value for \"%s\"",
                    origin, key);
    *out = '\0';
    return 0;
}

static int parse_line(struct sk_config *c, char *line, const char *origin, char *err,
                      size_t errlen)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#')
        return 0;
    char *eq = strchr(s, '=');
    if (!eq) /* the line is not quoted: it may be a misplaced secret */
        return fail(err, errlen, "%s: expected \"key = value\" (no '=' on this line)", origin);
    *eq = '\0';
    char *key = trim(s);
    char *value = trim(eq + 1);
    if (!*key)
        return fail(err, errlen, "%s: missing key before '='", origin);
    if (*value == '"' && unquote(value, origin, key, err, errlen) < 0)
        return -1;
    return sk_config_set(c, key, value, origin, err, errlen);
}

int sk_config_load_file(struct sk_config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return fail(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
    char *line = malloc(MAX_LINE + 1);
    char *origin = malloc(strlen(path) + 24);
    int rc = 0;
    if (!line || !origin) {
        rc = fail(err, errlen, "out of memory reading %s", path);
        goto out;
    }
    for (unsigned long lineno = 1;; lineno++) {
        size_t len = 0;
        bool too_long = false, nul = false;
        int ch;
        errno = 0;
        while ((ch = getc(f)) != EOF && ch != '\n') {
            if (ch == '\0')
                nul = true;
            if (len < MAX_LINE)
                line[len++] = (char)ch;
            else
                too_long = true;
        }
        if (ch == EOF && ferror(f)) {
            rc = fail(err, errlen, "cannot read config file %s: %s", path,
                      strerror(errno ? errno : EIO));
            goto out;
        }
        if (ch == EOF && len == 0)
            break;
        sprintf(origin, "%s:%lu", path, lineno);
        if (too_long) {
            rc = fail(err, errlen, "%s: line longer than %d bytes", origin, MAX_LINE);
            goto out;
        }
        if (nul) {
            rc = fail(err, errlen, "%s: NUL byte in line", origin);
            goto out;
        }
        line[len] = '\0';
        char *text = line;
        if (lineno == 1 && len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
            text += 3; /* UTF-8 byte order mark */
        rc = parse_line(c, text, origin, err, errlen);
        if (rc < 0 || ch == EOF)
            break;
    }
out:
    if (line)
        explicit_bzero(line, MAX_LINE + 1); /* it may have held a kafka secret */
    free(line);
    free(origin);
    fclose(f);
    return rc;
}

/* ---- finish ------------------------------------------------------------- */

/* Read a password file.  missing_ok: a file that does not exist yields
 * *out = NULL.  Messages name the file, never its contents. */
static int read_password(const char *path, bool missing_ok, char **out, char *err, size_t errlen)
{
    *out = NULL;
    /* O_NONBLOCK: a FIFO put there by mistake must not hang the start. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT && missing_ok)
            return 0;
        return fail(err, errlen, "cannot open password file %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return fail(err, errlen, "cannot stat password file %s: %s", path, strerror(e));
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
            rc = fail(err, errlen, "cannot read password file %s: %s", path, strerror(errno));
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
        rc = fail(err, errlen, "out of memory");
out:
    explicit_bzero(buf, sizeof buf);
    close(fd);
    return rc;
}

static int load_password(struct sk_config *c, char *err, size_t errlen)
{
    if (c->db_password_file)
        return read_password(c->db_password_file, false, &c->db_password, err, errlen);
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir)
        return 0;
    char *path = malloc(strlen(dir) + sizeof "/db.password");
    if (!path)
        return fail(err, errlen, "out of memory");
    sprintf(path, "%s/db.password", dir);
    int rc = read_password(path, true, &c->db_password, err, errlen);
    free(path);
    return rc;
}

int sk_config_finish(struct sk_config *c, char *err, size_t errlen)
{
    char why[256];
    sk_dburl_free(&c->db);
    wipe_free(c->db_password);
    c->db_password = NULL;

    if (!c->db_url)
        return fail(err, errlen, "missing required setting \"db.url\" "
                                 "(e.g. db.url = mariadb://scorekeeper@localhost/scorekeeper)");
    if (!c->kafka_brokers)
        return fail(err, errlen, "missing required setting \"kafka.bootstrap.servers\" "
                                 "(e.g. kafka.bootstrap.servers = localhost:9092)");
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
    if (sk_dburl_parse(c->db_url, &c->db, why, sizeof why) < 0)
        return fail(err, errlen, "invalid value for \"db.url\": %s", why);
    if (load_password(c, err, errlen) < 0) {
        sk_dburl_free(&c->db);
        return -1;
    }
    return 0;
}

/* ---- secrets, reload ---------------------------------------------------- */

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

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool opt_equal(const struct sk_config *a, const struct sk_config *b, const struct opt *o)
{
    if (o->type == OT_STR)
        return str_eq(get_str(a, o), get_str(b, o));
    return get_num(a, o) == get_num(b, o);
}

/* Text of a setting's value: strings as they are (NULL for unset). */
static const char *value_text(const struct sk_config *c, const struct opt *o, char *tmp,
                              size_t n)
{
    uint64_t v;
    switch (o->type) {
    case OT_STR:
        return get_str(c, o);
    case OT_ENUM:
        v = get_num(c, o);
        for (const struct enum_name *e = o->names; e->name; e++)
            if (e->value == v)
                return e->name;
        snprintf(tmp, n, "%" PRIu64, v);
        return tmp;
    case OT_BOOL:
        return get_num(c, o) ? "true" : "false";
    case OT_UINT:
    case OT_MS:
    case OT_SIZE:
        break;
    }
    snprintf(tmp, n, "%" PRIu64, get_num(c, o));
    return tmp;
}

static const char *quoted_or_unset(const char *v, bool secret, char *out, size_t n)
{
    char sh[SHOWN_MAX + 4];
    if (!v)
        snprintf(out, n, "unset");
    else
        snprintf(out, n, "\"%s\"", shown(v, secret, sh));
    return out;
}

int sk_config_reload_diff(const struct sk_config *old, const struct sk_config *next, char *err,
                          size_t errlen)
{
    int changed = 0;
    char t1[32], t2[32], a[SHOWN_MAX + 8], b[SHOWN_MAX + 8];
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        if (opt_equal(old, next, o))
            continue;
        if (o->flags & OF_RELOAD) {
            changed++;
            continue;
        }
        bool secret = opt_secret(o);
        return fail(err, errlen, "\"%s\" cannot be changed by a reload (%s -> %s); restart "
                    "scorekeeper to apply it", o->key,
                    quoted_or_unset(value_text(old, o, t1, sizeof t1), secret, a, sizeof a),
                    quoted_or_unset(value_text(next, o, t2, sizeof t2), secret, b, sizeof b));
    }
    if (!str_eq(old->db_password, next->db_password))
        return fail(err, errlen, "the database password (db.password_file) cannot be changed by "
                                 "a reload; restart scorekeeper to apply it");
    /* kafka.* passthrough: the client is built once. */
    for (int pass = 0; pass < 2; pass++) {
        const struct sk_config *x = pass ? next : old, *y = pass ? old : next;
        for (size_t i = 0; i < x->n_kafka; i++) {
            const struct sk_kv *kv = &x->kafka[i];
            const struct sk_kv *other = find_kv(y, kv->key);
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
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        if (!(o->flags & OF_RELOAD))
            continue;
        if (o->type == OT_STR) {
            const char *s = get_str(src, o);
            char *d = xstrdup_or_null(s);
            if (s && !d)
                return -1;
            put_str(dst, o, d);
        } else {
            put_num(dst, o, get_num(src, o));
        }
    }
    return 0;
}

/* ---- dump, help --------------------------------------------------------- */

static void put_value(struct sk_buf *b, const char *v)
{
    size_t n = strlen(v);
    if (n && v[0] != '"' && !blank(v[0]) && !blank(v[n - 1])) {
        sk_buf_puts(b, v);
        return;
    }
    sk_buf_putc(b, '"');
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            sk_buf_putc(b, '\\');
        sk_buf_putc(b, *v);
    }
    sk_buf_putc(b, '"');
}

static void emit(struct sk_buf *b, const char *key, const char *value, bool secret,
                 void (*line)(void *ud, const char *text), void *ud)
{
    sk_buf_reset(b);
    sk_buf_printf(b, "%s = ", key);
    if (!value)
        sk_buf_puts(b, "\"\"");
    else if (secret)
        sk_buf_puts(b, MASK);
    else
        put_value(b, value);
    line(ud, sk_buf_failed(b) ? "(out of memory)" : sk_buf_cstr(b));
}

void sk_config_dump(const struct sk_config *c, void (*line)(void *ud, const char *text), void *ud)
{
    struct sk_buf b;
    char tmp[32];
    sk_buf_init(&b);
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        emit(&b, o->key, value_text(c, o, tmp, sizeof tmp), opt_secret(o), line, ud);
        if (o->off == offsetof(struct sk_config, db_password_file))
            emit(&b, "db.password", c->db_password ? "(set)" : "(not set)", false, line, ud);
    }
    /* kafka.* in key order, without allocating: each round prints the
     * smallest key above the previous one (keys are unique). */
    const char *prev = NULL;
    for (size_t round = 0; round < c->n_kafka; round++) {
        const struct sk_kv *next = NULL;
        for (size_t i = 0; i < c->n_kafka; i++) {
            const struct sk_kv *kv = &c->kafka[i];
            if ((!prev || strcmp(kv->key, prev) > 0) && (!next || strcmp(kv->key, next->key) < 0))
                next = kv;
        }
        if (!next)
            break;
        sk_buf_reset(&b);
        sk_buf_printf(&b, "kafka.%s", next->key);
        char *key = strdup(sk_buf_cstr(&b));
        if (key) {
            emit(&b, key, next->value, sk_config_key_is_secret(key), line, ud);
            free(key);
        } else {
            line(ud, "(out of memory)");
        }
        prev = next->key;
    }
    sk_buf_free(&b);
}

static char help_text[16384];
static once_flag help_once = ONCE_FLAG_INIT;

static void build_help(void)
{
    struct sk_buf b;
    char exp[256], def[256];
    sk_buf_init(&b);
    sk_buf_puts(&b,
        "Configuration file (-c FILE) and overrides (-o key=value, applied after the file):\n"
        "  key = value       one setting per line; blanks around key and value are ignored\n"
        "  # comment         only as the first non-blank character of a line; elsewhere\n"
        "                    '#' is part of the value (key = a#b sets \"a#b\")\n"
        "  key = \"  v  \"     a value that starts with '\"' must be one quoted string; it\n"
        "                    keeps blanks; \\\" and \\\\ are its only escapes.  Quotes are\n"
        "                    file syntax: -o values are taken literally\n"
        "  kafka.<property>  any other librdkafka property, passed through\n"
        "  Lines are at most 4096 bytes.  A later setting replaces an earlier one.\n"
        "  Sizes take a suffix k, M or G (1024-based).  [reload] marks settings a\n"
        "  reload (SIGHUP) may change; the others need a restart.\n"
        "\n"
        "Settings:\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        if (o->check == check_topic)
            snprintf(exp, sizeof exp, "Kafka topic name");
        else if (o->type == OT_STR)
            snprintf(exp, sizeof exp, "text");
        else
            expected(o, exp, sizeof exp);
        const char *e = strncmp(exp, "expected ", 9) == 0 ? exp + 9 : exp;
        if (o->type == OT_SIZE && o->def) {
            uint64_t v;
            if (parse_size(o->def, &v))
                fmt_size(v, def, sizeof def);
            else
                snprintf(def, sizeof def, "%s", o->def);
        } else {
            snprintf(def, sizeof def, "%s", o->def ? o->def : "none");
        }
        sk_buf_printf(&b, "  %s%s%s  (%s; default %s)%s\n      %s\n", o->key,
                      o->alias ? ", " : "", o->alias ? o->alias : "", e, def,
                      (o->flags & OF_RELOAD) ? " [reload]" : "", o->help);
    }
    snprintf(help_text, sizeof help_text, "%s",
             sk_buf_failed(&b) ? "(out of memory)\n" : sk_buf_cstr(&b));
    sk_buf_free(&b);
}

const char *sk_config_help(void)
{
    call_once(&help_once, build_help);
    return help_text;
}
