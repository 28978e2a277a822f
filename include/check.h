/* check — `scorekeeper --check-config`: show the effective settings with
 * secrets masked, then try to reach MariaDB and Kafka and say which one
 * failed and why.  Exit codes follow sysexits: 0 all good, 69 a service
 * is unreachable (EX_UNAVAILABLE), 78 a kafka.* property librdkafka
 * refuses for either client (EX_CONFIG, as the daemon).  The other
 * configuration errors (78) are caught before this runs. */
#pragma once

#include "config.h"

/* Returns the exit code: 0, 69 or 78. */
int sk_check_run(const struct sk_config *cfg);
