#!/usr/bin/env bash
# The test runner behind `make check`.
#
#   make check                 everything
#   make check T=grants        only tests whose file name contains "grants"
#                              (T may use glob characters: T='1[01]-*')
#
# Steps: install missing packages, build with sanitizers, make sure a stack is
# available (started here and stopped at exit, or reused, or given through
# KAFKA_BROKERS + SCOREKEEPER_DB_URL), then run every unit test binary and
# every tests/integration/NN-*.sh, each under a timeout.
#
# Protocol: test programs print TAP lines "ok N - name" / "not ok N - name"
# (with optional "# SKIP" / "# TODO" directives) and "1..N" plans.  The last
# line of output is always "N passed, M failed" (", K skipped" when something
# was skipped); exit status is 0 only when M == 0 and N > 0.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root"
# shellcheck source=tests/stack/lib.sh
source "$root/tests/stack/lib.sh"

filter=${T:-}
per_test_timeout=${SK_TEST_TIMEOUT:-300}
logdir=$root/build/test-logs
passed=0 failed=0 skipped=0
failures=()

say() { printf '%s\n' "$*"; }
fail() { failed=$((failed + 1)); failures+=("$1"); say "FAIL: $1"; }

summary_and_exit() {
    # Stop a stack we started before printing, so the summary really is the
    # last line of output.
    cleanup
    if [[ ${#failures[@]} -gt 0 ]]; then
        say ""
        say "Failures:"
        local f
        for f in "${failures[@]}"; do say "  - $f"; done
    fi
    say ""
    if ((skipped > 0)); then
        say "$passed passed, $failed failed, $skipped skipped"
    else
        say "$passed passed, $failed failed"
    fi
    if ((failed == 0 && passed > 0)); then exit 0; fi
    exit 1
}

stack_ok=1
started_stack=0
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    if ((started_stack)); then
        started_stack=0
        tests/stack/stack-down.sh || fail "stack: tests/stack/stack-down.sh failed"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ test selection
# Unit tests are named after their sources so a binary left over from a
# deleted test is not run.
shopt -s nullglob
units=() integ=()
for src in tests/unit/test_*.c; do
    name=${src##*/}
    name=${name%.c}
    [[ -z $filter || $name == *$filter* ]] && units+=("build/san/tests/$name")
done
for script in tests/integration/[0-9]*.sh; do
    name=${script##*/}
    [[ -z $filter || $name == *$filter* ]] && integ+=("$script")
done
shopt -u nullglob
if [[ $((${#units[@]} + ${#integ[@]})) -eq 0 ]]; then
    say "no tests${filter:+ match T=$filter}"
    summary_and_exit
fi

# ---------------------------------------------------------------- packages
if ! tests/tools/deps.sh; then
    fail "deps: required packages are missing and could not be installed"
    skipped=$((${#units[@]} + ${#integ[@]}))
    summary_and_exit
fi

# -------------------------------------------------------------------- build
# `make tests` needs src/main.c for the daemon; until that exists on a
# branch, build the unit tests and tools alone (same paths as the Makefile).
mkdir -p build
build_log=build/build.log
targets=(tests)
if [[ ! -f src/main.c ]]; then
    say "note: src/main.c does not exist yet; building unit tests and tools only"
    targets=()
    for src in tests/unit/test_*.c; do [[ -e $src ]] && targets+=("build/san/tests/$(basename "$src" .c)"); done
    for src in tests/tools/*.c; do [[ -e $src ]] && targets+=("build/san/tools/$(basename "$src" .c)"); done
fi
say "=== build: make SANITIZE=1 ${targets[*]:-(nothing)}"
if [[ ${#targets[@]} -gt 0 ]] &&
    ! make --no-print-directory SANITIZE=1 -j"$(nproc)" "${targets[@]}" >"$build_log" 2>&1; then
    tail -n 60 "$build_log" | sed 's/^/    /'
    fail "build: make SANITIZE=1 ${targets[*]} failed (full log: $build_log)"
    skipped=$((${#units[@]} + ${#integ[@]}))
    summary_and_exit
fi

# ------------------------------------------------- slow, cached preparations
# The systemd host tree (built once per machine: minutes) and the Debian
# package are made here, outside every test's timeout; tests 41 and 42 then
# find them ready (and say why when they are not).
need_host=0 need_deb=0
for script in "${integ[@]}"; do
    case ${script##*/} in
    41-*) need_host=1 need_deb=1 ;;
    42-*) need_deb=1 ;;
    esac
done
if ((need_host)) && [[ $(id -u) == 0 ]]; then
    say "=== prepare: the systemd host tree (tests/stack/systemd-host.sh, cached)"
    tests/stack/systemd-host.sh >/dev/null 2>build/host-tree.log ||
        say "note: the systemd host tree could not be built (see build/host-tree.log)"
fi
if ((need_deb)); then
    say "=== prepare: make deb"
    make --no-print-directory deb >build/deb.log 2>&1 || say "note: make deb failed (see build/deb.log)"
fi

# --------------------------------------------------------------- sanitizers
# LeakSanitizer needs ptrace-like access that some containers deny; probe it
# once with a program that leaks on purpose rather than guessing.
detect_leaks=0
probe=build/san/.lsan-probe
mkdir -p build/san
if [[ ! -x $probe ]]; then
    printf '#include <stdlib.h>\nint main(void){void *volatile p = malloc(7); p = 0; (void)p; return 0;}\n' |
        gcc -x c -fsanitize=address -o "$probe" - 2>/dev/null || true
fi
probe_out=''
# The probe exits non-zero when it works, hence `|| true`.
[[ -x $probe ]] && probe_out=$(ASAN_OPTIONS=detect_leaks=1 "$probe" 2>&1 || true)
if [[ $probe_out == *'LeakSanitizer: detected memory leaks'* ]]; then
    detect_leaks=1
else
    say "note: LeakSanitizer does not work here; running with detect_leaks=0"
fi
# Ours first so a caller's own ASAN_OPTIONS/UBSAN_OPTIONS (later wins) can
# override single settings.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=$detect_leaks:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:print_summary=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:print_summary=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
if [[ -f tests/lsan.supp ]]; then
    export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
fi
export CMOCKA_MESSAGE_OUTPUT=TAP
export SK_ROOT=$root

# -------------------------------------------------------------------- stack

if [[ ${#integ[@]} -gt 0 ]]; then
    if sk_external_services; then
        say "=== stack: using KAFKA_BROKERS=$KAFKA_BROKERS and SCOREKEEPER_DB_URL=$SCOREKEEPER_DB_URL from the environment"
        missing=()
        [[ -n ${SCOREKEEPER_DB_ADMIN:-} ]] || missing+=(SCOREKEEPER_DB_ADMIN)
        [[ -n ${SCOREKEEPER_DB_PASSWORD_FILE:-} ]] || missing+=(SCOREKEEPER_DB_PASSWORD_FILE)
        if [[ ${#missing[@]} -gt 0 ]]; then
            fail "stack: external services given but ${missing[*]} not set (see tests/README.md)"
            stack_ok=0
        fi
    else
        # Whatever a sourced stack.env left in our environment describes
        # build/stack.env at best; re-read the file instead.
        unset KAFKA_BROKERS SCOREKEEPER_DB_URL SCOREKEEPER_DB_PASSWORD_FILE \
            SCOREKEEPER_DB_SOCKET SCOREKEEPER_DB_PORT SCOREKEEPER_DB_ADMIN \
            KAFKA_PID MARIADB_PID SK_STACK_DIR KAFKA_LOG MARIADB_LOG
        if [[ -f $SK_ENV_FILE ]]; then
            say "=== stack: build/stack.env exists; checking that stack"
            if msg=$(tests/stack/stack-check.sh 2>&1); then
                say "$msg (reusing it, leaving it running)"
            else
                printf '%s\n' "$msg" | sed 's/^/    /'
                fail "stack: the running stack is unhealthy: $(printf '%s\n' "$msg" | grep -m1 'not answering' || echo 'see above') -- run make stack-down, then make check"
                stack_ok=0
            fi
        else
            say "=== stack: starting a private stack (stopped again at exit)"
            started_stack=1
            if ! tests/stack/stack-up.sh; then
                fail "stack: tests/stack/stack-up.sh failed"
                stack_ok=0
            fi
        fi
    fi
fi

# ---------------------------------------------------------------- run tests
rm -rf -- "$logdir"
mkdir -p "$logdir"

run_one() {
    local name=$1
    shift
    local log=$logdir/$name.log rc=0 start=$SECONDS
    say ""
    say "=== $name"
    timeout -k 10 "$per_test_timeout" "$@" >"$log" 2>&1 </dev/null || rc=$?
    sed 's/^/    /' "$log"
    local ok=0 notok=0 skip=0 planned=0 line n
    while IFS= read -r line; do
        if [[ $line =~ ^(not\ )?ok([[:space:]]|$) ]]; then
            if [[ ${line,,} =~ \#[[:space:]]*(skip|todo) ]]; then
                skip=$((skip + 1))
            elif [[ $line == ok* ]]; then
                ok=$((ok + 1))
            else
                notok=$((notok + 1))
                fail "$name: $line"
            fi
        elif [[ $line =~ ^1\.\.([0-9]+) ]]; then
            n=${BASH_REMATCH[1]}
            planned=$((planned + 10#$n))
        fi
    done <"$log"
    passed=$((passed + ok))
    skipped=$((skip + skipped))
    local results=$((ok + notok + skip))
    if ((rc == 124 || rc == 137)); then
        fail "$name: timed out after ${per_test_timeout} s"
    elif ((results == 0)); then
        fail "$name: printed no test results (exit status $rc)"
    elif ((rc != 0 && notok == 0)); then
        fail "$name: exited with status $rc after $ok passing results (see output above)"
    elif ((planned > results)); then
        fail "$name: planned $planned results but printed $results"
    fi
    local extra=''
    ((skip == 0)) || extra=", $skip skipped"
    say "--- $name: $ok ok, $notok not ok$extra, exit $rc, $((SECONDS - start)) s"
}

for bin in "${units[@]}"; do
    name=${bin##*/}
    if [[ ! -x $bin ]]; then
        fail "$name: $bin was not built"
        continue
    fi
    run_one "$name" "$bin"
done
for script in "${integ[@]}"; do
    name=${script##*/}
    name=${name%.sh}
    if ((!stack_ok)); then
        say "=== $name: skipped (no healthy stack)"
        skipped=$((skipped + 1))
        continue
    fi
    run_one "$name" bash "$script"
done

summary_and_exit
