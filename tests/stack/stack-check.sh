#!/usr/bin/env bash
# Exit 0 when the stack in build/stack.env is up and answering; otherwise say
# which service is down, show its log tail and exit 1.
set -euo pipefail
# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if sk_check ''; then
    # shellcheck source=/dev/null
    source "$SK_ENV_FILE"
    printf 'stack healthy: Kafka %s, SASL_SSL %s (pid %s), MariaDB 127.0.0.1:%s (pid %s)\n' \
        "$KAFKA_BROKERS" "${KAFKA_SASL_BROKERS:-none}" "$KAFKA_PID" "$SCOREKEEPER_DB_PORT" "$MARIADB_PID"
    exit 0
fi
exit 1
