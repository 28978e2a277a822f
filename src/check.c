/* check — --check-config, see include/check.h.
 *
 * This is a command, not the daemon: nothing else runs, so waiting for the
 * Kafka metadata request is fine.  The database is still reached through
 * the non-blocking pool on a short-lived loop, like `migrate`, so that no
 * blocking Connector/C call exists anywhere in the program. */
#include "check.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "db.h"
#include "kafka.h"
#include "log.h"

#define EX_UNAVAILABLE 69
#define EX_CONFIG 78
#define EX_NOPERM 77

struct dbcheck {
    sd_event *loop;
    struct sk_db *db;
    int ok;
    char tls[200]; /* the connection's TLS in words */
};

static void print_line(void *ud, const char *text)
{
    (void)ud;
    printf("  %s\n", text);
}

/* A connection became idle: it connected and ran its session set-up. */
static void on_idle(void *ud)
{
    struct dbcheck *c = ud;
    if (c->ok)
        return;
    struct sk_db_conn *conn = sk_db_acquire(c->db);
    if (conn) {
        snprintf(c->tls, sizeof c->tls, "%s", sk_db_conn_tls(conn));
        sk_db_release(conn);
    }
    c->ok = 1;
    sd_event_exit(c->loop, 0);
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    struct dbcheck *c = ud;
    sd_event_exit(c->loop, 0);
    return 0;
}

/* 0 when a connection comes up within the connect timeout, else a
 * negative errno (-EHOSTUNREACH: none did; the pool logs why). */
static int check_db(const struct sk_config *cfg, char *tls, size_t tlslen)
{
    struct sk_config one = *cfg;
    one.db_pool_size = 1;
    struct dbcheck c = {0};
    sd_event_source *t = NULL;
    int r = sd_event_new(&c.loop);
    if (r < 0)
        return r;
    r = sk_db_new(c.loop, &one, on_idle, &c, &c.db);
    if (r >= 0)
        r = sd_event_add_time_relative(c.loop, &t, CLOCK_MONOTONIC,
                                       (uint64_t)cfg->db_connect_timeout_ms * 1000u + 500000u, 1000,
                                       on_timeout, &c);
    if (r >= 0) {
        sk_db_start(c.db);
        sd_event_loop(c.loop);
    }
    sd_event_source_disable_unref(t);
    sk_db_free(c.db);
    sd_event_unref(c.loop);
    snprintf(tls, tlslen, "%s", c.tls);
    if (c.ok)
        return 0;
    return r < 0 ? r : -EHOSTUNREACH;
}

/* The passthrough settings as each client has them, read back from the
 * configurations librdkafka built: what kafka.consumer.* and
 * kafka.producer.* reach, and what reaches both. */
static void print_clients(const struct sk_config *cfg, rd_kafka_conf_t *const conf[2])
{
    static const char *const names[2] = {"consumer", "producer"};
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        const char *prop, *p2;
        if (sk_config_kafka_client(cfg->kafka[i].key, &prop) == SK_KAFKA_NONE)
            continue;
        bool seen = false; /* one line per property and client */
        for (size_t j = 0; j < i && !seen; j++)
            seen = sk_config_kafka_client(cfg->kafka[j].key, &p2) != SK_KAFKA_NONE &&
                   !strcmp(prop, p2);
        for (int k = 0; k < 2 && !seen; k++) {
            char v[512];
            size_t n = sizeof v;
            if (rd_kafka_conf_get(conf[k], prop, v, &n) != RD_KAFKA_CONF_OK)
                snprintf(v, sizeof v, "(not readable)");
            printf("kafka %s: %s = %s\n", names[k], prop,
                   sk_config_key_is_secret(prop) ? "********" : v);
        }
    }
}

/* The first authentication failure librdkafka reports, if any. */
struct auth_failure {
    bool seen;
    char why[400];
};

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    struct auth_failure *a = opaque;
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION && !a->seen) {
        a->seen = true;
        snprintf(a->why, sizeof a->why, "%s", reason);
    }
}

/* Prints its verdict; 0, -EINVAL (librdkafka refuses the settings when it
 * builds the client: a configuration error, as for the daemon), -EACCES
 * (the brokers refuse the credentials, as the daemon exits 77) or
 * -EHOSTUNREACH (no broker answers).  conf is taken over. */
static int check_kafka(const struct sk_config *cfg, rd_kafka_conf_t *conf)
{
    char err[512];
    struct auth_failure auth = {0};
    rd_kafka_conf_set_opaque(conf, &auth);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    rd_kafka_conf_set(conf, "log.queue", "false", NULL, 0);
    rd_kafka_conf_set(conf, "log_level", "0", NULL, 0); /* the verdict below says it all */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        printf("kafka:    FAILED: %s\n", err);
        return -EINVAL;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, 5000);
    int rc = 0;
    if (e)
        rd_kafka_poll(rk, 0); /* serves the error callback */
    if (e && auth.seen) {
        char mech[64] = "?", user[128] = "?";
        size_t n = sizeof mech;
        rd_kafka_conf_get(rd_kafka_conf(rk), "sasl.mechanisms", mech, &n);
        n = sizeof user;
        rd_kafka_conf_get(rd_kafka_conf(rk), "sasl.username", user, &n);
        printf("kafka:    FAILED: authentication refused (SASL mechanism %s, user %s): %s\n", mech,
               user, auth.why);
        rc = -EACCES;
    } else if (e) {
        printf("kafka:    FAILED: no answer from %s: %s\n", cfg->kafka_brokers, rd_kafka_err2str(e));
        rc = -EHOSTUNREACH;
    } else {
        printf("kafka:    ok (%d brokers answer at %s)\n", md->broker_cnt, cfg->kafka_brokers);
        const char *topics[] = {cfg->topic_users, cfg->topic_scores, cfg->topic_results,
                                cfg->topic_dead_letter};
        for (size_t i = 0; i < sizeof topics / sizeof *topics; i++) {
            bool found = false;
            for (int t = 0; t < md->topic_cnt; t++)
                if (!strcmp(md->topics[t].topic, topics[i]) && !md->topics[t].err) {
                    printf("          topic %s: %d partitions\n", topics[i], md->topics[t].partition_cnt);
                    found = true;
                }
            if (!found)
                printf("          topic %s: does not exist (yet)\n", topics[i]);
        }
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    return rc;
}

int sk_check_run(const struct sk_config *cfg)
{
    /* Both clients' settings first: a property librdkafka refuses is a
     * configuration error (78), as it is for the daemon. */
    char err[512];
    rd_kafka_conf_t *conf[2] = {sk_kafka_conf(cfg, true, err, sizeof err), NULL};
    if (conf[0])
        conf[1] = sk_kafka_conf(cfg, false, err, sizeof err);
    if (!conf[1]) {
        if (conf[0])
            rd_kafka_conf_destroy(conf[0]);
        log_error("configuration: %s", err);
        printf("configuration: FAILED: %s\n", err);
        return EX_CONFIG;
    }
    printf("configuration: ok\n");
    /* as comments, so the lines below still read back as a configuration */
    for (size_t i = 0; i < cfg->n_files; i++)
        printf("  # read %s\n", cfg->files[i]);
    sk_config_dump(cfg, print_line, NULL);
    print_clients(cfg, conf);
    rd_kafka_conf_destroy(conf[0]);
    /* The pool logs why a connect failed; the verdict goes to stdout. */
    char tls[200];
    int db = check_db(cfg, tls, sizeof tls);
    const char *verdict = db == 0 ? "ok" : "FAILED: cannot connect (the reason is logged above)";
    if (cfg->db.socket)
        printf("database: %s (socket %s, database %s)\n", verdict, cfg->db.socket, cfg->db.dbname);
    else
        printf("database: %s (%s:%u, database %s)\n", verdict, cfg->db.host, cfg->db.port,
               cfg->db.dbname);
    if (db == 0 && tls[0])
        printf("database TLS: %s\n", tls);
    int kafka = check_kafka(cfg, conf[1]);
    if (kafka == -EINVAL)
        return EX_CONFIG;
    if (kafka == -EACCES)
        return EX_NOPERM;
    return db == 0 && kafka == 0 ? 0 : EX_UNAVAILABLE;
}
