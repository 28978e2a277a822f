/* mktopic — create a Kafka topic with a given number of partitions.
 *
 *   mktopic -b BROKERS [-r REPLICATION] [-t TIMEOUT_MS] TOPIC PARTITIONS
 *
 * Uses librdkafka's Admin API (CreateTopics) and then waits until the
 * broker's metadata shows the topic with all its partitions, so a test can
 * produce to every partition right away.  Exit status 0 when the topic was
 * created or already exists, 1 on any error (printed on stderr), 2 on a
 * usage error.  Test tool: not part of the daemon.
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
            "usage: %s -b BROKERS [-r REPLICATION] [-t TIMEOUT_MS] TOPIC PARTITIONS\n",
            prog);
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

/* Send CreateTopics and wait for its result.  Returns 0 when created or
 * already there (then *existed is set). */
static int create_topic(rd_kafka_t *rk, const char *topic, int partitions,
                        int replication, int timeout_ms, bool *existed)
{
    char errstr[512];
    int rc = 1;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;

    nt = rd_kafka_NewTopic_new(topic, partitions, replication, errstr, sizeof errstr);
    if (!nt) {
        fprintf(stderr, "%s: invalid topic request: %s\n", prog, errstr);
        goto out;
    }
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
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
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);

    /* The request timeout bounds the operation; allow a little more so the
     * timeout is reported by librdkafka with a useful message. */
    ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (!ev) {
        fprintf(stderr, "%s: no CreateTopics result within %d ms\n", prog, timeout_ms + 5000);
        goto out;
    }
    if (rd_kafka_event_type(ev) != RD_KAFKA_EVENT_CREATETOPICS_RESULT) {
        fprintf(stderr, "%s: unexpected event %s\n", prog, rd_kafka_event_name(ev));
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "%s: CreateTopics failed: %s\n", prog, rd_kafka_event_error_string(ev));
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    if (!tr || n != 1) {
        fprintf(stderr, "%s: CreateTopics returned %zu topic results, expected 1\n", prog, n);
        goto out;
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
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (q)
        rd_kafka_queue_destroy(q);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
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
    int opt;

    if (argc > 0 && argv[0] && argv[0][0])
        prog = argv[0];
    while ((opt = getopt(argc, argv, "b:r:t:h")) != -1) {
        switch (opt) {
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
        case 'h':
            usage();
            return 0;
        default:
            usage();
            return 2;
        }
    }
    if (!brokers || argc - optind != 2) {
        usage();
        return 2;
    }
    const char *topic = argv[optind];
    int partitions = 0;
    if (!parse_int(argv[optind + 1], 1, 1000000, &partitions)) {
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

    bool existed = false;
    int rc = create_topic(rk, topic, partitions, replication, timeout_ms, &existed);
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
