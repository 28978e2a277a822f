/* Unit tests for src/config.c and src/dburl.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static char tmpdir[64];
static char err[1024];

/* ---- helpers ------------------------------------------------------------ */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static int group_setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/sk-test-config-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    unsetenv("CREDENTIALS_DIRECTORY");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write `len` bytes to tmpdir/name; the path goes to out. */
static void write_file(const char *name, const char *data, size_t len, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", tmpdir, name);
    FILE *f = fopen(out, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *name, const char *text, char *out, size_t outlen)
{
    write_file(name, text, strlen(text), out, outlen);
}

static void init(struct sk_config *c)
{
    assert_int_equal(sk_config_init(c), 0);
}

static void set_ok(struct sk_config *c, const char *k, const char *v)
{
    err[0] = '\0';
    int rc = sk_config_set(c, k, v, "-o", err, sizeof err);
    if (rc != 0)
        print_error("set %s=%s failed: %s\n", k, v, err);
    assert_int_equal(rc, 0);
}

static void set_bad(struct sk_config *c, const char *k, const char *v, const char *want)
{
    err[0] = '\0';
    int rc = sk_config_set(c, k, v, "-o", err, sizeof err);
    if (rc != -EINVAL)
        print_error("set %s=%s unexpectedly succeeded\n", k, v);
    assert_int_equal(rc, -EINVAL);
    if (want && !strstr(err, want))
        print_error("error \"%s\" lacks \"%s\"\n", err, want);
    if (want)
        assert_non_null(strstr(err, want));
}

struct capture {
    char text[32768];
    size_t len;
    unsigned lines;
};

static void cap_line(void *ud, const char *text)
{
    struct capture *cap = ud;
    int n = snprintf(cap->text + cap->len, sizeof cap->text - cap->len, "%s\n", text);
    assert_true(n > 0 && (size_t)n < sizeof cap->text - cap->len);
    cap->len += (size_t)n;
    cap->lines++;
}

static void dump(const struct sk_config *c, struct capture *cap)
{
    memset(cap, 0, sizeof *cap);
    sk_config_dump(c, cap_line, cap);
}

/* The dumped line of a key must be exactly want. */
static void assert_dump_has(const struct sk_config *c, const char *want_line)
{
    struct capture cap;
    char needle[512];
    dump(c, &cap);
    snprintf(needle, sizeof needle, "\n%s\n", want_line);
    /* the first line has no leading newline */
    bool found = strstr(cap.text, needle) != NULL ||
                 strncmp(cap.text, needle + 1, strlen(needle + 1)) == 0;
    if (!found)
        print_error("dump lacks line \"%s\":\n%s", want_line, cap.text);
    assert_true(found);
}

/* A config that sk_config_finish() accepts. */
static void minimal(struct sk_config *c)
{
    init(c);
    set_ok(c, "db.url", "mariadb://sk@db.example:3307/scores");
    set_ok(c, "kafka.bootstrap.servers", "k1:9092,k2:9092");
}

/* ---- defaults, help ----------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    struct sk_config c;
    init(&c);
    assert_null(c.db_url);
    assert_null(c.db_password_file);
    assert_null(c.db_password);
    assert_int_equal(c.db_pool_size, 4);
    assert_int_equal(c.db_connect_timeout_ms, 5000);
    assert_int_equal(c.db_query_timeout_ms, 30000);
    assert_int_equal(c.db_retry_min_ms, 100);
    assert_int_equal(c.db_retry_max_ms, 10000);
    assert_null(c.kafka_brokers);
    assert_string_equal(c.group_id, "scorekeeper");
    assert_string_equal(c.topic_users, "game.users");
    assert_string_equal(c.topic_scores, "game.scores");
    assert_string_equal(c.topic_results, "game.results");
    assert_string_equal(c.topic_dead_letter, "game.dead-letter");
    assert_null(c.kafka);
    assert_int_equal(c.n_kafka, 0);
    assert_int_equal(c.batch_max_events, 2000);
    assert_int_equal(c.batch_linger_ms, 5);
    assert_int_equal(c.batch_max_bytes, 1024 * 1024);
    assert_int_equal(c.max_inflight_events, 20000);
    assert_int_equal(c.limits.max_message_bytes, 65536);
    assert_int_equal(c.limits.max_depth, 4);
    assert_int_equal(c.limits.max_event_id_len, 128);
    assert_int_equal(c.limits.max_name_chars, 50);
    assert_int_equal(c.limits.max_game_name_chars, 100);
    assert_int_equal(c.limits.unknown_fields, SK_UNKNOWN_REJECT);
    assert_int_equal(c.log_level, SK_LOG_INFO);
    assert_int_equal(c.shutdown_timeout_ms, 30000);
    assert_int_equal(c.commit_interval_ms, 1000);
#ifdef SK_SQL_DIR
    assert_string_equal(c.sql_dir, SK_SQL_DIR);
#else
    assert_string_equal(c.sql_dir, "sql");
#endif
    sk_config_free(&c);
    sk_config_free(&c); /* idempotent */
}

static const char *const all_keys[] = {
    "db.url", "db.password_file", "db.pool_size", "db.connect_timeout_ms",
    "db.query_timeout_ms", "db.retry_min_ms", "db.retry_max_ms", "db.idle_ping_ms",
    "db.keepalive_ms", "db.slow_transaction_ms", "db.tls", "db.tls_ca", "db.tls_cert", "db.tls_key",
    "db.tls_key_password_file",
    "kafka.bootstrap.servers",
    "kafka.group.id", "topic.users", "topic.scores", "topic.results", "topic.dead_letter",
    "batch.max_events", "batch.linger_ms", "batch.txn_max_events", "batch.max_bytes", "pipeline.max_inflight_events",
    "pipeline.max_inflight_bytes", "pipeline.stall_timeout_ms", "pipeline.known_users",
    "pipeline.known_users_preload", "pipeline.game_marks",
    "limits.max_message_bytes", "limits.max_depth", "limits.max_event_id_len",
    "limits.max_name_chars", "limits.max_game_name_chars", "events.unknown_fields",
    "log.level", "shutdown.timeout_ms",
    "offsets.commit_interval_ms", "metrics.listen", "results.echo_headers", "sql.dir",
};

static void test_help(void **state)
{
    (void)state;
    const char *h = sk_config_help();
    assert_non_null(h);
    assert_ptr_equal(h, sk_config_help());
    for (size_t i = 0; i < sizeof all_keys / sizeof all_keys[0]; i++) {
        char needle[80];
        snprintf(needle, sizeof needle, "  %s", all_keys[i]);
        if (!strstr(h, needle))
            print_error("help lacks %s\n", all_keys[i]);
        assert_non_null(strstr(h, needle));
    }
    assert_non_null(strstr(h, "kafka.brokers"));
    assert_non_null(strstr(h, "db.pool_size  (an integer 1..64; default 4)"));
    assert_non_null(strstr(h, "default 1M)"));
    assert_non_null(strstr(h, "quoted"));
    /* not truncated: ends with the last key's help line */
    size_t n = strlen(h);
    assert_true(n > 100 && h[n - 1] == '\n');
    assert_non_null(strstr(h, "Directory of the SQL migrations"));
}

/* ---- numeric bounds ----------------------------------------------------- */

struct bound {
    const char *key;
    unsigned long long min, max;
};

static const struct bound bounds[] = {
    {"db.pool_size", 1, 64},
    {"db.connect_timeout_ms", 100, 600000},
    {"db.query_timeout_ms", 100, 3600000},
    {"db.retry_min_ms", 1, 60000},
    {"db.retry_max_ms", 10, 600000},
    {"batch.max_events", 1, 100000},
    {"batch.linger_ms", 0, 60000},
    {"batch.max_bytes", 1024, 64ull << 20},
    {"pipeline.max_inflight_events", 1, 10000000},
    {"limits.max_message_bytes", 64, 16ull << 20},
    {"limits.max_depth", 1, 64},
    {"limits.max_event_id_len", 1, 128},
    {"limits.max_name_chars", 1, 50},
    {"limits.max_game_name_chars", 1, 100},
    {"shutdown.timeout_ms", 1000, 600000},
    {"offsets.commit_interval_ms", 100, 60000},
};

static void test_numeric_bounds(void **state)
{
    (void)state;
    struct sk_config c;
    char v[64], line[128];
    init(&c);
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        const struct bound *b = &bounds[i];
        if (b->min > 0) {
            snprintf(v, sizeof v, "%llu", b->min - 1);
            set_bad(&c, b->key, v, b->key);
        }
        snprintf(v, sizeof v, "%llu", b->min);
        set_ok(&c, b->key, v);
        snprintf(line, sizeof line, "%s = %s", b->key, v);
        assert_dump_has(&c, line);
        snprintf(v, sizeof v, "%llu", b->max);
        set_ok(&c, b->key, v);
        snprintf(line, sizeof line, "%s = %s", b->key, v);
        assert_dump_has(&c, line);
        snprintf(v, sizeof v, "%llu", b->max + 1);
        set_bad(&c, b->key, v, "expected");
        set_bad(&c, b->key, "abc", "expected");
        set_bad(&c, b->key, "-1", "expected");
        set_bad(&c, b->key, "+5", "expected");
        set_bad(&c, b->key, "99999999999999999999", "expected");
        set_bad(&c, b->key, "18446744073709551616", "expected");
        set_bad(&c, b->key, "5x", "expected");
        set_bad(&c, b->key, "", "expected");
        set_bad(&c, b->key, " 50", "expected");
        set_bad(&c, b->key, "50 ", "expected");
        set_bad(&c, b->key, "1.5", "expected");
        /* a failed set leaves the value alone */
        assert_dump_has(&c, line);
    }
    sk_config_free(&c);
}

static void test_error_format(void **state)
{
    (void)state;
    struct sk_config c;
    init(&c);
    assert_int_equal(sk_config_set(&c, "db.pool_size", "abc", "-o", err, sizeof err), -EINVAL);
    assert_string_equal(err, "invalid value \"abc\" for \"db.pool_size\" (from -o): "
                             "expected an integer 1..64");
    assert_int_equal(sk_config_set(&c, "db.pool_size", "0", "/etc/x.conf:3", err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "invalid value \"0\" for \"db.pool_size\" (from /etc/x.conf:3): "
                             "expected an integer 1..64");
    assert_int_equal(
        sk_config_set(&c, "batch.max_event", "5", "/etc/x.conf:12", err, sizeof err), -EINVAL);
    assert_string_equal(err, "unknown key \"batch.max_event\" (from /etc/x.conf:12); "
                             "did you mean \"batch.max_events\"?");
    /* a transposition counts as one edit */
    set_bad(&c, "db.pool_szie", "4", "did you mean \"db.pool_size\"?");
    set_bad(&c, "db.pol_sze", "4", "did you mean \"db.pool_size\"?"); /* distance 2 */
    set_bad(&c, "db.pl_sze", "4", "unknown key \"db.pl_sze\" (from -o)");  /* distance 3 */
    assert_null(strstr(err, "did you mean"));
    set_ok(&c, "kafka.brokres", "x"); /* kafka.* is passthrough, never unknown */
    set_bad(&c, "totally.different", "1", "unknown key \"totally.different\"");
    assert_null(strstr(err, "did you mean"));
    /* a long value is cut in messages, control characters replaced */
    char lng[300];
    memset(lng, 'a', sizeof lng - 1);
    lng[sizeof lng - 1] = '\0';
    set_bad(&c, "db.pool_size", lng, "...\" for");
    assert_true(strlen(err) < 200);
    set_bad(&c, "topic.users", "a\nb", "\"a?b\"");
    /* NULL err buffer is fine */
    assert_int_equal(sk_config_set(&c, "db.pool_size", "x", "-o", NULL, 0), -EINVAL);
    sk_config_free(&c);
}

static void test_sizes(void **state)
{
    (void)state;
    struct sk_config c;
    init(&c);
    set_ok(&c, "batch.max_bytes", "1k");
    assert_int_equal(c.batch_max_bytes, 1024);
    set_ok(&c, "batch.max_bytes", "2K");
    assert_int_equal(c.batch_max_bytes, 2048);
    set_ok(&c, "batch.max_bytes", "64M");
    assert_int_equal(c.batch_max_bytes, 64u << 20);
    set_ok(&c, "batch.max_bytes", "3m");
    assert_int_equal(c.batch_max_bytes, 3u << 20);
    set_bad(&c, "batch.max_bytes", "65M", "expected a size in bytes 1k..64M");
    set_bad(&c, "batch.max_bytes", "1G", "expected");
    set_bad(&c, "batch.max_bytes", "1kB", "expected");
    set_bad(&c, "batch.max_bytes", "k", "expected");
    set_bad(&c, "batch.max_bytes", "1x", "expected");
    set_bad(&c, "batch.max_bytes", "18014398509481984k", "expected"); /* overflows */
    assert_int_equal(c.batch_max_bytes, 3u << 20);
    set_ok(&c, "limits.max_message_bytes", "16M");
    assert_int_equal(c.limits.max_message_bytes, 16u << 20);
    set_bad(&c, "limits.max_message_bytes", "16385k", "expected");
    sk_config_free(&c);
}

static void test_enum(void **state)
{
    (void)state;
    struct sk_config c;
    init(&c);
    static const struct {
        const char *name;
        enum sk_log_level lvl;
    } lv[] = {{"err", SK_LOG_ERR},   {"warning", SK_LOG_WARNING}, {"notice", SK_LOG_NOTICE},
              {"info", SK_LOG_INFO}, {"debug", SK_LOG_DEBUG},     {"DEBUG", SK_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof lv / sizeof lv[0]; i++) {
        set_ok(&c, "log.level", lv[i].name);
        assert_int_equal(c.log_level, lv[i].lvl);
    }
    assert_dump_has(&c, "log.level = debug");
    set_bad(&c, "log.level", "verbose",
            "expected one of err, warning, notice, info, debug");
    set_bad(&c, "log.level", "", "expected one of");
    set_bad(&c, "log.level", "3", "expected one of");
    assert_int_equal(c.log_level, SK_LOG_DEBUG);
    assert_dump_has(&c, "events.unknown_fields = reject");
    set_ok(&c, "events.unknown_fields", "Ignore");
    assert_int_equal(c.limits.unknown_fields, SK_UNKNOWN_IGNORE);
    assert_dump_has(&c, "events.unknown_fields = ignore");
    set_bad(&c, "events.unknown_fields", "drop", "expected one of reject, ignore");
    assert_int_equal(c.limits.unknown_fields, SK_UNKNOWN_IGNORE);
    set_ok(&c, "events.unknown_fields", "reject");
    assert_int_equal(c.limits.unknown_fields, SK_UNKNOWN_REJECT);
    sk_config_free(&c);
}

static void test_strings(void **state)
{
    (void)state;
    struct sk_config c;
    init(&c);
    char t249[250], t250[251];
    memset(t249, 'x', 249), t249[249] = '\0';
    memset(t250, 'x', 250), t250[250] = '\0';
    set_ok(&c, "topic.users", t249);
    set_bad(&c, "topic.users", t250, "expected a Kafka topic name");
    set_ok(&c, "topic.users", "Game_1.users-v2");
    assert_string_equal(c.topic_users, "Game_1.users-v2");
    set_bad(&c, "topic.scores", "", "topic name");
    set_bad(&c, "topic.scores", "a/b", "topic name");
    set_bad(&c, "topic.scores", "a b", "topic name");
    set_bad(&c, "topic.scores", ".", "topic name");
    set_bad(&c, "topic.scores", "..", "topic name");
    set_bad(&c, "topic.scores", "caf\xc3\xa9", "topic name");
    set_bad(&c, "kafka.group.id", "", "must not be empty");
    set_bad(&c, "sql.dir", "", "must not be empty");
    set_ok(&c, "sql.dir", "/usr/share/scorekeeper/sql");
    assert_string_equal(c.sql_dir, "/usr/share/scorekeeper/sql");
    set_ok(&c, "kafka.group.id", "g1");
    assert_string_equal(c.group_id, "g1");
    /* alias */
    set_ok(&c, "kafka.brokers", "b:9092");
    assert_string_equal(c.kafka_brokers, "b:9092");
    set_ok(&c, "kafka.bootstrap.servers", "c:9092");
    assert_string_equal(c.kafka_brokers, "c:9092");
    assert_int_equal(c.n_kafka, 0);
    set_ok(&c, "kafka.bootstrap.servers", ""); /* unset again */
    assert_null(c.kafka_brokers);
    set_bad(&c, "", "x", "empty key");
    sk_config_free(&c);
}

/* ---- file parsing ------------------------------------------------------- */

static void test_file_basic(void **state)
{
    (void)state;
    struct sk_config c;
    char path[PATH_MAX];
    write_text("basic.conf",
               "\xef\xbb\xbf# scorekeeper\n"
               "\n"
               "   # indented comment\n"
               "db.pool_size=8\n"
               "  db.url   =   mariadb://sk@h/db   \n"
               "kafka.group.id = a#b\n"
               "topic.users = \"game.u\"\n"
               "kafka.client.id = \"  spaced \\\"q\\\" \\\\ # \"\r\n"
               "kafka.x = \n"
               "kafka.y=\"\"\n"
               "\t\n"
               "log.level = debug", /* no final newline */
               path, sizeof path);
    init(&c);
    int rc = sk_config_load_file(&c, path, err, sizeof err);
    if (rc)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(c.db_pool_size, 8);
    assert_string_equal(c.db_url, "mariadb://sk@h/db");
    assert_string_equal(c.group_id, "a#b");
    assert_string_equal(c.topic_users, "game.u");
    assert_int_equal(c.log_level, SK_LOG_DEBUG);
    assert_int_equal(c.n_kafka, 3);
    assert_string_equal(c.kafka[0].key, "client.id");
    assert_string_equal(c.kafka[0].value, "  spaced \"q\" \\ # ");
    assert_string_equal(c.kafka[1].value, "");
    assert_string_equal(c.kafka[2].value, "");
    char origin[PATH_MAX + 8];
    snprintf(origin, sizeof origin, "%s:8", path);
    assert_string_equal(c.kafka[0].origin, origin);
    /* the dump quotes what needs quoting, so it reads back the same */
    assert_dump_has(&c, "kafka.client.id = \"  spaced \\\"q\\\" \\\\ # \"");
    sk_config_free(&c);

    /* an empty file is fine */
    write_text("empty.conf", "", path, sizeof path);
    init(&c);
    assert_int_equal(sk_config_load_file(&c, path, err, sizeof err), 0);
    sk_config_free(&c);
}

static void load_bad(const char *name, const char *text, const char *want1, const char *want2)
{
    struct sk_config c;
    char path[PATH_MAX];
    write_text(name, text, path, sizeof path);
    init(&c);
    err[0] = '\0';
    assert_int_equal(sk_config_load_file(&c, path, err, sizeof err), -EINVAL);
    if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
        print_error("error \"%s\" lacks \"%s\" / \"%s\"\n", err, want1, want2 ? want2 : "");
    assert_non_null(strstr(err, want1));
    if (want2)
        assert_non_null(strstr(err, want2));
    assert_non_null(strstr(err, path));
    sk_config_free(&c);
}

static void test_file_errors(void **state)
{
    (void)state;
    load_bad("noeq.conf", "db.pool_size = 4\n\njust some words hunter2\n", ":3: expected", NULL);
    assert_null(strstr(err, "hunter2")); /* the line is not quoted back */
    load_bad("nokey.conf", " = 4\n", ":1: missing key", NULL);
    load_bad("unknown.conf", "# c\n\n\n\n\n\n\n\n\n\n\nbatch.max_event = 5\n",
             "unknown key \"batch.max_event\" (from ", ":12); did you mean \"batch.max_events\"?");
    load_bad("badval.conf", "db.pool_size = 0\n", "invalid value \"0\" for \"db.pool_size\"",
             ":1): expected an integer 1..64");
    load_bad("unterminated.conf", "kafka.x = \"abc\n", ":1: unterminated quoted value", NULL);
    load_bad("afterquote.conf", "kafka.x = \"abc\" def\n", ":1: text after the closing quote",
             NULL);
    load_bad("escape.conf", "kafka.x = \"a\\nb\"\n", ":1: invalid escape", NULL);

    struct sk_config c;
    char path[PATH_MAX];
    /* NUL byte */
    static const char nul_text[] = "kafka.a = 1\nkafka.x = a\0b\n";
    write_file("nul.conf", nul_text, sizeof nul_text - 1, path, sizeof path);
    init(&c);
    assert_int_equal(sk_config_load_file(&c, path, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":2: NUL byte"));
    sk_config_free(&c);

    /* line length: 4096 bytes fit, 4097 do not */
    char *big = malloc(5000);
    assert_non_null(big);
    const char *prefix = "kafka.client.id = ";
    size_t pl = strlen(prefix);
    memcpy(big, prefix, pl);
    memset(big + pl, 'v', 4096 - pl);
    big[4096] = '\n';
    big[4097] = '\0';
    write_text("line4096.conf", big, path, sizeof path);
    init(&c);
    assert_int_equal(sk_config_load_file(&c, path, err, sizeof err), 0);
    assert_int_equal(strlen(c.kafka[0].value), 4096 - pl);
    sk_config_free(&c);
    memcpy(big, "db.pool_size = 4\n", 17);
    memcpy(big + 17, prefix, pl);
    memset(big + 17 + pl, 'v', 4097 - pl);
    big[17 + 4097] = '\n';
    big[17 + 4098] = '\0';
    write_text("line4097.conf", big, path, sizeof path);
    init(&c);
    assert_int_equal(sk_config_load_file(&c, path, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":2: line longer than 4096 bytes"));
    sk_config_free(&c);
    free(big);

    /* missing file, directory */
    init(&c);
    snprintf(path, sizeof path, "%s/does-not-exist.conf", tmpdir);
    assert_int_equal(sk_config_load_file(&c, path, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, strerror(ENOENT)));
    assert_int_equal(sk_config_load_file(&c, tmpdir, err, sizeof err), -EISDIR);
    assert_non_null(strstr(err, tmpdir));
    assert_non_null(strstr(err, strerror(EISDIR)));
    sk_config_free(&c);
}

static void test_override_precedence(void **state)
{
    (void)state;
    struct sk_config c;
    char path[PATH_MAX];
    write_text("prec.conf",
               "db.pool_size = 8\n"
               "db.pool_size = 9\n" /* later line wins */
               "kafka.acks = all\n",
               path, sizeof path);
    init(&c);
    set_ok(&c, "batch.max_events", "7"); /* -o before the file: the file wins */
    assert_int_equal(sk_config_load_file(&c, path, err, sizeof err), 0);
    assert_int_equal(c.db_pool_size, 9);
    assert_int_equal(c.batch_max_events, 7);
    set_ok(&c, "db.pool_size", "16"); /* -o after the file */
    assert_int_equal(c.db_pool_size, 16);
    set_ok(&c, "kafka.acks", "1");
    assert_int_equal(c.n_kafka, 1);
    assert_string_equal(c.kafka[0].value, "1");
    assert_string_equal(c.kafka[0].origin, "-o");
    sk_config_free(&c);
}

/* ---- db.url ------------------------------------------------------------- */

static void test_dburl_ok(void **state)
{
    (void)state;
    struct sk_dburl u;
    assert_int_equal(sk_dburl_parse("mariadb://sk@db.example:3307/scores", &u, err, sizeof err),
                     0);
    assert_string_equal(u.user, "sk");
    assert_string_equal(u.host, "db.example");
    assert_int_equal(u.port, 3307);
    assert_null(u.socket);
    assert_string_equal(u.dbname, "scores");
    sk_dburl_free(&u);

    assert_int_equal(sk_dburl_parse("mysql://sk@localhost/sk_1$", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 3306);
    assert_string_equal(u.dbname, "sk_1$");
    sk_dburl_free(&u);

    assert_int_equal(sk_dburl_parse("mariadb://sk@[::1]:3307/db", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 3307);
    sk_dburl_free(&u);

    assert_int_equal(sk_dburl_parse("mariadb://sk@[fe80::1:2]/db", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "fe80::1:2");
    assert_int_equal(u.port, 3306);
    sk_dburl_free(&u);

    assert_int_equal(sk_dburl_parse("mariadb://sk@localhost/db?socket=/run/mysqld/mysqld.sock",
                                    &u, err, sizeof err),
                     0);
    assert_null(u.host);
    assert_string_equal(u.socket, "/run/mysqld/mysqld.sock");
    assert_string_equal(u.dbname, "db");
    sk_dburl_free(&u);

    assert_int_equal(sk_dburl_parse("mariadb://sk@/db?socket=%2Frun%2Fa.sock", &u, err,
                                    sizeof err),
                     0);
    assert_string_equal(u.socket, "/run/a.sock");
    sk_dburl_free(&u);

    /* percent-decoding of user and dbname */
    assert_int_equal(sk_dburl_parse("MariaDB://us%40er%20x@h:1/d%62", &u, err, sizeof err), 0);
    assert_string_equal(u.user, "us@er x");
    assert_int_equal(u.port, 1);
    assert_string_equal(u.dbname, "db");
    sk_dburl_free(&u);

    assert_int_equal(sk_dburl_parse("mariadb://sk@h:65535/db", &u, err, sizeof err), 0);
    assert_int_equal(u.port, 65535);
    sk_dburl_free(&u);
    sk_dburl_free(&u); /* idempotent */
}

static void url_bad(const char *url, const char *want)
{
    struct sk_dburl u;
    memset(&u, 0x5a, sizeof u);
    err[0] = '\0';
    int rc = sk_dburl_parse(url, &u, err, sizeof err);
    if (rc != -EINVAL || !strstr(err, want))
        print_error("url %s: rc %d, error \"%s\", wanted \"%s\"\n", url, rc, err, want);
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(err, want));
    assert_null(u.user); /* zeroed on failure */
    assert_null(u.dbname);
}

static void test_dburl_bad(void **state)
{
    (void)state;
    url_bad("", "empty URL");
    url_bad("sk@h/db", "missing scheme");
    url_bad("postgres://sk@h/db", "unsupported scheme");
    url_bad("http://sk@h/db", "unsupported scheme");
    url_bad("mariadb://h/db", "missing user");
    url_bad("mariadb://@h/db", "empty user");
    url_bad("mariadb://sk@h", "missing /dbname");
    url_bad("mariadb://sk@h/", "missing database name");
    url_bad("mariadb://sk@h:0/db", "invalid port");
    url_bad("mariadb://sk@h:65536/db", "invalid port");
    url_bad("mariadb://sk@h:abc/db", "invalid port");
    url_bad("mariadb://sk@h:/db", "invalid port");
    url_bad("mariadb://sk@h:-1/db", "invalid port");
    url_bad("mariadb://sk@h:999999/db", "invalid port");
    url_bad("mariadb://sk@/db", "missing host");
    url_bad("mariadb://sk@h/d-b", "invalid database name");
    url_bad("mariadb://sk@h/d%2fb", "invalid database name");
    url_bad("mariadb://sk@h/a/b", "invalid database name");
    char name65[100] = "mariadb://sk@h/";
    memset(name65 + strlen(name65), 'd', 65);
    url_bad(name65, "invalid database name");
    url_bad("mariadb://sk@h/db?socket=run/mysqld.sock", "absolute path");
    url_bad("mariadb://sk@h/db?socket=/run/mysqld.sock", "requires the host \"localhost\"");
    url_bad("mariadb://sk@localhost:3306/db?socket=/run/m.sock", "port");
    url_bad("mariadb://sk@h/db?ssl=1", "unsupported URL parameter");
    url_bad("mariadb://sk@[::1/db", "unterminated [");
    url_bad("mariadb://sk@[zz]/db", "IPv6");
    url_bad("mariadb://sk@[::1]x/db", "after the IPv6");
    url_bad("mariadb://sk@h!/db", "invalid host");
    url_bad("mariadb://s%zzk@h/db", "percent-encoding");
    url_bad("mariadb://s%0ak@h/db", "percent-encoding");
    url_bad("mariadb://s%4@h/db", "percent-encoding");
    url_bad("mariadb://sk@h/db x", "blanks");

    /* a password is refused and never echoed, wherever it hides */
    static const char *const pw_urls[] = {
        "mariadb://sk:Hunter2pw@h/db",
        "mariadb://sk:Hunter2pw@h:3306/db",
        "mariadb://sk:Hunter2pw@Hunter2pw@h/db",
        "mariadb://sk:Hunter2pw/x@h/db",
        "mysql://sk:Hunter2pw@localhost/db?socket=/x.sock",
    };
    for (size_t i = 0; i < sizeof pw_urls / sizeof pw_urls[0]; i++) {
        url_bad(pw_urls[i], "password");
        assert_non_null(strstr(err, "db.password_file"));
        assert_null(strstr(err, "Hunter2pw"));
    }
    /* a password without user@ is not echoed either */
    url_bad("mariadb://Hunter2pw:Hunter2pw/db", "missing user");
    assert_null(strstr(err, "Hunter2pw"));

    /* through sk_config_set: origin named, value not echoed */
    struct sk_config c;
    init(&c);
    set_bad(&c, "db.url", "mariadb://sk:Hunter2pw@h/db",
            "invalid value for \"db.url\" (from -o): the URL contains a password");
    assert_null(strstr(err, "Hunter2pw"));
    assert_null(c.db_url);
    sk_config_free(&c);
}

/* ---- finish, password --------------------------------------------------- */

/* want_rc: -EINVAL for refused settings, the errno of a password file
 * that cannot be opened */
static void finish_bad(struct sk_config *c, int want_rc, const char *want)
{
    err[0] = '\0';
    int rc = sk_config_finish(c, err, sizeof err);
    if (rc != want_rc || !strstr(err, want))
        print_error("finish: rc %d, error \"%s\", wanted \"%s\"\n", rc, err, want);
    assert_int_equal(rc, want_rc);
    assert_non_null(strstr(err, want));
}

static void test_finish_checks(void **state)
{
    (void)state;
    struct sk_config c;
    init(&c);
    finish_bad(&c, -EINVAL, "missing required setting \"db.url\"");
    set_ok(&c, "db.url", "mariadb://sk@h/db");
    /* migrate and reset-marks need no Kafka: only the daemon and
     * --check-config ask for the brokers */
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    err[0] = '\0';
    assert_int_equal(sk_config_require_kafka(&c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "missing required setting \"kafka.bootstrap.servers\""));
    set_ok(&c, "kafka.brokers", "k:9092");
    assert_int_equal(sk_config_require_kafka(&c, err, sizeof err), 0);
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    assert_string_equal(c.db.host, "h");
    assert_string_equal(c.db.dbname, "db");
    assert_null(c.db_password);

    set_ok(&c, "db.retry_min_ms", "5000");
    set_ok(&c, "db.retry_max_ms", "1000");
    finish_bad(&c, -EINVAL, "\"db.retry_min_ms\" (5000) exceeds \"db.retry_max_ms\" (1000)");
    set_ok(&c, "db.retry_max_ms", "5000");
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);

    set_ok(&c, "topic.dead_letter", "game.scores");
    finish_bad(&c, -EINVAL, "\"topic.scores\" and \"topic.dead_letter\" name the same topic");
    set_ok(&c, "topic.dead_letter", "dlq");
    set_ok(&c, "topic.results", "game.users");
    finish_bad(&c, -EINVAL, "\"topic.users\" and \"topic.results\"");
    set_ok(&c, "topic.results", "res");
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0); /* repeatable, no leak */

    set_bad(&c, "db.password", "Hunter2pw", "db.password_file");
    assert_null(strstr(err, "Hunter2pw"));
    sk_config_free(&c);
}

/* db.tls and its files: the checks between them that need no certificate
 * (test 38 covers the files themselves against a real server). */
static void test_tls_settings(void **state)
{
    (void)state;
    struct sk_config c;
    char path[PATH_MAX], cred[PATH_MAX + 16];
    minimal(&c);
    assert_int_equal(c.db_tls, SK_DB_TLS_OFF);
    set_ok(&c, "db.tls", "on");
    assert_int_equal(c.db_tls, SK_DB_TLS_VERIFY_FULL);
    assert_dump_has(&c, "db.tls = verify-full");
    set_ok(&c, "db.tls", "VERIFY-CA");
    assert_int_equal(c.db_tls, SK_DB_TLS_VERIFY_CA);
    set_bad(&c, "db.tls", "yes", "expected one of off, required, verify-ca, verify-full, on");
    set_bad(&c, "db.tls_ca", "ca.pem", "expected an absolute path");
    set_bad(&c, "db.tls_key", "-----BEGIN PRIVATE KEY-----", "expected an absolute path");

    /* A TLS file with TLS off is refused, never silently unencrypted. */
    set_ok(&c, "db.tls", "off");
    set_ok(&c, "db.tls_ca", "/nonexistent/ca.pem");
    finish_bad(&c, -EINVAL, "\"db.tls_ca\" is set but \"db.tls\" is off");
    set_ok(&c, "db.tls", "required");
    finish_bad(&c, -EINVAL, "\"db.tls = required\" checks no certificate");
    set_ok(&c, "db.tls", "verify-full");
    finish_bad(&c, -EINVAL, "\"db.tls_ca\": cannot open /nonexistent/ca.pem");
    set_ok(&c, "db.tls_ca", "");
    set_ok(&c, "db.tls_cert", "/nonexistent/client.pem");
    finish_bad(&c, -EINVAL, "db.tls_cert is set but db.tls_key is not");
    set_ok(&c, "db.tls_cert", "");

    /* The key's passphrase is a secret: masked, read from its file. */
    assert_true(sk_config_key_is_secret("db.tls_key_password_file"));
    assert_false(sk_config_key_is_secret("db.tls_key"));
    write_text("tls.pass", "S3cretPassphrase\n", path, sizeof path);
    set_ok(&c, "db.tls_key_password_file", path);
    assert_dump_has(&c, "db.tls_key_password_file = ********");
    finish_bad(&c, -EINVAL, "a passphrase for the TLS key is given");
    assert_null(strstr(err, "S3cretPassphrase"));
    set_ok(&c, "db.tls_key_password_file", "");

    /* The credentials stand in for unset files. */
    snprintf(cred, sizeof cred, "%s/tlscreds", tmpdir);
    assert_int_equal(mkdir(cred, 0700), 0);
    setenv("CREDENTIALS_DIRECTORY", cred, 1);
    write_text("tlscreds/db.tls_key", "not a key", path, sizeof path);
    finish_bad(&c, -EINVAL, "db.tls_key is set but db.tls_cert is not");
    unsetenv("CREDENTIALS_DIRECTORY");

    /* TLS over a unix socket is refused. */
    set_ok(&c, "db.url", "mariadb://root@localhost/db?socket=/run/mysqld/mysqld.sock");
    finish_bad(&c, -EINVAL, "\"db.tls\" needs a host in \"db.url\"");
    set_ok(&c, "db.tls", "off");
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    assert_null(c.tls_cert_path);

    /* A reload may not change it. */
    assert_false(sk_config_key_is_reloadable("db.tls"));
    assert_false(sk_config_key_is_reloadable("db.tls_ca"));
    sk_config_free(&c);
}

static void test_password_file(void **state)
{
    (void)state;
    struct sk_config c;
    char path[PATH_MAX];

    minimal(&c);
    snprintf(path, sizeof path, "%s/no-such-password", tmpdir);
    set_ok(&c, "db.password_file", path);
    finish_bad(&c, -ENOENT, path);
    assert_non_null(strstr(err, strerror(ENOENT)));

    write_text("pw-empty", "", path, sizeof path);
    set_ok(&c, "db.password_file", path);
    finish_bad(&c, -EINVAL, "is empty");
    write_text("pw-nl", "\n", path, sizeof path);
    set_ok(&c, "db.password_file", path);
    finish_bad(&c, -EINVAL, "is empty");

    write_text("pw-ok", "s3cr3t-Pw\n", path, sizeof path);
    set_ok(&c, "db.password_file", path);
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    assert_string_equal(c.db_password, "s3cr3t-Pw");

    write_text("pw-nonl", " spaced pw ", path, sizeof path);
    set_ok(&c, "db.password_file", path);
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    assert_string_equal(c.db_password, " spaced pw ");

    write_text("pw-crlf", "pw\r\n", path, sizeof path);
    set_ok(&c, "db.password_file", path);
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    assert_string_equal(c.db_password, "pw");

    write_text("pw-2nl", "pw\n\n", path, sizeof path); /* only one newline is stripped */
    set_ok(&c, "db.password_file", path);
    finish_bad(&c, -EINVAL, "more than one line");

    /* 4096 bytes are fine, 4097 are not; contents never in the message */
    char big[4098];
    memset(big, 'Q', sizeof big);
    write_file("pw-4096", big, 4096, path, sizeof path);
    set_ok(&c, "db.password_file", path);
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    assert_int_equal(strlen(c.db_password), 4096);
    write_file("pw-4097", big, 4097, path, sizeof path);
    set_ok(&c, "db.password_file", path);
    finish_bad(&c, -EINVAL, "larger than 4096 bytes");
    assert_non_null(strstr(err, path));
    assert_null(strstr(err, "QQQQ"));
    assert_null(c.db_password);

    write_text("pw-secret", "TopSecretValue", path, sizeof path);
    chmod(path, 0);
    set_ok(&c, "db.password_file", path);
    if (geteuid() != 0) { /* root reads anything */
        finish_bad(&c, -EACCES, strerror(EACCES));
        assert_non_null(strstr(err, path));
        assert_null(strstr(err, "TopSecretValue"));
    }
    set_ok(&c, "db.password_file", tmpdir);
    finish_bad(&c, -EINVAL, "not a regular file");
    sk_config_free(&c);
}

static void test_credentials_directory(void **state)
{
    (void)state;
    struct sk_config c;
    char dir[PATH_MAX], path[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/creds", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);

    minimal(&c);
    /* the directory without the file: no password, no error */
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    assert_null(c.db_password);

    write_text("creds/db.password", "from-credential\n", path, sizeof path);
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    assert_string_equal(c.db_password, "from-credential");

    /* db.password_file wins */
    write_text("pw-explicit", "explicit", path, sizeof path);
    set_ok(&c, "db.password_file", path);
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    assert_string_equal(c.db_password, "explicit");

    /* an empty credential file is an error */
    set_ok(&c, "db.password_file", "");
    write_text("creds/db.password", "", path, sizeof path);
    finish_bad(&c, -EINVAL, "creds/db.password is empty");

    unsetenv("CREDENTIALS_DIRECTORY");
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    assert_null(c.db_password);
    sk_config_free(&c);
}

/* ---- secrets, dump, kafka ----------------------------------------------- */

static void test_secret_keys(void **state)
{
    (void)state;
    assert_true(sk_config_key_is_secret("db.password"));
    assert_true(sk_config_key_is_secret("db.password_file"));
    assert_true(sk_config_key_is_secret("kafka.sasl.password"));
    assert_true(sk_config_key_is_secret("kafka.ssl.key.password"));
    assert_true(sk_config_key_is_secret("kafka.ssl.keystore.password"));
    assert_true(sk_config_key_is_secret("kafka.SASL.PASSWORD"));
    assert_true(sk_config_key_is_secret("kafka.sasl.oauthbearer.client.secret"));
    assert_true(sk_config_key_is_secret("kafka.sasl.oauthbearer.config"));
    assert_true(sk_config_key_is_secret("kafka.ssl.key.pem"));
    assert_true(sk_config_key_is_secret("kafka.ssl_key"));
    assert_false(sk_config_key_is_secret("kafka.sasl.username"));
    assert_false(sk_config_key_is_secret("kafka.ssl.key.location"));
    assert_false(sk_config_key_is_secret("kafka.bootstrap.servers"));
    assert_false(sk_config_key_is_secret("db.url"));
    assert_false(sk_config_key_is_secret("db.pool_size"));
    assert_false(sk_config_key_is_secret(NULL));
}

static void test_kafka_passthrough_and_dump(void **state)
{
    (void)state;
    struct sk_config c;
    struct capture cap;
    char path[PATH_MAX];
    char kpath[PATH_MAX], opath[PATH_MAX];
    minimal(&c);
    write_text("sasl-one", "PwSecretOne\n", kpath, sizeof kpath);
    set_ok(&c, "kafka.sasl.password_file", kpath);
    set_ok(&c, "kafka.sasl.username", "alice");
    set_ok(&c, "kafka.acks", "all");
    write_text("sasl-two", "PwSecretTwo\n", kpath, sizeof kpath);
    set_ok(&c, "kafka.sasl.password_file", kpath); /* replaces */
    write_text("oauth", "OauthSecret", opath, sizeof opath);
    set_ok(&c, "kafka.sasl.oauthbearer.client.secret_file", opath);
    assert_int_equal(c.n_kafka, 4);
    assert_string_equal(c.kafka[0].key, "sasl.password_file");
    assert_string_equal(c.kafka[0].value, kpath);

    set_bad(&c, "kafka.", "x", "invalid key");
    set_bad(&c, "kafka.a b", "x", "invalid key");
    set_bad(&c, "kafka.sasl.password_file", "PwPathBad\x01", "control characters");
    assert_null(strstr(err, "PwPathBad"));
    assert_non_null(strstr(err, "\"********\""));
    assert_string_equal(c.kafka[0].value, kpath);

    write_text("pw-dump", "DbSecretPw\n", path, sizeof path);
    set_ok(&c, "db.password_file", path);
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    assert_int_equal(c.n_kafka, 6); /* the two secrets read from their files */

    dump(&c, &cap);
    for (size_t i = 0; i < sizeof all_keys / sizeof all_keys[0]; i++) {
        char needle[80];
        snprintf(needle, sizeof needle, "%s = ", all_keys[i]);
        assert_non_null(strstr(cap.text, needle));
    }
    assert_int_equal(cap.lines, sizeof all_keys / sizeof all_keys[0] + 1 + 6);
    assert_null(strstr(cap.text, "PwSecret"));
    assert_null(strstr(cap.text, kpath));
    assert_null(strstr(cap.text, "OauthSecret"));
    assert_null(strstr(cap.text, "DbSecretPw"));
    assert_null(strstr(cap.text, path)); /* db.password_file counts as secret */
    assert_non_null(strstr(cap.text, "db.password = (set)\n"));
    assert_non_null(strstr(cap.text, "db.password_file = ********\n"));
    assert_non_null(strstr(cap.text, "kafka.sasl.password = ********\n"));
    assert_non_null(strstr(cap.text, "kafka.sasl.username = alice\n"));
    assert_non_null(strstr(cap.text, "db.url = mariadb://sk@db.example:3307/scores\n"));
    assert_non_null(strstr(cap.text, "kafka.bootstrap.servers = k1:9092,k2:9092\n"));
    assert_non_null(strstr(cap.text, "batch.max_bytes = 1048576\n"));
    /* table order first (db.url first), then kafka.* sorted */
    assert_int_equal(strncmp(cap.text, "db.url = ", 9), 0);
    const char *acks = strstr(cap.text, "kafka.acks = all");
    const char *oauth = strstr(cap.text, "kafka.sasl.oauthbearer.client.secret = ********");
    const char *pw = strstr(cap.text, "kafka.sasl.password = ");
    const char *user = strstr(cap.text, "kafka.sasl.username = ");
    const char *pwf = strstr(cap.text, "kafka.sasl.password_file = ********");
    const char *sql = strstr(cap.text, "sql.dir = ");
    assert_true(sql && acks && oauth && pw && user && pwf);
    assert_true(sql < acks && acks < oauth && oauth < pw && pw < pwf && pwf < user);
    sk_config_free(&c);

    init(&c);
    assert_dump_has(&c, "db.password = (not set)");
    assert_dump_has(&c, "db.url = \"\"");
    sk_config_free(&c);
}

/* ---- secrets never inline, kafka secrets from files ---------------------- */

static void test_secrets_refused(void **state)
{
    (void)state;
    static const char *const keys[] = {
        "kafka.sasl.password", "kafka.ssl.key.password", "kafka.ssl.keystore.password",
        "kafka.sasl.oauthbearer.client.secret", "kafka.consumer.sasl.password",
        "kafka.producer.SASL.PASSWORD",
    };
    struct sk_config c;
    minimal(&c);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char want[128];
        set_bad(&c, keys[i], "InlineSecret9", "refused: a secret is never taken from the "
                                              "command line or the configuration file");
        assert_null(strstr(err, "InlineSecret9"));
        snprintf(want, sizeof want, "\"%s_file\"", keys[i]);
        assert_non_null(strstr(err, want));
        snprintf(want, sizeof want, "systemd credential \"%s\"", keys[i]);
        assert_non_null(strstr(err, want));
    }
    set_bad(&c, "db.password", "InlineSecret9", "\"db.password_file\"");
    assert_non_null(strstr(err, "systemd credential \"db.password\""));
    assert_null(strstr(err, "InlineSecret9"));
    set_bad(&c, "kafka.ssl.key.pem", "-----BEGIN PRIVATE KEY-----", "kafka.ssl.key.location");
    assert_null(strstr(err, "BEGIN"));
    /* only a secret is read from a file */
    set_bad(&c, "kafka.acks_file", "/x", "only a secret");
    assert_int_equal(c.n_kafka, 0);
    sk_config_free(&c);

    /* in the configuration file too, named with file:line */
    load_bad("inline-secret.conf", "# c\nkafka.sasl.password = InlineSecret9\n",
             ".conf:2", "\"kafka.sasl.password_file\"");
    assert_null(strstr(err, "InlineSecret9"));
}

static void test_kafka_secret_files(void **state)
{
    (void)state;
    struct sk_config c;
    struct capture cap;
    char dir[PATH_MAX], path[PATH_MAX], kpath[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/kcreds", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);

    /* kafka.<secret>_file */
    minimal(&c);
    write_text("ksasl", "FileSecret1\n", kpath, sizeof kpath);
    set_ok(&c, "kafka.sasl.password_file", kpath);
    write_text("kkey", "KeyPassSecret", path, sizeof path);
    set_ok(&c, "kafka.producer.ssl.key.password_file", path);
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    assert_int_equal(c.n_kafka, 4); /* the two _file settings, the two secrets read */
    assert_string_equal(c.kafka[2].key, "sasl.password");
    assert_string_equal(c.kafka[2].value, "FileSecret1");
    assert_string_equal(c.kafka[2].origin, kpath);
    assert_string_equal(c.kafka[3].key, "producer.ssl.key.password");
    assert_string_equal(c.kafka[3].value, "KeyPassSecret");
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0); /* repeatable */
    assert_int_equal(c.n_kafka, 4);
    dump(&c, &cap);
    assert_non_null(strstr(cap.text, "kafka.sasl.password = ********\n"));
    assert_non_null(strstr(cap.text, "kafka.producer.ssl.key.password = ********\n"));
    assert_null(strstr(cap.text, "FileSecret1"));
    assert_null(strstr(cap.text, "KeyPassSecret"));

    /* the credential kafka.<secret>, when no _file names one */
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    write_text("kcreds/kafka.sasl.password", "CredSecret2\n", path, sizeof path);
    write_text("kcreds/kafka.ssl.keystore.password", "StoreSecret3", path, sizeof path);
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    assert_string_equal(c.kafka[2].value, "FileSecret1"); /* the _file wins */
    set_ok(&c, "kafka.sasl.password_file", ""); /* unset again */
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    dump(&c, &cap);
    assert_null(strstr(cap.text, "CredSecret2"));
    assert_null(strstr(cap.text, "StoreSecret3"));
    assert_non_null(strstr(cap.text, "kafka.ssl.keystore.password = ********\n"));
    bool cred = false, store = false;
    for (size_t i = 0; i < c.n_kafka; i++) {
        cred |= !strcmp(c.kafka[i].key, "sasl.password") &&
                !strcmp(c.kafka[i].value, "CredSecret2") && strstr(c.kafka[i].origin, "kcreds/");
        store |= !strcmp(c.kafka[i].key, "ssl.keystore.password") &&
                 !strcmp(c.kafka[i].value, "StoreSecret3");
    }
    assert_true(cred && store);

    /* a missing or empty secret file is an error naming the file */
    set_ok(&c, "kafka.sasl.password_file", "/nonexistent/sasl");
    finish_bad(&c, -ENOENT, "/nonexistent/sasl");
    write_text("kcreds/kafka.sasl.password", "", path, sizeof path);
    set_ok(&c, "kafka.sasl.password_file", "");
    finish_bad(&c, -EINVAL, "kafka.sasl.password is empty");
    unsetenv("CREDENTIALS_DIRECTORY");
    sk_config_free(&c);
}

/* ---- guarded passthrough ------------------------------------------------- */

static void test_kafka_guards(void **state)
{
    (void)state;
    static const struct {
        const char *key, *bad, *promise, *ok;
    } g[] = {
        {"kafka.enable.auto.commit", "true", "offsets are committed by scorekeeper only after "
         "each event's result is delivered", "false"},
        {"kafka.auto.commit.enable", "true", "auto-commit would commit events not yet", "false"},
        {"kafka.consumer.enable.auto.offset.store", "true", "stored by scorekeeper only once",
         "false"},
        {"kafka.enable.idempotence", "false", "without idempotence a retried send", "true"},
        {"kafka.producer.enable.idempotence", "0", "without idempotence", "1"},
        {"kafka.isolation.level", "read_uncommitted", "only committed input events are applied",
         "read_committed"},
        {"kafka.auto.offset.reset", "latest", "a partition without a committed offset is read "
         "from its beginning", "earliest"},
        {"kafka.log.queue", "false", "written from the event loop", "true"},
        {"kafka.delivery.report.only.error", "true", "reporting only failures", "false"},
        {"kafka.queuing.strategy", "lifo", "in order per key", "fifo"},
        {"kafka.offset.store.method", "file", "committed to the consumer group", "broker"},
        {"kafka.transactional.id", "t1", "outside Kafka transactions", NULL},
        {"kafka.consumer.group.id", "g2", "set by kafka.group.id", NULL},
        {"kafka.producer.bootstrap.servers", "b:1", "kafka.bootstrap.servers", NULL},
        {"kafka.metadata.broker.list", "b:1", "kafka.bootstrap.servers", NULL},
    };
    struct sk_config c;
    minimal(&c);
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        char want[256];
        snprintf(want, sizeof want, "\"%s\" = \"%s\" (from -o): refused: ", g[i].key, g[i].bad);
        set_bad(&c, g[i].key, g[i].bad, want);
        if (!strstr(err, g[i].promise))
            print_error("\"%s\" lacks \"%s\"\n", err, g[i].promise);
        assert_non_null(strstr(err, g[i].promise));
        if (g[i].ok)
            set_ok(&c, g[i].key, g[i].ok); /* the value scorekeeper sets anyway */
    }
    set_ok(&c, "kafka.enable.auto.commit", "FALSE");
    set_ok(&c, "kafka.statistics.interval.ms", "1000"); /* not guarded */
    sk_config_free(&c);
    load_bad("guard.conf", "kafka.enable.auto.commit = true\n", ".conf:1",
             "refused: offsets are committed by scorekeeper");
}

static void test_kafka_client(void **state)
{
    (void)state;
    const char *p;
    assert_int_equal(sk_config_kafka_client("linger.ms", &p), SK_KAFKA_BOTH);
    assert_string_equal(p, "linger.ms");
    assert_int_equal(sk_config_kafka_client("consumer.fetch.wait.max.ms", &p), SK_KAFKA_CONSUMER);
    assert_string_equal(p, "fetch.wait.max.ms");
    assert_int_equal(sk_config_kafka_client("producer.linger.ms", &p), SK_KAFKA_PRODUCER);
    assert_string_equal(p, "linger.ms");
    assert_int_equal(sk_config_kafka_client("sasl.password_file", &p), SK_KAFKA_NONE);
    assert_int_equal(sk_config_kafka_client("consumer.", &p), SK_KAFKA_BOTH);

    struct sockaddr_in sa;
    char why[128];
    assert_int_equal(sk_config_parse_listen("off", &sa, why, sizeof why), 0);
    assert_int_equal(sk_config_parse_listen("127.0.0.1:9464", &sa, why, sizeof why), 1);
    assert_int_equal(ntohs(sa.sin_port), 9464);
    assert_int_equal(ntohl(sa.sin_addr.s_addr), 0x7f000001);
    assert_int_equal(sk_config_parse_listen("0.0.0.0:0", &sa, why, sizeof why), 1);
    static const char *const bad[] = {"localhost:9464", "127.0.0.1", "127.0.0.1:", ":9464",
                                      "127.0.0.1:65536", "127.0.0.1:+5", "127.0.0.1: 5",
                                      "[::1]:9464", "127.0.0.1:99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sk_config_parse_listen(bad[i], &sa, why, sizeof why), -EINVAL);
}

static void test_metrics_listen(void **state)
{
    (void)state;
    struct sk_config c;
    init(&c);
    set_ok(&c, "metrics.listen", "off");
    set_ok(&c, "metrics.listen", "10.1.2.3:9100");
    set_bad(&c, "metrics.listen", "localhost:9464",
            "invalid value \"localhost:9464\" for \"metrics.listen\" (from -o): host must be a "
            "numeric IPv4 address");
    set_bad(&c, "metrics.listen", "127.0.0.1:70000", "bad port");
    set_bad(&c, "metrics.listen", "9464", "expected HOST:PORT");
    assert_string_equal(c.metrics_listen, "10.1.2.3:9100");
    sk_config_free(&c);
}

/* ---- include ------------------------------------------------------------ */

/* A file at tmpdir/name, its directories made first. */
static void write_at(const char *name, const char *text, char *out, size_t outlen)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    for (char *p = dir + strlen(tmpdir) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(dir, 0700);
        *p = '/';
    }
    write_text(name, text, out, outlen);
}

static void test_include(void **state)
{
    (void)state;
    struct sk_config c;
    char base[PATH_MAX], inst[PATH_MAX], d1[PATH_MAX], d2[PATH_MAX], junk[PATH_MAX];
    /* a shared base, an instance that includes it and overrides one key,
     * then a conf.d directory read in name order */
    write_at("inc/scorekeeper.conf",
             "db.url = mariadb://sk@db/scores\n"
             "kafka.bootstrap.servers = k1:9092\n"
             "metrics.listen = 127.0.0.1:9464\n"
             "batch.linger_ms = 7\n",
             base, sizeof base);
    write_at("inc/conf.d/20-late.conf", "batch.linger_ms = 20\nkafka.acks = all\n", d2,
             sizeof d2);
    write_at("inc/conf.d/10-early.conf", "batch.linger_ms = 10\nlog.level = debug\n", d1,
             sizeof d1);
    write_at("inc/conf.d/notes.txt", "this is not read\n", junk, sizeof junk);
    write_at("inc/conf.d/.hidden.conf", "this is not read either\n", junk, sizeof junk);
    write_at("inc/1.conf",
             "include = scorekeeper.conf\n"     /* relative to this file */
             "metrics.listen = 127.0.0.1:9461\n" /* overrides the base */
             "include = conf.d\n",
             inst, sizeof inst);
    init(&c);
    int rc = sk_config_load_file(&c, inst, err, sizeof err);
    if (rc)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.db_url, "mariadb://sk@db/scores");
    assert_string_equal(c.metrics_listen, "127.0.0.1:9461");
    assert_int_equal(c.batch_linger_ms, 20);
    assert_int_equal(c.log_level, SK_LOG_DEBUG);
    assert_int_equal(c.n_files, 4);
    assert_string_equal(c.files[0], inst);
    assert_string_equal(c.files[1], base);
    assert_string_equal(c.files[2], d1);
    assert_string_equal(c.files[3], d2);
    /* origins name the file that set the value */
    char origin[PATH_MAX + 64];
    snprintf(origin, sizeof origin, "%s:2", d2);
    assert_string_equal(c.kafka[0].origin, origin);
    assert_int_equal(sk_config_finish(&c, err, sizeof err), 0);
    sk_config_free(&c);

    /* an absolute path, an empty directory */
    char abs[PATH_MAX + 64], path[PATH_MAX];
    snprintf(abs, sizeof abs, "include = %s\ninclude = empty.d\n", base);
    mkdir(strcat(strcpy(path, tmpdir), "/inc/empty.d"), 0700);
    write_at("inc/abs.conf", abs, path, sizeof path);
    init(&c);
    assert_int_equal(sk_config_load_file(&c, path, err, sizeof err), 0);
    assert_int_equal(c.n_files, 2);
    assert_int_equal(c.batch_linger_ms, 7);
    sk_config_free(&c);

    /* an error in an included file names that file and line */
    write_at("inc/bad-base.conf", "db.pool_size = 4\nbatch.max_events = 0\n", base, sizeof base);
    write_at("inc/bad.conf", "include = bad-base.conf\n", path, sizeof path);
    init(&c);
    assert_int_equal(sk_config_load_file(&c, path, err, sizeof err), -EINVAL);
    snprintf(origin, sizeof origin, "(from %s:2)", base);
    assert_non_null(strstr(err, origin));
    sk_config_free(&c);

    /* a missing file names the include line */
    write_at("inc/missing.conf", "\ninclude = nowhere.conf\n", path, sizeof path);
    init(&c);
    assert_int_equal(sk_config_load_file(&c, path, err, sizeof err), -ENOENT);
    snprintf(origin, sizeof origin, "%s:2: cannot include ", path);
    assert_non_null(strstr(err, origin));
    assert_non_null(strstr(err, "inc/nowhere.conf"));
    sk_config_free(&c);

    /* an empty path, a loop, too deep */
    write_at("inc/empty.conf", "include =\n", path, sizeof path);
    init(&c);
    assert_int_equal(sk_config_load_file(&c, path, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":1: include needs a file or directory"));
    sk_config_free(&c);
    write_at("inc/loop-a.conf", "include = loop-b.conf\n", path, sizeof path);
    write_at("inc/loop-b.conf", "batch.linger_ms = 1\ninclude = loop-a.conf\n", junk,
             sizeof junk);
    init(&c);
    assert_int_equal(sk_config_load_file(&c, path, err, sizeof err), -EINVAL);
    snprintf(origin, sizeof origin, "%s:2: include of ", junk);
    assert_non_null(strstr(err, origin));
    assert_non_null(strstr(err, "already being read (an include loop)"));
    sk_config_free(&c);
    for (int i = 0; i < 9; i++) {
        char name[64], text[64];
        snprintf(name, sizeof name, "inc/deep%d.conf", i);
        snprintf(text, sizeof text, "include = deep%d.conf\n", i + 1);
        write_at(name, text, i ? junk : path, sizeof path);
    }
    init(&c);
    assert_int_equal(sk_config_load_file(&c, path, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "includes nested more than 7 files deep"));
    sk_config_free(&c);

    /* an included FIFO would block: refused */
    char fifo[PATH_MAX];
    snprintf(fifo, sizeof fifo, "%s/inc/fifo.conf", tmpdir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    write_at("inc/fifo-inc.conf", "include = fifo.conf\n", path, sizeof path);
    init(&c);
    assert_int_equal(sk_config_load_file(&c, path, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "fifo.conf: not a regular file"));
    sk_config_free(&c);

    /* not a setting */
    init(&c);
    set_bad(&c, "include", path, "is a line of a configuration file, not a setting");
    sk_config_free(&c);
}

/* ---- reload ------------------------------------------------------------- */

static void test_reloadable(void **state)
{
    (void)state;
    assert_true(sk_config_key_is_reloadable("batch.max_events"));
    assert_true(sk_config_key_is_reloadable("batch.linger_ms"));
    assert_true(sk_config_key_is_reloadable("batch.max_bytes"));
    assert_true(sk_config_key_is_reloadable("pipeline.max_inflight_events"));
    assert_true(sk_config_key_is_reloadable("limits.max_message_bytes"));
    assert_true(sk_config_key_is_reloadable("limits.max_name_chars"));
    assert_true(sk_config_key_is_reloadable("log.level"));
    assert_true(sk_config_key_is_reloadable("events.unknown_fields"));
    assert_false(sk_config_key_is_reloadable("db.pool_size"));
    assert_false(sk_config_key_is_reloadable("db.url"));
    assert_false(sk_config_key_is_reloadable("kafka.brokers"));
    assert_false(sk_config_key_is_reloadable("kafka.acks"));
    assert_false(sk_config_key_is_reloadable("topic.users"));
    assert_false(sk_config_key_is_reloadable("no.such.key"));
    assert_false(sk_config_key_is_reloadable(NULL));
}

static void test_reload_diff(void **state)
{
    (void)state;
    struct sk_config a, b;
    minimal(&a);
    minimal(&b);
    set_ok(&a, "kafka.acks", "all");
    set_ok(&b, "kafka.acks", "all");
    assert_int_equal(sk_config_finish(&a, err, sizeof err), 0);
    assert_int_equal(sk_config_finish(&b, err, sizeof err), 0);
    assert_int_equal(sk_config_reload_diff(&a, &b, err, sizeof err), 0);

    set_ok(&b, "batch.max_events", "50");
    set_ok(&b, "log.level", "debug");
    set_ok(&b, "limits.max_depth", "8");
    set_ok(&b, "events.unknown_fields", "IGNORE");
    assert_int_equal(sk_config_reload_diff(&a, &b, err, sizeof err), 4);
    assert_int_equal(sk_config_apply_reload(&a, &b), 0);
    assert_int_equal(a.batch_max_events, 50);
    assert_int_equal(a.log_level, SK_LOG_DEBUG);
    assert_int_equal(a.limits.max_depth, 8);
    assert_int_equal(a.limits.unknown_fields, SK_UNKNOWN_IGNORE);
    assert_int_equal(sk_config_reload_diff(&a, &b, err, sizeof err), 0);

    set_ok(&b, "db.pool_size", "8");
    assert_int_equal(sk_config_reload_diff(&a, &b, err, sizeof err), -EINVAL);
    assert_string_equal(err, "\"db.pool_size\" cannot be changed by a reload (\"4\" -> \"8\"); "
                             "restart scorekeeper to apply it");
    set_ok(&b, "db.pool_size", "4");

    set_ok(&b, "topic.users", "other");
    assert_int_equal(sk_config_reload_diff(&a, &b, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "\"topic.users\""));
    set_ok(&b, "topic.users", "game.users");

    set_ok(&b, "kafka.acks", "1");
    assert_int_equal(sk_config_reload_diff(&a, &b, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "\"kafka.acks\" cannot be changed"));
    set_ok(&b, "kafka.acks", "all");
    char kpath[PATH_MAX];
    write_text("sasl-reload", "NewSecretPw", kpath, sizeof kpath);
    set_ok(&b, "kafka.sasl.password_file", kpath);
    assert_int_equal(sk_config_finish(&b, err, sizeof err), 0);
    assert_int_equal(sk_config_reload_diff(&a, &b, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "\"kafka.sasl.password"));
    assert_non_null(strstr(err, "cannot be changed by a reload (unset -> \"********\")"));
    assert_null(strstr(err, "NewSecretPw"));
    assert_null(strstr(err, kpath));
    /* a property dropped from the new configuration */
    assert_int_equal(sk_config_reload_diff(&b, &a, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "(\"********\" -> unset)"));
    sk_config_free(&b);

    /* a changed password */
    char path[PATH_MAX];
    write_text("pw-reload", "NewDbPassword", path, sizeof path);
    minimal(&b);
    set_ok(&b, "kafka.acks", "all");
    set_ok(&b, "batch.max_events", "50");
    set_ok(&b, "log.level", "debug");
    set_ok(&b, "limits.max_depth", "8");
    set_ok(&b, "events.unknown_fields", "ignore");
    set_ok(&b, "db.password_file", path);
    assert_int_equal(sk_config_finish(&b, err, sizeof err), 0);
    assert_int_equal(sk_config_reload_diff(&a, &b, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "db.password_file"));
    assert_null(strstr(err, "NewDbPassword"));
    assert_null(strstr(err, path));
    sk_config_free(&a);
    sk_config_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_numeric_bounds),
        cmocka_unit_test(test_error_format),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_enum),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_file_basic),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_override_precedence),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_dburl_ok),
        cmocka_unit_test(test_dburl_bad),
        cmocka_unit_test(test_finish_checks),
        cmocka_unit_test(test_password_file),
        cmocka_unit_test(test_credentials_directory),
        cmocka_unit_test(test_secret_keys),
        cmocka_unit_test(test_kafka_passthrough_and_dump),
        cmocka_unit_test(test_secrets_refused),
        cmocka_unit_test(test_kafka_secret_files),
        cmocka_unit_test(test_kafka_guards),
        cmocka_unit_test(test_metrics_listen),
        cmocka_unit_test(test_kafka_client),
        cmocka_unit_test(test_reloadable),
        cmocka_unit_test(test_reload_diff),
        cmocka_unit_test(test_tls_settings),
    };
    return cmocka_run_group_tests_name("config", tests, group_setup, group_teardown);
}
