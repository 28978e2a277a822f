/* Unit tests: host name lookups off the loop (resolve).
 *
 * Real lookups through glibc (/etc/hosts has "localhost" everywhere; the
 * .invalid top-level domain never resolves, RFC 6761) on a real sd-event
 * loop: the answer comes back from the loop, exactly once, never from
 * inside sk_resolve_start; one lookup at a time; a resolver freed while its
 * thread is still looking up goes without waiting and without a leak
 * (LeakSanitizer); a lookup over its timeout is given up.
 * */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <dirent.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "resolve.h"

struct answer {
    sd_event *loop;
    int calls;
    char addr[SK_RESOLVE_ADDR_MAX];
    char why[200];
};

static void on_done(void *ud, const char *addr, const char *why)
{
    struct answer *a = ud;
    a->calls++;
    if ((addr == NULL) == (why == NULL))
        fail_msg("exactly one of addr and why must be set (addr %s, why %s)", addr ? addr : "NULL",
                 why ? why : "NULL");
    snprintf(a->addr, sizeof a->addr, "%s", addr ? addr : "");
    snprintf(a->why, sizeof a->why, "%s", why ? why : "");
}

static int on_guard(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    *(bool *)ud = true;
    return 0;
}

/* Run the loop until a has `calls` answers (0), or 30 s (1: a hang). */
static int run(struct answer *a, int calls)
{
    sd_event_source *guard = NULL;
    bool late = false;
    assert_int_equal(sd_event_add_time_relative(a->loop, &guard, CLOCK_MONOTONIC, 30000000u, 1000,
                                                on_guard, &late),
                     0);
    while (a->calls < calls && !late)
        assert_true(sd_event_run(a->loop, UINT64_MAX) >= 0);
    sd_event_source_disable_unref(guard);
    return late;
}

static int threads_at_start;

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Every lookup thread ends on its own, abandoned or not: wait (10 s at
 * most) until none is left.  Also what lets LeakSanitizer see that an
 * abandoned job was freed: it cannot see the argument of a thread that has
 * not started yet. */
static void wait_threads_gone(void)
{
    for (int i = 0; i < 1000 && count_threads() > threads_at_start; i++)
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    assert_int_equal(count_threads(), threads_at_start);
}

/* A resolver answering into a, on a new loop of a's own. */
static struct sk_resolve *new_resolver(struct answer *a, uint64_t timeout_usec)
{
    struct sk_resolve *r = NULL;
    if (!a->loop)
        assert_int_equal(sd_event_new(&a->loop), 0);
    assert_int_equal(sk_resolve_new(a->loop, timeout_usec, on_done, a, &r), 0);
    return r;
}

static void numeric_needs_no_lookup(void **state)
{
    (void)state;
    char out[SK_RESOLVE_ADDR_MAX];
    assert_true(sk_resolve_numeric("127.0.0.2", out));
    assert_string_equal(out, "127.0.0.2");
    assert_true(sk_resolve_numeric("::1", out));
    assert_string_equal(out, "::1");
    assert_true(sk_resolve_numeric("0:0:0:0:0:0:0:1", out));
    assert_string_equal(out, "::1");
    assert_true(sk_resolve_numeric("fe80::1:2", out));
    static const char *const names[] = {"localhost", "sk-db-failover.test", "", "127.1",
                                        "1.2.3.4.5", "[::1]", "::1%lo"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (sk_resolve_numeric(names[i], out))
            fail_msg("\"%s\" taken as numeric", names[i]);
}

static void a_name_resolves_from_the_loop(void **state)
{
    (void)state;
    struct answer a = {0};
    struct sk_resolve *r = new_resolver(&a, 10000000u);
    assert_false(sk_resolve_busy(r));
    assert_int_equal(sk_resolve_start(r, "localhost"), 0);
    assert_int_equal(a.calls, 0); /* never from inside start */
    assert_true(sk_resolve_busy(r));
    assert_int_equal(sk_resolve_start(r, "localhost"), -EBUSY);
    assert_int_equal(run(&a, 1), 0);
    assert_int_equal(a.calls, 1);
    char out[SK_RESOLVE_ADDR_MAX];
    if (!sk_resolve_numeric(a.addr, out))
        fail_msg("localhost gave \"%s\" (%s), not a numeric address", a.addr, a.why);
    assert_false(sk_resolve_busy(r));
    /* and again: a lookup per connect */
    assert_int_equal(sk_resolve_start(r, "localhost"), 0);
    assert_int_equal(run(&a, 2), 0);
    assert_int_equal(a.calls, 2);
    assert_string_equal(a.addr, out);
    sk_resolve_free(r);
    sd_event_unref(a.loop);
}

/* One lookup of a name that never resolves: one answer, a failure with a
 * reason, and the resolver free again. */
static void lookup_fails(struct answer *a, struct sk_resolve *r)
{
    int calls = a->calls + 1;
    assert_int_equal(sk_resolve_start(r, "sk-no-such-host.invalid"), 0);
    assert_int_equal(run(a, calls), 0);
    assert_int_equal(a->calls, calls);
    assert_string_equal(a->addr, "");
    assert_true(strlen(a->why) > 0);
    assert_false(sk_resolve_busy(r));
}

static void an_unknown_name_says_why(void **state)
{
    (void)state;
    struct answer a = {0};
    /* no DNS at all here answers too, in at most the timeout */
    struct sk_resolve *r = new_resolver(&a, 5000000u);
    lookup_fails(&a, r);
    sk_resolve_free(r);
    sd_event_unref(a.loop);
}

/* Freed while its thread is in getaddrinfo: no wait, no callback; the
 * thread ends on its own and frees the job (LeakSanitizer says so). */
static void freed_while_looking_up(void **state)
{
    (void)state;
    struct answer a = {0}, b = {0};
    struct sk_resolve *r = new_resolver(&a, 0);
    assert_int_equal(sk_resolve_start(r, "localhost"), 0);
    sk_resolve_free(r);
    b.loop = a.loop;
    struct sk_resolve *r2 = new_resolver(&b, 0);
    assert_int_equal(sk_resolve_start(r2, "localhost"), 0);
    assert_int_equal(run(&b, 1), 0);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    sk_resolve_free(r2);
    sd_event_unref(a.loop);
    wait_threads_gone();
}

/* A timeout far below any lookup's time: given up, once, with a reason
 * (had the thread been faster, its own failure would be the reason); the
 * resolver takes the next lookup at once, while that thread may still
 * run. */
static void a_slow_lookup_is_given_up(void **state)
{
    (void)state;
    struct answer a = {0};
    struct sk_resolve *r = new_resolver(&a, 1);
    lookup_fails(&a, r);
    lookup_fails(&a, r);
    sk_resolve_free(r);
    sd_event_unref(a.loop);
    wait_threads_gone();
}

int main(void)
{
    threads_at_start = count_threads();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numeric_needs_no_lookup),
        cmocka_unit_test(a_name_resolves_from_the_loop),
        cmocka_unit_test(an_unknown_name_says_why),
        cmocka_unit_test(freed_while_looking_up),
        cmocka_unit_test(a_slow_lookup_is_given_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
