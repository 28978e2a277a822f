/* result — build the JSON text of a result event (schemas/result-event.schema.json). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "event.h"

enum sk_status { SK_ST_APPLIED = 1, SK_ST_REJECTED, SK_ST_DUPLICATE };
const char *sk_status_name(enum sk_status s);

struct sk_result {
    enum sk_status status;
    const char *event_id; size_t event_id_len;       /* optional */
    /* source: always present */
    const char *topic; int32_t partition; int64_t offset;
    /* applied/duplicate user events: user_id, username, nickname (nick) */
    /* applied/duplicate score events: game_id, user_id, username, score */
    enum sk_event_kind kind;                         /* 0 when unknown (rejected) */
    int64_t game_id;
    int64_t user_id;
    const char *username; size_t username_len;
    enum sk_nick nick; const char *nickname; size_t nickname_len;
    int64_t score;
    /* rejected */
    enum sk_reject error;
    const char *error_message;
};

/* Append the result's JSON object to b (no trailing newline). */
void sk_result_json(struct sk_buf *b, const struct sk_result *r);
