/* msg — consumed message lifecycle, see include/msg.h. */
#include "msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct sk_msg *sk_msg_new(struct sk_part *part, int64_t offset)
{
    return sk_msg_new_copy(part, offset, NULL, 0, NULL, 0, NULL, 0);
}

struct sk_msg *sk_msg_new_copy(struct sk_part *part, int64_t offset, const void *payload,
                               size_t len, const void *key, size_t key_len,
                               const struct sk_hdr *hdrs, size_t n_hdrs)
{
    /* Layout: the struct, the header table, then the bytes (header names
     * with their NULs and values, payload, key). */
    size_t bytes = 0;
    for (size_t i = 0; i < n_hdrs; i++)
        bytes += strlen(hdrs[i].name) + 1 + hdrs[i].len;
    bytes += (payload ? len : 0) + key_len;
    size_t size = sizeof(struct sk_msg) + n_hdrs * sizeof *hdrs + bytes;
    struct sk_msg *m = calloc(1, size);
    if (!m)
        return NULL;
    m->size = size;
    m->part = part;
    m->offset = offset;
    m->created_ms = -1;
    struct sk_hdr *table = (struct sk_hdr *)(m + 1);
    char *p = (char *)(table + n_hdrs);
    for (size_t i = 0; i < n_hdrs; i++) {
        size_t n = strlen(hdrs[i].name) + 1;
        memcpy(p, hdrs[i].name, n);
        table[i].name = p;
        p += n;
        if (hdrs[i].len)
            memcpy(p, hdrs[i].value, hdrs[i].len);
        table[i].value = p;
        table[i].len = hdrs[i].len;
        p += hdrs[i].len;
    }
    m->hdrs = n_hdrs ? table : NULL;
    m->n_hdrs = n_hdrs;
    m->raw_null = payload == NULL;
    m->bytes = payload ? len : 0;
    m->raw_size = m->bytes;
    if (payload && len) {
        memcpy(p, payload, len);
        m->raw = p;
        p += len;
    }
    if (key_len) {
        memcpy(p, key, key_len);
        m->key = p;
        m->key_len = key_len;
    }
    return m;
}

void sk_msg_free(struct sk_msg *m)
{
    if (!m)
        return;
    if (m->parsed)
        sk_event_clear(&m->ev);
    free(m->reject_msg);
    free(m->reject_event_id);
    free(m->result);
    if (m->part)
        sk_part_unref(m->part);
    free(m);
}

/* What malloc keeps beside each block, about. */
#define BLOCK_OVERHEAD 16
/* A result's JSON beyond its strings (member names, status, error code,
 * four numbers of at most 20 characters), rounded up. */
#define RESULT_FRAME 256

static size_t slen(const char *s) { return s ? strlen(s) : 0; }

/* A block holding len bytes of text and a NUL. */
static size_t block(size_t len) { return len + 1 + BLOCK_OVERHEAD; }

size_t sk_msg_charge(const struct sk_msg *m)
{
    size_t n = m->size + BLOCK_OVERHEAD;
    size_t quoted; /* the bytes of the strings the result quotes */
    if (m->parsed) {
        quoted = m->ev.event_id_len + m->ev.username_len + m->ev.nickname_len;
        n += block(quoted + m->ev.game_name_len + 3); /* the event's strings, one block */
    } else {
        quoted = slen(m->reject_msg) + slen(m->reject_event_id);
        n += (m->reject_msg ? block(slen(m->reject_msg)) : 0) +
             (m->reject_event_id ? block(slen(m->reject_event_id)) : 0);
    }
    /* The result: each string at most doubles (only '"' and '\\' are
     * escaped: the contract lets no control character through, and
     * rejection messages carry none), the topic name not at all. */
    return n + block(RESULT_FRAME + 2 * quoted + (m->part ? strlen(m->part->topic) : 0));
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
    /* kept until delivered: no room to spare (the buffer grew by doubling) */
    char *p = realloc(b.p, b.len + 1);
    free(m->result);
    m->result = p ? p : b.p; /* ownership moves to the message */
    m->result_len = b.len;
    return 0;
}
