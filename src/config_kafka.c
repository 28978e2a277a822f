/* config_kafka — the kafka.* passthrough settings; see include/config.h.
 *
 * A key is for both clients (kafka.<property>) or for one
 * (kafka.consumer.<property>, kafka.producer.<property>).  Three kinds of
 * property are refused when set, from the file as from -o:
 *   - secrets (…password…, …secret…): they are read from a file named by
 *     kafka.<property>_file or from the systemd credential
 *     kafka.<property> (read by sk_config_finish, config_check.c), never
 *     taken from the configuration file or the command line;
 *   - private keys inline (ssl.key.pem, ssl_key): ssl.key.location names
 *     the file;
 *   - the properties a promise of scorekeeper rests on (guards[] below),
 *     unless given the value scorekeeper sets anyway. */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FILE_SUFFIX "_file"

struct guard {
    const char *prop;
    const char *ok; /* the values that keep the promise, '|'-separated; NULL: none */
    bool (*accepts)(const char *value); /* instead of ok */
    const char *promise;
};

#define NO_AUTO_COMMIT                                                                       \
    "offsets are committed by scorekeeper only after each event's result is delivered "     \
    "(at-least-once with exactly-once effects); auto-commit would commit events not yet "   \
    "applied"

static bool assignment_ok(const char *v)
{
    /* librdkafka#4312: see the partition.assignment.strategy set in kafka.c */
    return rd_kafka_version() >= 0x020300ff || !strcasestr(v, "cooperative");
}

static const struct guard guards[] = {
    {"enable.auto.commit", "false|0", NULL, NO_AUTO_COMMIT},
    {"auto.commit.enable", "false|0", NULL, NO_AUTO_COMMIT},
    {"enable.auto.offset.store", "false|0", NULL,
     "an offset is stored by scorekeeper only once the event's result is delivered; storing "
     "it on consume would let a crash skip events not yet applied"},
    {"offset.store.method", "broker", NULL,
     "offsets are committed to the consumer group, where the next owner of a partition finds "
     "them"},
    {"auto.offset.reset", "earliest|smallest|beginning", NULL,
     "every event on the input topics is applied and answered: a partition without a "
     "committed offset is read from its beginning; starting anywhere later skips events"},
    {"isolation.level", "read_committed", NULL,
     "only committed input events are applied: read_uncommitted would apply the events of "
     "transactions their producer aborted"},
    {"enable.idempotence", "true|1", NULL,
     "each result is produced once and in order per key: without idempotence a retried send "
     "may duplicate or reorder results"},
    {"queuing.strategy", "fifo", NULL, "results are produced in order per key"},
    {"delivery.report.only.error", "false|0", NULL,
     "an offset is committed only once the result's delivery is reported; reporting only "
     "failures would hold every offset back"},
    {"transactional.id", NULL, NULL,
     "results are produced outside Kafka transactions: the database transaction records how "
     "far each game was applied"},
    {"log.queue", "true|1", NULL,
     "librdkafka's log lines are written from the event loop, never from librdkafka's own "
     "threads, so logging needs no locks"},
    {"partition.assignment.strategy", NULL, assignment_ok,
     "a stop drains and leaves the group cleanly: librdkafka before 2.3.0 aborts when a "
     "cooperative consumer that was never assigned a partition is closed (librdkafka#4312)"},
    {"group.id", NULL, NULL, "the consumer group is set by kafka.group.id"},
    {"bootstrap.servers", NULL, NULL,
     "both clients use the brokers of kafka.bootstrap.servers"},
    {"metadata.broker.list", NULL, NULL,
     "both clients use the brokers of kafka.bootstrap.servers"},
};

static bool one_of(const char *v, const char *list)
{
    size_t n = strlen(v);
    for (const char *p = list; p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncasecmp(p, v, n) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

enum sk_kafka_client sk_config_kafka_client(const char *key, const char **prop)
{
    enum sk_kafka_client who = SK_KAFKA_BOTH;
    if (strncmp(key, "consumer.", 9) == 0 && key[9])
        who = SK_KAFKA_CONSUMER, key += 9;
    else if (strncmp(key, "producer.", 9) == 0 && key[9])
        who = SK_KAFKA_PRODUCER, key += 9;
    *prop = key;
    size_t n = strlen(key), sn = strlen(FILE_SUFFIX);
    if (n > sn && strcmp(key + n - sn, FILE_SUFFIX) == 0)
        return SK_KAFKA_NONE; /* names the file of a secret, read by sk_config_finish */
    return who;
}

bool config_kafka_secret_prop(const char *prop)
{
    return strcasestr(prop, "password") || strcasestr(prop, "secret");
}

int config_secret_refused(const char *key, const char *origin, char *err, size_t errlen)
{
    return fail(err, errlen,
                "\"%s\" (from %s): refused: a secret is never taken from the command line or "
                "the configuration file; put it into a file named by \"%s" FILE_SUFFIX "\", or "
                "pass it as the systemd credential \"%s\" (LoadCredential=%s:/etc/scorekeeper/%s)",
                key, origin, key, key, key, key);
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

struct sk_kv *config_find_kv(const struct sk_config *c, const char *prop)
{
    for (size_t i = 0; i < c->n_kafka; i++)
        if (strcmp(c->kafka[i].key, prop) == 0)
            return &c->kafka[i];
    return NULL;
}

static void free_value(const char *key, char *v)
{
    if (config_kafka_secret_prop(key))
        config_wipe_free(v);
    else
        free(v);
}

int config_kafka_put(struct sk_config *c, const char *key, const char *value, const char *origin)
{
    char *v = strdup(value), *o = strdup(origin);
    if (!v || !o)
        goto nomem;
    struct sk_kv *kv = config_find_kv(c, key);
    if (kv) { /* a later setting replaces an earlier one */
        free_value(key, kv->value);
        free(kv->origin);
        kv->value = v;
        kv->origin = o;
        return 0;
    }
    char *k = strdup(key);
    struct sk_kv *arr = k ? realloc(c->kafka, (c->n_kafka + 1) * sizeof *arr) : NULL;
    if (!arr) {
        free(k);
        goto nomem;
    }
    c->kafka = arr;
    c->kafka[c->n_kafka++] = (struct sk_kv){.key = k, .value = v, .origin = o};
    return 0;
nomem:
    free_value(key, v);
    free(o);
    return -ENOMEM;
}

void config_kafka_drop(struct sk_config *c, size_t i)
{
    free_value(c->kafka[i].key, c->kafka[i].value);
    free(c->kafka[i].key);
    free(c->kafka[i].origin);
    c->kafka[i] = c->kafka[--c->n_kafka];
}

/* 0 when prop may be set to value, else -EINVAL with the reason. */
static int refused(const char *key, const char *prop, const char *value, const char *origin,
                   char *err, size_t errlen)
{
    char sh[SHOWN_MAX + 4];
    size_t n = strlen(prop), sn = strlen(FILE_SUFFIX);
    if (n > sn && strcmp(prop + n - sn, FILE_SUFFIX) == 0) {
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(n - sn), prop);
        if (config_kafka_secret_prop(base))
            return 0;
        return fail(err, errlen, "\"%s\" (from %s): refused: only a secret (a property "
                    "naming a password or a secret) is read from a file", key, origin);
    }
    if (config_kafka_secret_prop(prop))
        return config_secret_refused(key, origin, err, errlen);
    if (strcasestr(prop, "ssl.key.pem") || strcasestr(prop, "ssl_key"))
        return fail(err, errlen, "\"%s\" (from %s): refused: a private key is never taken from "
                    "the command line or the configuration file; name its file in "
                    "\"kafka.ssl.key.location\" (under systemd, LoadCredential= makes it "
                    "readable to the service)", key, origin);
    for (size_t i = 0; i < sizeof guards / sizeof guards[0]; i++) {
        const struct guard *g = &guards[i];
        if (strcasecmp(g->prop, prop) != 0)
            continue;
        if (g->accepts ? g->accepts(value) : g->ok && one_of(value, g->ok))
            return 0;
        return fail(err, errlen, "\"%s\" = \"%s\" (from %s): refused: %s", key,
                    config_shown(value, false, sh), origin, g->promise);
    }
    return 0;
}

int config_set_kafka(struct sk_config *c, const char *key, const char *value, const char *origin,
                     char *err, size_t errlen)
{
    const char *written = key + strlen("kafka."), *prop;
    char sh[SHOWN_MAX + 4];
    sk_config_kafka_client(written, &prop);
    if (!valid_kafka_property(written) || !valid_kafka_property(prop))
        return fail(err, errlen,
                    "invalid key \"%s\" (from %s): expected kafka.<librdkafka property> "
                    "made of A-Z a-z 0-9 . _ -",
                    config_shown(key, false, sh), origin);
    int r = refused(key, prop, value, origin, err, errlen);
    if (r < 0)
        return r;
    if (config_has_ctl(value))
        return fail(err, errlen, "invalid value \"%s\" for \"%s\" (from %s): control "
                    "characters are not allowed",
                    config_shown(value, sk_config_key_is_secret(key), sh), key, origin);
    if (config_kafka_put(c, written, value, origin) < 0)
        return sk_errf_code(-ENOMEM, err, errlen, "out of memory setting \"%s\"", key);
    return 0;
}
