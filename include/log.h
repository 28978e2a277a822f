/* log — one line per notable event, to the journal with fields when stderr
 * is the journal (JOURNAL_STREAM), else to stderr as plain text.
 *
 * The context fields become journal fields (TOPIC=, PARTITION=, OFFSET=,
 * GAME_ID=, DB_ERRNO=, DB_CONN=) so on-call can filter with journalctl. */
#pragma once
#include <stdint.h>

/* syslog(3) priorities, so that a level is also the journal's PRIORITY=. */
enum sk_log_level { SK_LOG_ERR = 3, SK_LOG_WARNING = 4, SK_LOG_NOTICE = 5, SK_LOG_INFO = 6, SK_LOG_DEBUG = 7 };


struct sk_log_ctx {
    const char *topic;  /* NULL: none */
    int32_t partition;  /* -1: none */
    int64_t offset;     /* -1: none */
    int64_t game_id;    /* 0: none */
    unsigned db_errno;  /* 0: none */
    int db_conn;        /* -1: none */
};
#define SK_LOG_CTX_NONE ((struct sk_log_ctx){NULL, -1, -1, 0, 0, -1})

void sk_log_init(const char *ident);
void sk_log_set_level(enum sk_log_level level);
int sk_log_enabled(enum sk_log_level level); /* non-zero when lines of level are written */

void sk_logc(enum sk_log_level level, const struct sk_log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(...) sk_logc(SK_LOG_ERR, NULL, __VA_ARGS__)
#define log_warning(...) sk_logc(SK_LOG_WARNING, NULL, __VA_ARGS__)
#define log_notice(...) sk_logc(SK_LOG_NOTICE, NULL, __VA_ARGS__)
#define log_info(...) sk_logc(SK_LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (sk_log_enabled(SK_LOG_DEBUG))                                                          \
            sk_logc(SK_LOG_DEBUG, NULL, __VA_ARGS__);                                              \
    } while (0)
