/* result — JSON text of a result event, see include/result.h and
 * schemas/result-event.schema.json.  Member order is fixed:
 * event_id, status, game_id, user_id, username, nickname | score | error,
 * source.  user_id is left out when there is no such user. */
#include "result.h"

#include <string.h>

const char *sk_status_name(enum sk_status s)
{
    switch (s) {
    case SK_ST_APPLIED: return "applied";
    case SK_ST_REJECTED: return "rejected";
    case SK_ST_DUPLICATE: return "duplicate";
    case SK_ST_DELETED: return "deleted";
    case SK_ST_NOT_FOUND: return "not_found";
    }
    return "unknown";
}

/* ",\"name\":" for a member name of ours: plain ASCII, nothing to escape. */
#define KEY(b, name) sk_buf_puts(b, ",\"" name "\":")

/* Ids start at 1: 0 means the user does not exist (any more). */
static void user_id(struct sk_buf *b, int64_t id)
{
    if (id <= 0)
        return;
    KEY(b, "user_id");
    sk_buf_i64(b, id);
}

static void str_or_empty(struct sk_buf *b, const char *s, size_t len)
{
    sk_buf_json_str(b, s ? s : "", s ? len : 0);
}

void sk_result_json(struct sk_buf *b, const struct sk_result *r)
{
    sk_buf_putc(b, '{');
    if (r->event_id && r->event_id_len) {
        sk_buf_puts(b, "\"event_id\":");
        sk_buf_json_str(b, r->event_id, r->event_id_len);
        sk_buf_putc(b, ',');
    }
    /* status names and error codes are ASCII words */
    sk_buf_puts(b, "\"status\":\"");
    sk_buf_puts(b, sk_status_name(r->status));
    sk_buf_putc(b, '"');

    if (r->status == SK_ST_REJECTED) {
        const char *code = sk_reject_code(r->error);
        const char *msg = r->error_message ? r->error_message : code;
        KEY(b, "error");
        sk_buf_puts(b, "{\"code\":\"");
        sk_buf_puts(b, code);
        sk_buf_putc(b, '"');
        sk_buf_puts(b, ",\"message\":");
        sk_buf_json_str(b, msg, strlen(msg));
        sk_buf_putc(b, '}');
    } else if (r->kind == SK_EV_SCORE) {
        KEY(b, "game_id");
        sk_buf_i64(b, r->game_id);
        user_id(b, r->user_id);
        KEY(b, "username");
        str_or_empty(b, r->username, r->username_len);
        KEY(b, "score");
        sk_buf_i64(b, r->score);
    } else if (r->kind == SK_EV_USER) {
        user_id(b, r->user_id);
        KEY(b, "username");
        str_or_empty(b, r->username, r->username_len);
        if (r->nick == SK_NICK_SET) {
            KEY(b, "nickname");
            str_or_empty(b, r->nickname, r->nickname_len);
        } else if (r->nick == SK_NICK_NULL) {
            KEY(b, "nickname");
            sk_buf_puts(b, "null");
        }
    }

    KEY(b, "source");
    sk_buf_puts(b, "{\"topic\":");
    str_or_empty(b, r->topic, r->topic ? strlen(r->topic) : 0);
    sk_buf_puts(b, ",\"partition\":");
    sk_buf_i64(b, r->partition);
    sk_buf_puts(b, ",\"offset\":");
    sk_buf_i64(b, r->offset);
    sk_buf_puts(b, "}}");
}
