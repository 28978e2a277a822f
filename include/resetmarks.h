/* resetmarks — `scorekeeper reset-marks --topic T [--partition N]`: delete
 * the game_offsets marks of a topic (or of one of its partitions), so that
 * a partition the daemon refused for reused offsets (consumer.h) is
 * applied again.  An operator's command, run once with an administrative
 * account in db.url (the runtime account may not DELETE, sql/grants.sql);
 * like migrate it runs one connection of the non-blocking pool on its own
 * short loop.  It prints what each partition held before it deleted it. */
#pragma once
#include <stdint.h>

#include "config.h"

/* partition -1: every partition of the topic.  Returns a sysexits-style
 * exit code: 0, 69 (database unreachable), 77 (the account may not
 * delete), 1 (any other failure), 70 (internal). */
int sk_resetmarks_run(const struct sk_config *cfg, const char *topic, int32_t partition);
