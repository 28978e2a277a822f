#!/usr/bin/env bash
# Stop the private Kafka broker and MariaDB started by stack-up.sh and delete
# all their data.  Safe to run when nothing (or only half a stack) runs.
set -euo pipefail
# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sk_lock
if [[ ! -d $SK_STATE && ! -f $SK_ENV_FILE ]]; then
    sk_log "no stack running; nothing to do"
    exit 0
fi
sk_teardown
sk_log "stack stopped and its data removed"
