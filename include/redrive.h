/* redrive — the `redrive` command: dead letters back to the topic they came
 * from, after the cause of their rejection was fixed.
 *
 * It reads the dead-letter topic from its consumer group's position up to
 * the end it saw at start, picks the copies that match the filters, and
 * re-publishes their original key, bytes and headers (less ours, plus
 * sk-redriven-from) in Kafka transactions that also move the group's
 * position: a copy is re-driven at most once per group, even when a run is
 * killed half-way (an aborted transaction is invisible to the daemon, which
 * reads committed messages only).  A run that is not --dry-run needs its own
 * transactional id, the group's name. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define SK_REDRIVE_MAX_CODES 16

struct sk_redrive_args {
    const char *codes[SK_REDRIVE_MAX_CODES]; /* sk-error-code values; none = every code */
    size_t n_codes;
    const char *source_topic; /* sk-source-topic filter, or NULL */
    int32_t partition;        /* sk-source-partition filter, or -1 */
    int64_t from, to;         /* sk-source-offset range, inclusive; -1 = open */
    const char *to_topic;     /* where to send; NULL = each copy's source topic */
    const char *group;        /* the position's group; NULL = derived from the filters */
    bool dry_run;             /* show, send nothing, move nothing */
};

/* Parse the command's own arguments (argv[0] is the first after
 * "redrive").  0, or 64 (EX_USAGE) with the reason on stderr. */
int sk_redrive_args_parse(int argc, char **argv, struct sk_redrive_args *a);

/* Run it: 0 done, 69 Kafka unreachable, 1 failed (what was not committed
 * was not sent, as far as the daemon can see). */
int sk_redrive_run(const struct sk_config *cfg, const struct sk_redrive_args *a);
