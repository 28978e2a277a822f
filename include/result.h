/* result — build the JSON text of a result event (schemas/result-event.schema.json). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "event.h"

/* deleted, not_found: the outcomes of a user's tombstone (the user existed
 * and is gone, or there was no such user). */
enum sk_status { SK_ST_APPLIED = 1, SK_ST_REJECTED, SK_ST_DUPLICATE, SK_ST_DELETED, SK_ST_NOT_FOUND };
const char *sk_status_name(enum sk_status s);

struct sk_result {
    enum sk_status status;
    const char *event_id; size_t event_id_len;       /* optional */
    /* source: always present */
    const char *topic; int32_t partition; int64_t offset;
    /* user events: user_id, username, nickname (nick) */
    /* score events: game_id, user_id, username, score */
    /* user_id 0: no such user (not_found, or a duplicate whose user is gone): left out */
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
