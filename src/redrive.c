/* redrive — dead letters back to their source topic, see include/redrive.h.
 *
 * A command, not the daemon: it runs before any loop and may block. */
#include "redrive.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "kafka.h"
#include "log.h"

#define EX_USAGE 64
#define EX_UNAVAILABLE 69
#define TIMEOUT_MS 30000
#define CHUNK 1000        /* copies per transaction */
#define PROGRESS_S 5      /* a progress line this often on long runs */

static bool parse_i64(const char *v, int64_t max, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < 0 || n > max)
        return false;
    *out = n;
    return true;
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "scorekeeper: redrive: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (try --help)\n");
    va_end(ap);
    return EX_USAGE;
}

/* --code a,b: each a lower-case code as in results and sk-error-code. */
static int add_codes(struct sk_redrive_args *a, char *v)
{
    for (char *save = NULL, *c = strtok_r(v, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
        if (strspn(c, "abcdefghijklmnopqrstuvwxyz_0123456789") != strlen(c))
            return usage_error("\"%s\" is not an error code", c);
        if (a->n_codes == SK_REDRIVE_MAX_CODES)
            return usage_error("%s: too many codes", c);
        a->codes[a->n_codes++] = c;
    }
    return a->n_codes ? 0 : usage_error("%s needs at least one code", "--code");
}

int sk_redrive_args_parse(int argc, char **argv, struct sk_redrive_args *a)
{
    *a = (struct sk_redrive_args){.partition = -1, .from = -1, .to = -1};
    for (int i = 0; i < argc; i++) {
        char *arg = argv[i], *v = NULL;
        if (!strcmp(arg, "--dry-run")) {
            a->dry_run = true;
            continue;
        }
        char *eq = strchr(arg, '=');
        if (eq) {
            *eq = '\0';
            v = eq + 1;
        }
        static const char *const known[] = {"--code",   "--source-topic", "--to",
                                            "--partition", "--offsets",   "--group"};
        size_t k = 0;
        while (k < sizeof known / sizeof *known && strcmp(known[k], arg))
            k++;
        if (k == sizeof known / sizeof *known)
            return usage_error("unknown argument \"%s\"", arg);
        if (!v && i + 1 < argc)
            v = argv[++i];
        if (!v)
            return usage_error("%s needs a value", arg);
        int64_t n;
        if (!strcmp(arg, "--code")) {
            int rc = add_codes(a, v);
            if (rc)
                return rc;
        } else if (!strcmp(arg, "--source-topic") || !strcmp(arg, "--to")) {
            if (!sk_kafka_topic_name_ok(v))
                return usage_error("\"%s\" is not a Kafka topic name", v);
            *(arg[2] == 's' ? &a->source_topic : &a->to_topic) = v;
        } else if (!strcmp(arg, "--partition")) {
            if (!parse_i64(v, INT32_MAX, &n))
                return usage_error("\"%s\" is not a partition number", v);
            a->partition = (int32_t)n;
        } else if (!strcmp(arg, "--offsets")) {
            /* A-B, A- or -B, inclusive */
            char *dash = strchr(v, '-');
            if (!dash)
                return usage_error("--offsets \"%s\": want FROM-TO, FROM- or -TO", v);
            *dash = '\0';
            if ((*v && !parse_i64(v, INT64_MAX, &a->from)) ||
                (dash[1] && !parse_i64(dash + 1, INT64_MAX, &a->to)) || (!*v && !dash[1]) ||
                (a->from >= 0 && a->to >= 0 && a->to < a->from))
                return usage_error("--offsets \"%s\": want FROM-TO, FROM- or -TO", v);
        } else if (!strcmp(arg, "--group")) {
            if (!*v)
                return usage_error("%s needs a value", arg);
            a->group = v;
        }
    }
    return 0;
}

/* What a run is about, the counters of its summary. */
struct run {
    const struct sk_config *cfg;
    const struct sk_redrive_args *a;
    char group[512];
    rd_kafka_t *consumer, *producer;
    rd_kafka_topic_partition_list_t *pos; /* next offset to read, per dead-letter partition */
    int64_t *end;                         /* the end seen at start, per partition */
    int32_t n_parts;
    bool in_txn;
    unsigned long examined, matched, sent, cut, foreign;
    unsigned long total; /* copies between the positions and the ends at start */
};

/* The group holding the position: by default one per selection, so that a
 * run with other filters looks at the copies this one passed over. */
static void derive_group(struct run *r)
{
    const struct sk_redrive_args *a = r->a;
    if (a->group) {
        snprintf(r->group, sizeof r->group, "%s", a->group);
        return;
    }
    int n = snprintf(r->group, sizeof r->group, "%s-redrive", r->cfg->group_id);
    for (size_t i = 0; i < a->n_codes && n > 0 && (size_t)n < sizeof r->group; i++)
        n += snprintf(r->group + n, sizeof r->group - (size_t)n, "%s%s", i ? "+" : "-code=",
                      a->codes[i]);
    if (a->source_topic && n > 0 && (size_t)n < sizeof r->group)
        n += snprintf(r->group + n, sizeof r->group - (size_t)n, "-topic=%s", a->source_topic);
    if (a->partition >= 0 && n > 0 && (size_t)n < sizeof r->group)
        n += snprintf(r->group + n, sizeof r->group - (size_t)n, "-partition=%" PRId32,
                      a->partition);
    if ((a->from >= 0 || a->to >= 0) && n > 0 && (size_t)n < sizeof r->group) {
        char f[24] = "", t[24] = "";
        if (a->from >= 0)
            snprintf(f, sizeof f, "%" PRId64, a->from);
        if (a->to >= 0)
            snprintf(t, sizeof t, "%" PRId64, a->to);
        snprintf(r->group + n, sizeof r->group - (size_t)n, "-offsets=%s-%s", f, t);
    }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    char why[512];
    if (sk_kafka_error(rk, err, reason, why, sizeof why))
        log_error("redrive: %s", why);
}

static rd_kafka_t *client(struct run *r, bool consumer)
{
    rd_kafka_conf_t *c = sk_kafka_conf_client(r->cfg, consumer, r, on_error);
    if (!c)
        return NULL;
    char e[256];
    const char *k = consumer ? "group.id" : "transactional.id";
    if (rd_kafka_conf_set(c, k, r->group, e, sizeof e) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(c, "client.id", "scorekeeper-redrive", e, sizeof e) != RD_KAFKA_CONF_OK ||
        (consumer && rd_kafka_conf_set(c, "enable.partition.eof", "true", e, sizeof e) !=
                         RD_KAFKA_CONF_OK)) {
        log_error("redrive: cannot set %s: %s", k, e);
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    return sk_kafka_new(c, consumer);
}

/* The dead-letter partitions, their group positions and ends.  0, or an
 * exit code (said). */
static int find_range(struct run *r)
{
    const char *dlq = r->cfg->topic_dead_letter;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->consumer, dlq, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rkt ? rd_kafka_metadata(r->consumer, 0, rkt, &md, TIMEOUT_MS)
                                : rd_kafka_last_error();
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        log_error("redrive: cannot read the partitions of %s: %s", dlq,
                  rd_kafka_err2str(e ? e : md->topic_cnt ? md->topics[0].err
                                                          : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        if (md)
            rd_kafka_metadata_destroy(md);
        return EX_UNAVAILABLE;
    }
    r->n_parts = md->topics[0].partition_cnt;
    r->pos = rd_kafka_topic_partition_list_new(r->n_parts);
    for (int32_t i = 0; i < r->n_parts; i++)
        rd_kafka_topic_partition_list_add(r->pos, dlq, md->topics[0].partitions[i].id);
    rd_kafka_metadata_destroy(md);
    r->end = calloc((size_t)r->n_parts + 1, sizeof *r->end);
    if (!r->end)
        return EXIT_FAILURE;
    e = rd_kafka_committed(r->consumer, r->pos, TIMEOUT_MS);
    if (e) {
        log_error("redrive: cannot read the position of group %s: %s", r->group,
                  rd_kafka_err2str(e));
        return EX_UNAVAILABLE;
    }
    for (int32_t i = 0; i < r->n_parts; i++) {
        rd_kafka_topic_partition_t *p = &r->pos->elems[i];
        int64_t lo = 0, hi = 0;
        e = rd_kafka_query_watermark_offsets(r->consumer, dlq, p->partition, &lo, &hi, TIMEOUT_MS);
        if (e) {
            log_error("redrive: cannot read the offsets of %s [%" PRId32 "]: %s", dlq,
                      p->partition, rd_kafka_err2str(e));
            return EX_UNAVAILABLE;
        }
        if (p->offset < lo) /* no position yet, or its copies expired */
            p->offset = lo;
        r->end[i] = hi;
        if (hi > p->offset)
            r->total += (unsigned long)(hi - p->offset);
    }
    return 0;
}

static bool header(rd_kafka_headers_t *h, const char *name, char *out, size_t outlen)
{
    const void *v;
    size_t n;
    if (!h || rd_kafka_header_get_last(h, name, &v, &n) || !v || n >= outlen)
        return false;
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}

/* Does this copy match the filters?  Fills its source topic. */
static bool matches(const struct run *r, rd_kafka_headers_t *h, char *src, size_t srclen,
                    char *code, size_t codelen, int64_t *src_part, int64_t *src_off)
{
    const struct sk_redrive_args *a = r->a;
    char part[24], off[24];
    if (!header(h, "sk-source-topic", src, srclen) || !header(h, "sk-error-code", code, codelen) ||
        !header(h, "sk-source-partition", part, sizeof part) ||
        !header(h, "sk-source-offset", off, sizeof off) || !parse_i64(part, INT32_MAX, src_part) ||
        !parse_i64(off, INT64_MAX, src_off))
        return false;
    bool code_ok = !a->n_codes;
    for (size_t i = 0; i < a->n_codes && !code_ok; i++)
        code_ok = !strcmp(a->codes[i], code);
    return code_ok && (!a->source_topic || !strcmp(a->source_topic, src)) &&
           (a->partition < 0 || a->partition == *src_part) && (a->from < 0 || *src_off >= a->from) &&
           (a->to < 0 || *src_off <= a->to);
}

static bool txn_ok(rd_kafka_error_t *err, const char *what)
{
    if (!err)
        return true;
    log_error("redrive: %s failed: %s", what, rd_kafka_error_string(err));
    rd_kafka_error_destroy(err);
    return false;
}

static bool begin(struct run *r)
{
    if (r->a->dry_run || r->in_txn)
        return true;
    r->in_txn = txn_ok(rd_kafka_begin_transaction(r->producer), "beginning a transaction");
    return r->in_txn;
}

/* Commit the copies sent so far together with the positions read so far. */
static bool commit(struct run *r)
{
    if (r->a->dry_run)
        return true;
    if (!begin(r)) /* the position moves also over copies that matched nothing */
        return false;
    rd_kafka_consumer_group_metadata_t *cgm = rd_kafka_consumer_group_metadata(r->consumer);
    bool ok = txn_ok(rd_kafka_send_offsets_to_transaction(r->producer, r->pos, cgm, TIMEOUT_MS),
                     "sending the position") &&
              txn_ok(rd_kafka_commit_transaction(r->producer, TIMEOUT_MS), "committing");
    rd_kafka_consumer_group_metadata_destroy(cgm);
    r->in_txn = false;
    return ok;
}

/* Send one copy again: its key and bytes, its headers less ours, and where
 * it came from. */
static bool send_copy(struct run *r, const rd_kafka_message_t *m, rd_kafka_headers_t *h,
                      const char *topic)
{
    rd_kafka_headers_t *out = rd_kafka_headers_new(8);
    const char *name;
    const void *v;
    size_t n;
    for (size_t i = 0; h && !rd_kafka_header_get_all(h, i, &name, &v, &n); i++)
        if (strncmp(name, "sk-", 3))
            rd_kafka_header_add(out, name, -1, v, (ssize_t)n);
    char from[300];
    snprintf(from, sizeof from, "%s/%" PRId32 "/%" PRId64, r->cfg->topic_dead_letter,
             m->partition, m->offset);
    rd_kafka_header_add(out, "sk-redriven-from", -1, from, -1);
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            r->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(m->key, m->key_len),
            RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(out), RD_KAFKA_V_END);
        if (!e)
            return true;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_headers_destroy(out); /* not taken over on failure */
            log_error("redrive: cannot send %s to %s: %s", from, topic, rd_kafka_err2str(e));
            return false;
        }
        rd_kafka_poll(r->producer, 100);
    }
}

static void progress(struct run *r, time_t *last, bool force)
{
    time_t now = time(NULL);
    if (!force && now - *last < PROGRESS_S)
        return;
    *last = now;
    fprintf(stderr, "redrive: %lu of %lu dead letters examined, %lu matched, %lu %s\n",
            r->examined, r->total, r->matched, r->a->dry_run ? r->matched - r->cut : r->sent,
            r->a->dry_run ? "would be sent" : "sent");
}

/* One message of the dead-letter topic.  False on a failure (said). */
static bool one(struct run *r, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    r->examined++;
    char src[256], code[64], trunc[8];
    int64_t sp = 0, so = 0;
    if (!matches(r, h, src, sizeof src, code, sizeof code, &sp, &so)) {
        if (!header(h, "sk-source-topic", src, sizeof src))
            r->foreign++;
        return true;
    }
    r->matched++;
    const char *to = r->a->to_topic ? r->a->to_topic : src;
    if (header(h, "sk-truncated", trunc, sizeof trunc)) {
        r->cut++;
        log_warning("redrive: %s [%" PRId32 "] offset %" PRId64 " (%s [%" PRId64 "] offset %" PRId64
                    ", %s) was cut to fit the dead-letter topic: its original bytes are gone, "
                    "not re-driven",
                    r->cfg->topic_dead_letter, m->partition, m->offset, src, sp, so, code);
        return true;
    }
    if (r->a->dry_run) {
        printf("would re-drive %s [%" PRId32 "] offset %" PRId64 " to %s: from %s [%" PRId64
               "] offset %" PRId64 ", %s, key \"%.*s\", %zu bytes\n",
               r->cfg->topic_dead_letter, m->partition, m->offset, to, src, sp, so, code,
               (int)(m->key_len > 64 ? 64 : m->key_len), m->key ? (const char *)m->key : "",
               m->len);
        return true;
    }
    if (!begin(r) || !send_copy(r, m, h, to))
        return false;
    r->sent++;
    return true;
}

/* Read every partition up to its end at start. */
static int read_all(struct run *r)
{
    int32_t left = 0;
    bool *done = calloc((size_t)r->n_parts + 1, sizeof *done);
    if (!done)
        return EXIT_FAILURE;
    for (int32_t i = 0; i < r->n_parts; i++)
        if (!(done[i] = r->pos->elems[i].offset >= r->end[i]))
            left++;
    rd_kafka_resp_err_t e = left ? rd_kafka_assign(r->consumer, r->pos) : 0;
    if (e) {
        free(done);
        log_error("redrive: cannot read %s: %s", r->cfg->topic_dead_letter, rd_kafka_err2str(e));
        return EX_UNAVAILABLE;
    }
    time_t last = time(NULL), quiet = last;
    unsigned long chunk = 0;
    int rc = 0;
    while (left && !rc) {
        if (r->producer)
            rd_kafka_poll(r->producer, 0);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->consumer, 500);
        if (!m) {
            if (time(NULL) - quiet > TIMEOUT_MS / 1000) {
                log_error("redrive: %s gave nothing for %d s with %" PRId32
                          " partitions not read to their end; stopping",
                          r->cfg->topic_dead_letter, TIMEOUT_MS / 1000, left);
                rc = EX_UNAVAILABLE;
            }
            continue;
        }
        quiet = time(NULL);
        int32_t i = 0;
        while (i < r->n_parts && r->pos->elems[i].partition != m->partition)
            i++;
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            log_error("redrive: reading %s: %s", r->cfg->topic_dead_letter,
                      rd_kafka_message_errstr(m));
            rc = EXIT_FAILURE;
        } else if (i < r->n_parts && !done[i]) {
            if (!m->err && m->offset < r->end[i]) {
                if (!one(r, m))
                    rc = EXIT_FAILURE;
                r->pos->elems[i].offset = m->offset + 1;
                chunk++;
            }
            if (m->err || m->offset + 1 >= r->end[i]) {
                done[i] = true;
                left--;
            }
        }
        rd_kafka_message_destroy(m);
        if (!rc && (chunk >= CHUNK || !left)) {
            if (!commit(r))
                rc = EXIT_FAILURE;
            chunk = 0;
        }
        progress(r, &last, false);
    }
    free(done);
    return rc;
}

int sk_redrive_run(const struct sk_config *cfg, const struct sk_redrive_args *a)
{
    struct run r = {.cfg = cfg, .a = a};
    derive_group(&r);
    int rc = EX_UNAVAILABLE;
    r.consumer = client(&r, true);
    if (!r.consumer)
        goto out;
    if ((rc = find_range(&r)))
        goto out;
    fprintf(stderr, "redrive: %lu dead letters in %s after the position of group %s%s\n", r.total,
            cfg->topic_dead_letter, r.group, a->dry_run ? " (dry run: nothing is sent)" : "");
    if (r.total && !a->dry_run) {
        rc = EX_UNAVAILABLE;
        r.producer = client(&r, false);
        if (!r.producer ||
            !txn_ok(rd_kafka_init_transactions(r.producer, TIMEOUT_MS), "starting transactions"))
            goto out;
    }
    rc = r.total ? read_all(&r) : 0;
    progress(&r, &(time_t){0}, true);
    if (rc) {
        if (r.in_txn)
            txn_ok(rd_kafka_abort_transaction(r.producer, TIMEOUT_MS), "aborting");
        fprintf(stderr, "redrive: stopped; the copies of the last transaction were not sent "
                        "(a new run with the same filters goes on from where this one stopped)\n");
        goto out;
    }
    printf("%s %lu of %lu dead letters matched; %lu %s", a->dry_run ? "dry run:" : "done:",
           r.matched, r.examined, a->dry_run ? r.matched - r.cut : r.sent,
           a->dry_run ? "would be sent" : "sent");
    if (r.cut)
        printf("; %lu cut to fit the dead-letter topic, not re-driven", r.cut);
    if (r.foreign)
        printf("; %lu not scorekeeper dead letters, skipped", r.foreign);
    printf("; group %s%s\n", r.group,
           a->dry_run ? " not moved" : " is past them (a second run sends none again)");
out:
    if (r.producer)
        rd_kafka_destroy(r.producer);
    if (r.consumer) {
        rd_kafka_consumer_close(r.consumer);
        rd_kafka_destroy(r.consumer);
    }
    if (r.pos)
        rd_kafka_topic_partition_list_destroy(r.pos);
    free(r.end);
    return rc;
}
