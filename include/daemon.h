/* daemon — the running service: one sd-event loop that drives the Kafka
 * consumer and producer, the database pool, batching, results, offsets,
 * signals and sd_notify.
 *
 * Lifecycle: STARTING (connecting) -> RUNNING (READY=1 sent once the
 * database answers and the consumer group assigned us) -> DRAINING (SIGTERM:
 * no new input, in-flight batches finish, results are delivered, offsets
 * committed) -> CLOSING (consumer leaves the group, connections close) ->
 * exit.  The drain has a deadline (shutdown.timeout_ms). */
#pragma once

#include "config.h"
#include "settings.h"

/* Runs until SIGTERM/SIGINT or a fatal error; returns the exit code.  src
 * is read again on SIGHUP. */
int sk_daemon_run(struct sk_config *cfg, const struct sk_settings_src *src);
