#!/usr/bin/env bash
# The README's first command keeps working: `make demo` (on the stack this
# test run uses) plays its quiz, every event gets a result, a player who
# leaves is deleted, and the leaderboard equals the totals computed from the
# published events.
source "$(dirname "$0")/../lib/testlib.sh"
if [[ $SK_STACK_OURS != 1 ]]; then
    tap_skip "make demo" "the demo needs the private stack's admin socket"
    tap_done
    exit 0
fi
out=$SK_TEST_TMP/demo.out
rc=0
"$SK_ROOT/tests/demo/demo.sh" >"$out" 2>&1 || rc=$?
tap_is "make demo exits 0" "$rc" 0
tap_check "every published event got its result" grep -qE 'received ([0-9]+) of \1 results' "$out"
tap_check "the leaderboard is verified against the published events" grep -q 'leaderboard verified' "$out"
tap_check "the player who left was deleted, with their scores" grep -q 'dmitri is gone from users' "$out"
tap_check "and the tombstone's result says deleted" grep -q '"status":"deleted","user_id":[0-9]*,"username":"dmitri"' "$out"
tap_check "the daemon stopped cleanly" grep -q 'daemon exited with 0' "$out"
[[ $rc == 0 ]] || tap_diag "$(tail -n 30 "$out")"
tap_done
