/* log — see include/log.h. */
#include "log.h"

#include "hash.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

static enum sk_log_level g_level = SK_LOG_INFO;

/* Rate limit per call site (its format string) and partition: at most
 * RL_BURST lines per RL_WINDOW; the rest are counted and summed up in one
 * line when the window ends, so a flapping database cannot flood the
 * journal.  The partition is part of the key because lines about different
 * partitions are not "similar": a busy partition pausing and resuming many
 * times a second must not hide the one line saying that a partition held
 * back by a locked game resumed.  The topic is kept as a hash, not a
 * pointer: the partition that owned the string may be gone by the next
 * line. */
#define RL_BURST 10
#define RL_WINDOW_NS (10ll * 1000000000ll)
#define RL_SLOTS 256
#define RL_PROBE 8
struct rl_slot {
    const char *fmt; /* NULL: free */
    uint64_t topic_hash;
    int32_t partition;
    long long window_start;
    unsigned count;
    unsigned suppressed;
};
static struct rl_slot g_rl[RL_SLOTS];
static bool g_journal;
static const char *g_ident = "scorekeeper";

/* stderr is the journal when JOURNAL_STREAM names stderr's device:inode
 * (systemd.exec(5)); then structured fields are worth sending. */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    if (!js)
        return false;
    unsigned long long dev, ino;
    if (sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void sk_log_init(const char *ident)
{
    if (ident)
        g_ident = ident;
    g_journal = stderr_is_journal();
}

void sk_log_set_level(enum sk_log_level level) { g_level = level; }
int sk_log_enabled(enum sk_log_level level) { return level <= g_level; }

static const char *level_name(enum sk_log_level l)
{
    switch (l) {
    case SK_LOG_ERR: return "error";
    case SK_LOG_WARNING: return "warning";
    case SK_LOG_NOTICE: return "notice";
    case SK_LOG_INFO: return "info";
    case SK_LOG_DEBUG: return "debug";
    }
    return "?";
}

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void emit(enum sk_log_level level, const struct sk_log_ctx *ctx, const char *msg);

static uint64_t topic_hash(const char *topic)
{
    return topic ? sk_hash_bytes(topic, strlen(topic)) : sk_hash_bytes("", 0);
}

/* The slot for this key: its own if it has one; else a free one or one
 * whose window ended with nothing to report; else one whose window ended
 * (its count of suppressed lines is then lost).  NULL when all RL_PROBE
 * candidates are live windows of other keys: the line is then logged
 * unlimited rather than lost. */
static struct rl_slot *rl_slot_for(const char *fmt, uint64_t th, int32_t part, long long now)
{
    size_t h = (((size_t)(uintptr_t)fmt >> 4) ^ (size_t)th ^ ((size_t)(uint32_t)part * 31u));
    struct rl_slot *reuse = NULL, *ended = NULL;
    for (size_t i = 0; i < RL_PROBE; i++) {
        struct rl_slot *r = &g_rl[(h + i) % RL_SLOTS];
        if (r->fmt == fmt && r->topic_hash == th && r->partition == part)
            return r;
        bool over = !r->fmt || now - r->window_start >= RL_WINDOW_NS;
        if (over && !r->suppressed && !reuse)
            reuse = r;
        else if (over && !ended)
            ended = r;
    }
    struct rl_slot *r = reuse ? reuse : ended;
    if (r)
        *r = (struct rl_slot){.fmt = fmt, .topic_hash = th, .partition = part, .window_start = now};
    return r;
}

/* Returns how many lines of this key were suppressed in the window that
 * just ended (to be reported), or -1 when this line is suppressed. */
static long rate_limit(const char *fmt, const struct sk_log_ctx *ctx)
{
    long long now = mono_ns();
    struct rl_slot *r = rl_slot_for(fmt, topic_hash(ctx ? ctx->topic : NULL),
                                    ctx ? ctx->partition : -1, now);
    if (!r)
        return 0;
    if (now - r->window_start >= RL_WINDOW_NS) {
        long prev = (long)r->suppressed;
        r->window_start = now;
        r->count = 1;
        r->suppressed = 0;
        return prev;
    }
    if (++r->count <= RL_BURST)
        return 0;
    r->suppressed++;
    return -1;
}

void sk_logc(enum sk_log_level level, const struct sk_log_ctx *ctx, const char *fmt, ...)
{
    if (level > g_level)
        return;
    long suppressed = level < SK_LOG_DEBUG ? rate_limit(fmt, ctx) : 0;
    if (suppressed < 0)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (suppressed > 0) {
        char note[2200];
        snprintf(note, sizeof note, "%ld similar messages suppressed in the last %lld s; latest: %s",
                 suppressed, RL_WINDOW_NS / 1000000000ll, msg);
        emit(level, ctx, note);
        return;
    }
    emit(level, ctx, msg);
}

static void emit(enum sk_log_level level, const struct sk_log_ctx *ctx, const char *msg)
{
    struct sk_log_ctx none = SK_LOG_CTX_NONE;
    if (!ctx)
        ctx = &none;

    if (g_journal) {
        /* Up to 6 context fields, sent only when they apply. */
        char f[6][96];
        struct iovec iov[9];
        int n = 0;
        char m[2100], p[32], id[64];
        snprintf(m, sizeof m, "MESSAGE=%s", msg);
        snprintf(p, sizeof p, "PRIORITY=%d", (int)level);
        snprintf(id, sizeof id, "SYSLOG_IDENTIFIER=%s", g_ident);
        iov[n++] = (struct iovec){m, strlen(m)};
        iov[n++] = (struct iovec){p, strlen(p)};
        iov[n++] = (struct iovec){id, strlen(id)};
        int k = 0;
        if (ctx->topic)
            snprintf(f[k++], sizeof f[0], "TOPIC=%s", ctx->topic);
        if (ctx->partition >= 0)
            snprintf(f[k++], sizeof f[0], "PARTITION=%d", (int)ctx->partition);
        if (ctx->offset >= 0)
            snprintf(f[k++], sizeof f[0], "OFFSET=%lld", (long long)ctx->offset);
        if (ctx->game_id > 0)
            snprintf(f[k++], sizeof f[0], "GAME_ID=%lld", (long long)ctx->game_id);
        if (ctx->db_errno)
            snprintf(f[k++], sizeof f[0], "DB_ERRNO=%u", ctx->db_errno);
        if (ctx->db_conn >= 0)
            snprintf(f[k++], sizeof f[0], "DB_CONN=%d", ctx->db_conn);
        for (int i = 0; i < k; i++)
            iov[n++] = (struct iovec){f[i], strlen(f[i])};
        if (sd_journal_sendv(iov, n) >= 0)
            return;
        /* fall through to stderr if the journal refuses */
    }

    char extra[256] = "";
    size_t e = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(extra + e, sizeof extra - e, __VA_ARGS__);                               \
        if (w_ > 0 && (size_t)w_ < sizeof extra - e)                                               \
            e += (size_t)w_;                                                                       \
    } while (0)
    if (ctx->topic)
        ADD(" topic=%s", ctx->topic);
    if (ctx->partition >= 0)
        ADD(" partition=%d", (int)ctx->partition);
    if (ctx->offset >= 0)
        ADD(" offset=%lld", (long long)ctx->offset);
    if (ctx->game_id > 0)
        ADD(" game=%lld", (long long)ctx->game_id);
    if (ctx->db_errno)
        ADD(" db_errno=%u", ctx->db_errno);
    if (ctx->db_conn >= 0)
        ADD(" conn=db#%d", ctx->db_conn);
#undef ADD
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %s[%d]: %s: %s%s%s\n", when, ts.tv_nsec / 1000000L, g_ident,
            (int)getpid(), level_name(level), msg, e ? " |" : "", extra);
}
