/* msg — consumed message lifecycle, see include/msg.h. */
#include "msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct sk_msg *sk_msg_new(struct sk_part *part, int64_t offset)
{
    struct sk_msg *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->part = part;
    m->offset = offset;
    return m;
}

void sk_msg_free(struct sk_msg *m)
{
    if (!m)
        return;
    if (m->parsed)
        sk_event_clear(&m->ev);
    for (size_t i = 0; i < m->n_hdrs; i++) {
        free(m->hdrs[i].name);
        free(m->hdrs[i].value);
    }
    free(m->hdrs);
    free(m->key);
    free(m->reject_msg);
    free(m->reject_event_id);
    free(m->raw);
    free(m->result);
    if (m->part)
        sk_part_unref(m->part);
    free(m);
}

void sk_msg_reject(struct sk_msg *m, enum sk_reject code, const char *message)
{
    m->status = SK_ST_REJECTED;
    m->reject = code;
    free(m->reject_msg);
    m->reject_msg = message ? strdup(message) : NULL;
}

int sk_msg_build_result(struct sk_msg *m)
{
    struct sk_result r = {
        .status = m->status,
        .topic = m->part->topic,
        .partition = m->part->partition,
        .offset = m->offset,
    };
    if (m->parsed) {
        r.event_id = m->ev.event_id;
        r.event_id_len = m->ev.event_id_len;
    } else if (m->reject_event_id) {
        r.event_id = m->reject_event_id;
        r.event_id_len = strlen(m->reject_event_id);
    }
    if (m->status == SK_ST_REJECTED) {
        r.error = m->reject;
        r.error_message = m->reject_msg ? m->reject_msg : sk_reject_code(m->reject);
    } else {
        r.kind = m->ev.kind;
        r.user_id = m->user_id;
        r.username = m->ev.username;
        r.username_len = m->ev.username_len;
        r.nick = m->ev.nick;
        r.nickname = m->ev.nickname;
        r.nickname_len = m->ev.nickname_len;
        r.game_id = m->ev.game_id;
        r.score = m->score;
    }
    struct sk_buf b;
    sk_buf_init(&b);
    sk_result_json(&b, &r);
    if (sk_buf_failed(&b)) {
        sk_buf_free(&b);
        return -ENOMEM;
    }
    free(m->result);
    m->result = b.p; /* ownership moves to the message */
    m->result_len = b.len;
    return 0;
}
