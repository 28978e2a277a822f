/* config_int — the insides of config shared by its three files: the
 * shape of a row of the settings table and the typed access to the field
 * a row names.
 *
 * src/config.c owns the table and setting one value (sk_config_set);
 * src/config_kafka.c the kafka.* passthrough keys (per client, refused
 * ones); src/config_text.c the settings as text (the file read, the dump written,
 * --help); src/config_check.c the second pass (sk_config_finish) and what
 * a reload may change.  Nothing outside these files includes this header. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"

#define MASK "********"
#define SHOWN_MAX 64 /* bytes of a value quoted in a message */

#define fail sk_errf /* format the one-line error, return -EINVAL */

enum opt_type { OT_STR, OT_UINT, OT_SIZE, OT_MS, OT_ENUM, OT_BOOL };

enum {
    OF_RELOAD = 1u << 0,      /* a reload may change it */
    OF_SECRET = 1u << 1,      /* never shown */
    OF_NOECHO = 1u << 2,      /* value not quoted in errors (db.url: may hold a password) */
    OF_EMPTY_UNSET = 1u << 3, /* "" means unset (NULL) */
};

struct enum_name {
    const char *name;
    unsigned value;
};

struct opt {
    const char *key;
    const char *alias;
    enum opt_type type;
    size_t off, size;
    uint64_t min, max;
    const char *def; /* NULL: no default (string stays NULL) */
    /* Extra validation for strings; writes why into `why` on failure. */
    bool (*check)(const char *v, char *why, size_t n);
    const struct enum_name *names;
    unsigned flags;
    const char *help;
};

/* The table, in the order of --help and of the dump. */
extern const struct opt config_opts[];
extern const size_t config_nopts;

/* The check of topic names (also how --help tells a topic setting). */
bool config_check_topic(const char *v, char *why, size_t n);

/* A value as it may appear in a message: masked when secret, control
 * characters replaced, cut after SHOWN_MAX bytes. */
/* Whether s holds a control character (refused in every value). */
bool config_has_ctl(const char *s);
const char *config_shown(const char *v, bool secret, char out[SHOWN_MAX + 4]);
bool config_opt_secret(const struct opt *o);
/* Free a string that may hold a secret, overwriting it first. */
void config_wipe_free(char *s);

char *config_get_str(const struct sk_config *c, const struct opt *o);
/* Replace a string setting (frees the old value). */
void config_put_str(struct sk_config *c, const struct opt *o, char *s);
uint64_t config_get_num(const struct sk_config *c, const struct opt *o);
void config_put_num(struct sk_config *c, const struct opt *o, uint64_t x);
/* Text of a setting's value: strings as they are (NULL for unset), numbers
 * in tmp. */
const char *config_value_text(const struct sk_config *c, const struct opt *o, char *tmp, size_t n);
/* The kafka.* passthrough setting key (without "kafka."), or NULL. */
struct sk_kv *config_find_kv(const struct sk_config *c, const char *key);
/* Set a kafka.* key (with its prefix), after refusing secrets, inline
 * private keys and the properties scorekeeper owns; -EINVAL or -ENOMEM
 * with the message in err. */
int config_set_kafka(struct sk_config *c, const char *key, const char *value, const char *origin,
                     char *err, size_t errlen);
/* Store or replace one passthrough setting (key without "kafka."); 0 or
 * -ENOMEM. */
int config_kafka_put(struct sk_config *c, const char *key, const char *value, const char *origin);
/* Remove passthrough setting i (the last one takes its place). */
void config_kafka_drop(struct sk_config *c, size_t i);
/* Is this librdkafka property a secret read only from a file or a
 * credential (its name holds "password" or "secret")? */
bool config_kafka_secret_prop(const char *prop);
/* The message refusing a secret given as a value: where to put it instead.
 * Returns -EINVAL. */
int config_secret_refused(const char *key, const char *origin, char *err, size_t errlen);

/* A size with an optional suffix k, M or G (1024-based). */
bool config_parse_size(const char *s, uint64_t *out);
/* A size with the largest suffix that divides it. */
void config_fmt_size(uint64_t v, char *out, size_t n);
/* What a value of this setting must look like ("expected ..."). */
void config_expected(const struct opt *o, char *out, size_t n);
