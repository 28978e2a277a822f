/* config — settings: one declarative table of keys, a `key = value` file,
 * `-o key=value` overrides, and the checks between keys.
 *
 * Every setting has a type, a default, limits and a flag saying whether a
 * reload (SIGHUP) may change it.  Errors name the key, the value and where
 * it came from ("/etc/scorekeeper/scorekeeper.conf:12" or "-o").  Secrets
 * (the database password, kafka.*password*, kafka.*secret*) are never put
 * into a message, and never taken from the file or -o: they are read from
 * a file named by db.password_file / kafka.<property>_file, or from the
 * systemd credential of the same name ($CREDENTIALS_DIRECTORY/db.password,
 * $CREDENTIALS_DIRECTORY/kafka.sasl.password, ...).  kafka.* properties
 * that a promise of scorekeeper rests on (enable.auto.commit, ...) are
 * refused with the promise they would break.
 *
 * Implemented by src/config.c (the table, setting one value),
 * src/config_kafka.c (kafka.* keys), src/config_text.c (the file, the
 * dump, --help) and src/config_check.c (the checks between keys, the
 * secret files, reload). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "dburl.h"
#include "event.h"
#include "log.h"

struct sk_kv {
    char *key;    /* as written without "kafka.": [consumer.|producer.]<property>[_file] */
    char *value;  /* a secret's is read from its file by sk_config_finish() */
    char *origin; /* "file:line", "-o", or the path of the secret's file */
};

/* db.tls: what a connection to the database must be. */
enum sk_db_tls {
    SK_DB_TLS_OFF,         /* plain (the default) */
    SK_DB_TLS_REQUIRED,    /* encrypted, the server's certificate not checked */
    SK_DB_TLS_VERIFY_CA,   /* encrypted, the certificate signed by a trusted CA */
    SK_DB_TLS_VERIFY_FULL, /* and valid for the host name of db.url ("on") */
};

struct sk_config {
    /* database */
    char *db_url;              /* db.url (required) */
    struct sk_dburl db;        /* parsed from db_url by sk_config_finish() */
    char *db_password_file;    /* db.password_file; also $CREDENTIALS_DIRECTORY/db.password */
    char *db_password;         /* loaded by sk_config_finish(); secret, NULL if none */
    unsigned db_pool_size;     /* db.pool_size, 1..64, default 4 */
    unsigned db_connect_timeout_ms; /* db.connect_timeout_ms, default 5000 */
    unsigned db_query_timeout_ms;   /* db.query_timeout_ms, default 30000 */
    unsigned db_retry_min_ms;  /* db.retry_min_ms, default 100 */
    unsigned db_retry_max_ms;  /* db.retry_max_ms, default 10000 */
    unsigned db_idle_ping_ms;  /* db.idle_ping_ms, default 30000 */
    unsigned db_keepalive_ms;  /* db.keepalive_ms, default 10000, 0: off */
    unsigned db_slow_txn_ms;   /* db.slow_transaction_ms, default 1000, 0: off (reloadable) */
    unsigned db_tls;           /* db.tls (enum sk_db_tls), default off */
    char *db_tls_ca;           /* db.tls_ca: CA file; unset: the system's CA store */
    char *db_tls_cert;         /* db.tls_cert: client certificate file */
    char *db_tls_key;          /* db.tls_key: its private key file */
    char *db_tls_key_password_file; /* db.tls_key_password_file: the key's passphrase */
    /* set by sk_config_finish(): the files in use, the setting or the systemd
     * credential db.tls_cert / db.tls_key; NULL when none */
    char *tls_cert_path;
    char *tls_key_path;
    char *db_tls_key_password; /* loaded by sk_config_finish(); secret, NULL if none */
    /* kafka */
    char *kafka_brokers;       /* kafka.bootstrap.servers (also settable as kafka.brokers) */
    char *group_id;            /* kafka.group.id, default "scorekeeper" */
    char *topic_users;         /* topic.users, default "game.users" */
    char *topic_scores;        /* topic.scores, default "game.scores" */
    char *topic_results;       /* topic.results, default "game.results" */
    char *topic_dead_letter;   /* topic.dead_letter, default "game.dead-letter" */
    struct sk_kv *kafka;       /* other kafka.* properties, passed through (and the
                                  secrets sk_config_finish() read from their files) */
    size_t n_kafka;
    /* batching (reloadable) */
    unsigned batch_max_events; /* batch.max_events, default 2000 */
    unsigned batch_linger_ms;  /* batch.linger_ms, default 5 */
    size_t batch_max_bytes;    /* batch.max_bytes, default 1 MiB */
    unsigned txn_max_events;   /* batch.txn_max_events, default 2000 */
    unsigned max_inflight_events; /* pipeline.max_inflight_events, default 20000 */
    size_t max_inflight_bytes; /* pipeline.max_inflight_bytes, default 24 MiB */
    unsigned stall_timeout_ms; /* pipeline.stall_timeout_ms, default 90000 */
    unsigned known_users;      /* pipeline.known_users, default 200000 */
    unsigned known_users_preload; /* pipeline.known_users_preload, default 100000 */
    unsigned game_marks;       /* pipeline.game_marks, default 65536 (all score partitions) */
    /* limits (reloadable) */
    struct sk_limits limits;   /* limits.max_message_bytes, limits.max_depth, ... */
    /* process */
    enum sk_log_level log_level;    /* log.level: err|warning|notice|info|debug, default info */
    unsigned shutdown_timeout_ms;   /* shutdown.timeout_ms, default 30000 */
    unsigned commit_interval_ms;    /* offsets.commit_interval_ms, default 1000 */
    char *echo_headers;             /* results.echo_headers: comma-separated header names */
    char *metrics_listen;           /* metrics.listen: HOST:PORT or "off" */
    char *sql_dir;                  /* sql.dir, default SK_SQL_DIR (migrations for `migrate`) */
    /* where the settings came from */
    char **files;   /* the configuration files read, in order, includes too */
    size_t n_files;
};

/* Defaults in place.  Returns 0, or -ENOMEM (-EINVAL: a settings table row
 * that does not fit its field, a bug the unit tests catch); *c is then
 * freed. */
int sk_config_init(struct sk_config *c);
void sk_config_free(struct sk_config *c);

/* Set one key.  origin is "file:line" or "-o".  On error returns -EINVAL
 * (-ENOMEM when out of memory) and writes a one-line message naming key,
 * value (masked when secret) and origin into err.  Setting a key again
 * replaces the earlier value (so `-o` applied after the file wins); this
 * holds for kafka.* too.  The value is taken literally (no quote
 * processing: that is the file syntax). */
int sk_config_set(struct sk_config *c, const char *key, const char *value, const char *origin,
                  char *err, size_t errlen);
/* Parse a whole file: `key = value` lines, '#' comments, blank lines.
 * Key and value are trimmed of blanks.  '#' starts a comment only as the
 * first non-blank character of a line, so values may contain '#'.  A value
 * whose first character is '"' must be one double-quoted string: it keeps
 * blanks and '#', and \" and \\ are its only escapes.  Lines are at most
 * 4096 bytes.  `include = PATH` reads PATH at that point, as if its lines
 * were there (so what follows overrides it): a file, or every *.conf file
 * of a directory in name order; a relative PATH is taken from the
 * including file's directory; at most 8 files open at once, and no file
 * includes itself.  Every file read is added to c->files.  Errors name
 * "path:line" (of the included file when the error is in it).  Returns 0,
 * or a negative errno with a message in err: -EINVAL for a refused line or
 * setting, -ENOENT, -EACCES, -EISDIR, ... when a file cannot be opened or
 * read, -ENOMEM. */
int sk_config_load_file(struct sk_config *c, const char *path, char *err, size_t errlen);
/* After all sets: cross-key checks (db.url is required), parse db.url,
 * read the password file (db.password_file, else
 * $CREDENTIALS_DIRECTORY/db.password when present),
 * find the TLS client certificate and key (db.tls_cert / db.tls_key, else
 * $CREDENTIALS_DIRECTORY/db.tls_cert / db.tls_key when present), read the
 * key's passphrase (db.tls_key_password_file, else the credential
 * db.tls_key_password), check the TLS files (sk_dbtls_check), and read
 * the Kafka secrets: kafka.[consumer.|producer.]<property>_file, else
 * for sasl.password, ssl.key.password, ssl.keystore.password and
 * sasl.oauthbearer.client.secret $CREDENTIALS_DIRECTORY/kafka.<property>
 * when present; each becomes the passthrough setting kafka.<property>.
 * Returns 0, or a negative errno with a message in err: -EINVAL for
 * settings that do not go together or a bad password file, the open or
 * read error of the password file (-ENOENT, -EACCES, ...), -ENOMEM. */
int sk_config_finish(struct sk_config *c, char *err, size_t errlen);
/* The daemon and --check-config talk to Kafka, `migrate` and `reset-marks`
 * do not: for the first two, kafka.bootstrap.servers is required.  0, or
 * -EINVAL with the message in err. */
int sk_config_require_kafka(const struct sk_config *c, char *err, size_t errlen);

/* Which client a kafka.* passthrough key (without "kafka.") is for, with
 * the librdkafka property it sets in *prop: kafka.consumer.<property> and
 * kafka.producer.<property> one client, kafka.<property> both;
 * SK_KAFKA_NONE for a <property>_file key (the file of a secret). */
enum sk_kafka_client { SK_KAFKA_NONE, SK_KAFKA_BOTH, SK_KAFKA_CONSUMER, SK_KAFKA_PRODUCER };
enum sk_kafka_client sk_config_kafka_client(const char *key, const char **prop);

/* metrics.listen: "off" (returns 0), or HOST:PORT with HOST a numeric IPv4
 * address and PORT 0..65535 in decimal (returns 1 and fills *sa; port 0
 * picks a free one).  -EINVAL with the reason in why otherwise.  The
 * settings table checks the value with it, so a value the endpoint would
 * refuse is a configuration error at start-up and under --check-config. */
int sk_config_parse_listen(const char *listen, struct sockaddr_in *sa, char *why, size_t n);

/* Is this key's value a secret (masked in every message and dump)?  True
 * for db.password* (db.password_file included) and for any key containing,
 * case-insensitively, "password", "secret", "sasl.oauthbearer.config",
 * "ssl.key.pem" or "ssl_key". */
bool sk_config_key_is_secret(const char *key);
/* Write the effective settings, one `key = value` per line, secrets as
 * "********", for --check-config and the startup log: every table key in
 * table order (plus "db.password = (set)" or "(not set)"), then the kafka.*
 * passthrough properties sorted by key.  Values are quoted as the file
 * syntax needs, so a dump reads back as a config file. */
void sk_config_dump(const struct sk_config *c, void (*line)(void *ud, const char *text), void *ud);

/* May a reload (SIGHUP) change this key?  false for unknown keys and for
 * kafka.* passthrough properties. */
bool sk_config_key_is_reloadable(const char *key);
/* Compare a freshly loaded and finished configuration with the running
 * one.  Returns -EINVAL with a message naming the first key that differs
 * but may not change on reload (secrets masked), else the number of
 * reloadable settings that differ (0: nothing to do). */
int sk_config_reload_diff(const struct sk_config *old, const struct sk_config *next, char *err,
                          size_t errlen);
/* Copy every reloadable setting from src into dst (after a successful
 * sk_config_reload_diff()).  Returns 0, or -ENOMEM, dst then unchanged for
 * the setting that failed. */
int sk_config_apply_reload(struct sk_config *dst, const struct sk_config *src);
/* Text for `scorekeeper --help` and the man page: the file syntax, then
 * every key with its type, range, default and help line.  Static storage,
 * built on the first call (thread-safe). */
const char *sk_config_help(void);
