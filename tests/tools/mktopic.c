/* mktopic — create a Kafka topic with a given number of partitions, or
 * delete topics.
 *
 *   mktopic -b BROKERS [-r REPLICATION] [-t TIMEOUT_MS] TOPIC PARTITIONS
 *   mktopic -b BROKERS [-t TIMEOUT_MS] -d TOPIC...
 *
 * Uses librdkafka's Admin API (CreateTopics) and then waits until the
 * broker's metadata shows the topic with all its partitions, so a test can
 * produce to every partition right away.  Exit status 0 when the topic was
 * created or already exists, 1 on any error (printed on stderr), 2 on a
 * usage error.  -d deletes the topics (DeleteTopics; one that does not
 * exist counts as deleted), so that test runs do not leave their topics on
 * the broker.  Test tool: not part of the daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static const char *prog = "mktopic";

static void usage(void)
{
    fprintf(stderr,
            "usage: %s -b BROKERS [-r REPLICATION] [-t TIMEOUT_MS] [-c NAME=VALUE]... TOPIC "
            "PARTITIONS\n"
            "       %s -b BROKERS [-t TIMEOUT_MS] -d TOPIC...\n",
            prog, prog);
}

/* Parse a decimal int in [min, max]; false on junk or overflow. */
static bool parse_int(const char *s, long min, long max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

static long long now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run one admin request: send() issues it with the options (both
 * timeouts set) and the result queue; returns its result event, or NULL
 * after printing why there is none.  The caller destroys the event. */
static rd_kafka_event_t *admin_call(rd_kafka_t *rk, rd_kafka_admin_op_t op, const char *what,
                                    int timeout_ms, rd_kafka_event_type_t want,
                                    void (*send)(rd_kafka_t *, rd_kafka_AdminOptions_t *,
                                                 rd_kafka_queue_t *, void *),
                                    void *arg)
{
    char errstr[512];
    rd_kafka_event_t *ev = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, op);
    if (!opts) {
        fprintf(stderr, "%s: cannot allocate admin options\n", prog);
        goto out;
    }
    if (rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof errstr) ||
        rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr, sizeof errstr)) {
        fprintf(stderr, "%s: cannot set admin timeouts: %s\n", prog, errstr);
        goto out;
    }
    q = rd_kafka_queue_new(rk);
    if (!q) {
        fprintf(stderr, "%s: cannot create result queue\n", prog);
        goto out;
    }
    send(rk, opts, q, arg);
    /* The request timeout bounds the operation; allow a little more so the
     * timeout is reported by librdkafka with a useful message. */
    ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (!ev) {
        fprintf(stderr, "%s: no %s result within %d ms\n", prog, what, timeout_ms + 5000);
    } else if (rd_kafka_event_type(ev) != want) {
        fprintf(stderr, "%s: unexpected event %s\n", prog, rd_kafka_event_name(ev));
    } else if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "%s: %s failed: %s\n", prog, what, rd_kafka_event_error_string(ev));
    } else {
        goto out; /* the result */
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    ev = NULL;
out:
    if (q)
        rd_kafka_queue_destroy(q);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    return ev;
}

static void send_create(rd_kafka_t *rk, rd_kafka_AdminOptions_t *opts, rd_kafka_queue_t *q,
                        void *nt)
{
    rd_kafka_CreateTopics(rk, nt, 1, opts, q); /* nt: the one-element request array */
}

/* Send CreateTopics and wait for its result.  Returns 0 when created or
 * already there (then *existed is set). */
static int create_topic(rd_kafka_t *rk, const char *topic, int partitions,
                        int replication, int timeout_ms, char **configs, int nconfigs,
                        bool *existed)
{
    char errstr[512];
    int rc = 1;
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, replication, errstr,
                                                    sizeof errstr);
    if (!nt) {
        fprintf(stderr, "%s: invalid topic request: %s\n", prog, errstr);
        return 1;
    }
    for (int i = 0; i < nconfigs; i++) {
        char *eq = strchr(configs[i], '=');
        *eq = '\0';
        rd_kafka_resp_err_t e = rd_kafka_NewTopic_set_config(nt, configs[i], eq + 1);
        *eq = '=';
        if (e) {
            fprintf(stderr, "%s: topic config %s: %s\n", prog, configs[i], rd_kafka_err2str(e));
            rd_kafka_NewTopic_destroy(nt);
            return 1;
        }
    }
    rd_kafka_event_t *ev = admin_call(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, "CreateTopics",
                                      timeout_ms, RD_KAFKA_EVENT_CREATETOPICS_RESULT,
                                      send_create, &nt);
    rd_kafka_NewTopic_destroy(nt);
    if (!ev)
        return 1;
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    if (!tr || n != 1 || !tr[0]) {
        fprintf(stderr, "%s: CreateTopics returned %zu topic results, expected 1\n", prog, n);
        rd_kafka_event_destroy(ev);
        return 1;
    }
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[0]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = 0;
    } else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        fprintf(stderr, "%s: topic '%s' already exists\n", prog, topic);
        *existed = true;
        rc = 0;
    } else {
        const char *msg = rd_kafka_topic_result_error_string(tr[0]);
        fprintf(stderr, "%s: cannot create topic '%s': %s (%s)\n", prog, topic,
                msg ? msg : rd_kafka_err2str(err), rd_kafka_err2name(err));
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

struct deletion {
    rd_kafka_DeleteTopic_t **dt;
    size_t n;
};

static void send_delete(rd_kafka_t *rk, rd_kafka_AdminOptions_t *opts, rd_kafka_queue_t *q,
                        void *arg)
{
    struct deletion *d = arg;
    rd_kafka_DeleteTopics(rk, d->dt, d->n, opts, q);
}

/* Delete the topics; one that does not exist counts as deleted.  Returns 0
 * when every one is gone. */
static int delete_topics(rd_kafka_t *rk, char **topics, size_t n, int timeout_ms)
{
    struct deletion d = {.dt = calloc(n, sizeof *d.dt), .n = n};
    int rc = 1;
    if (!d.dt) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        if (!(d.dt[i] = rd_kafka_DeleteTopic_new(topics[i]))) {
            fprintf(stderr, "%s: cannot allocate the deletion of '%s'\n", prog, topics[i]);
            goto out;
        }
    rd_kafka_event_t *ev = admin_call(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS, "DeleteTopics",
                                      timeout_ms, RD_KAFKA_EVENT_DELETETOPICS_RESULT,
                                      send_delete, &d);
    if (!ev)
        goto out;
    const rd_kafka_DeleteTopics_result_t *res = rd_kafka_event_DeleteTopics_result(ev);
    size_t got = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_DeleteTopics_result_topics(res, &got) : NULL;
    rc = tr && got == n ? 0 : 1;
    if (rc)
        fprintf(stderr, "%s: DeleteTopics returned %zu topic results, expected %zu\n", prog, got, n);
    for (size_t i = 0; tr && i < got; i++) {
        if (!tr[i]) { /* librdkafka 2.0 leaves a hole for a topic named twice */
            fprintf(stderr, "%s: DeleteTopics returned no result for topic %zu\n", prog, i + 1);
            rc = 1;
            continue;
        }
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[i]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            continue;
        const char *msg = rd_kafka_topic_result_error_string(tr[i]);
        fprintf(stderr, "%s: cannot delete topic '%s': %s (%s)\n", prog,
                rd_kafka_topic_result_name(tr[i]), msg ? msg : rd_kafka_err2str(err),
                rd_kafka_err2name(err));
        rc = 1;
    }
    rd_kafka_event_destroy(ev);
out:
    for (size_t i = 0; i < n; i++)
        if (d.dt[i])
            rd_kafka_DeleteTopic_destroy(d.dt[i]);
    free(d.dt);
    return rc;
}

/* Wait until metadata lists the topic with every partition led and, for a
 * topic just created, at least `partitions` of them (metadata may lag the
 * creation).  An existing topic is taken as it is.  Returns the partition
 * count seen, or -1. */
static int wait_metadata(rd_kafka_t *rk, const char *topic, int partitions, bool existed,
                         int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    int seen = -1;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) {
        fprintf(stderr, "%s: cannot create topic handle: %s\n", prog,
                rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md) {
            if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                const struct rd_kafka_metadata_topic *t = &md->topics[0];
                int led = 0;
                for (int i = 0; i < t->partition_cnt; i++)
                    if (t->partitions[i].leader >= 0 &&
                        t->partitions[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                        led++;
                if (t->partition_cnt > 0 && led == t->partition_cnt &&
                    (existed || t->partition_cnt >= partitions))
                    seen = t->partition_cnt;
            }
            rd_kafka_metadata_destroy(md);
        }
        if (seen >= 0 || now_ms() >= deadline)
            break;
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    rd_kafka_topic_destroy(rkt);
    if (seen < 0)
        fprintf(stderr, "%s: topic '%s' did not show %d led partitions within %d ms\n",
                prog, topic, partitions, timeout_ms);
    return seen;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL;
    int replication = -1; /* broker default */
    int timeout_ms = 30000;
    bool delete = false;
    static char *configs[64];
    int nconfigs = 0;
    int opt;

    if (argc > 0 && argv[0] && argv[0][0])
        prog = argv[0];
    while ((opt = getopt(argc, argv, "b:r:t:c:dh")) != -1) {
        switch (opt) {
        case 'c':
            if (nconfigs == 64 || !strchr(optarg, '=') || optarg[0] == '=') {
                fprintf(stderr, "%s: invalid topic config '%s' (NAME=VALUE)\n", prog, optarg);
                return 2;
            }
            configs[nconfigs++] = optarg;
            break;
        case 'b':
            brokers = optarg;
            break;
        case 'r':
            if (!parse_int(optarg, -1, 32767, &replication) || replication == 0) {
                fprintf(stderr, "%s: invalid replication factor '%s'\n", prog, optarg);
                return 2;
            }
            break;
        case 't':
            if (!parse_int(optarg, 1, INT_MAX - 10000, &timeout_ms)) {
                fprintf(stderr, "%s: invalid timeout '%s'\n", prog, optarg);
                return 2;
            }
            break;
        case 'd':
            delete = true;
            break;
        case 'h':
            usage();
            return 0;
        default:
            usage();
            return 2;
        }
    }
    if (!brokers || (delete ? argc - optind < 1 : argc - optind != 2)) {
        usage();
        return 2;
    }
    const char *topic = argv[optind];
    int partitions = 0;
    if (!delete && !parse_int(argv[optind + 1], 1, 1000000, &partitions)) {
        fprintf(stderr, "%s: invalid partition count '%s' (must be 1..1000000)\n", prog,
                argv[optind + 1]);
        return 2;
    }

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        fprintf(stderr, "%s: cannot allocate configuration\n", prog);
        return 1;
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "client.id", "scorekeeper-mktopic", errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s: %s\n", prog, errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    /* rd_kafka_new takes ownership of conf only on success. */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "%s: cannot create Kafka handle: %s\n", prog, errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }

    if (delete) {
        int rc = delete_topics(rk, argv + optind, (size_t)(argc - optind), timeout_ms);
        rd_kafka_destroy(rk);
        return rc;
    }
    bool existed = false;
    int rc = create_topic(rk, topic, partitions, replication, timeout_ms, configs, nconfigs,
                          &existed);
    if (rc == 0) {
        int seen = wait_metadata(rk, topic, partitions, existed, timeout_ms);
        if (seen < 0) {
            rc = 1;
        } else if (seen != partitions) {
            /* An existing topic with another shape is not what was asked. */
            fprintf(stderr, "%s: topic '%s' exists with %d partitions, not %d\n", prog, topic,
                    seen, partitions);
            rc = 1;
        }
    }
    rd_kafka_destroy(rk);
    return rc;
}
