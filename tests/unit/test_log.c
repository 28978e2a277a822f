/* Unit tests: the log rate limit (a flapping dependency must not flood the
 * journal) and the plain-text line format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

static char *capture_path;

static size_t count_lines(const char *needle)
{
    fflush(stderr);
    FILE *f = fopen(capture_path, "r");
    assert_non_null(f);
    char line[4096];
    size_t n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

static void burst_is_limited(void **state)
{
    (void)state;
    for (int i = 0; i < 100; i++)
        log_warning("db#1: connect failed, attempt %d", i);
    /* the first 10 of a call site pass, the other 90 are suppressed */
    assert_int_equal(count_lines("connect failed, attempt"), 10);
    assert_int_equal(count_lines("attempt 9\n"), 1);
    assert_int_equal(count_lines("attempt 10\n"), 0);
}

static void other_call_sites_are_independent(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++)
        log_error("kafka: broker down %d", i);
    assert_int_equal(count_lines("kafka: broker down"), 5);
}

/* Lines about different partitions are not "similar": a flood about one
 * partition leaves another's lines alone, whichever topic it is on. */
static void partitions_are_independent(void **state)
{
    (void)state;
    struct sk_log_ctx busy = SK_LOG_CTX_NONE, quiet = SK_LOG_CTX_NONE;
    busy.topic = quiet.topic = "game.scores";
    busy.partition = 1;
    quiet.partition = 0;
    for (int i = 0; i < 50; i++)
        sk_logc(SK_LOG_INFO, &busy, "part %d flips %d", (int)busy.partition, i);
    sk_logc(SK_LOG_INFO, &quiet, "part %d flips %d", (int)quiet.partition, 0);
    struct sk_log_ctx other = busy;
    other.topic = "game.users"; /* same partition number, another topic */
    sk_logc(SK_LOG_INFO, &other, "part %d flips %d", 7, 0);
    assert_int_equal(count_lines("part 1 flips"), 10);
    assert_int_equal(count_lines("part 0 flips 0"), 1);
    assert_int_equal(count_lines("part 7 flips 0"), 1);
}

static void context_fields_in_plain_text(void **state)
{
    (void)state;
    struct sk_log_ctx x = SK_LOG_CTX_NONE;
    x.topic = "game.scores";
    x.partition = 3;
    x.offset = 1234;
    x.game_id = 42;
    x.db_errno = 1213;
    sk_logc(SK_LOG_WARNING, &x, "deadlock, retrying");
    assert_int_equal(count_lines("warning: deadlock, retrying | topic=game.scores partition=3 "
                                 "offset=1234 game=42 db_errno=1213"), 1);
}

static void level_filters(void **state)
{
    (void)state;
    sk_log_set_level(SK_LOG_NOTICE);
    log_info("invisible info line");
    log_notice("visible notice line");
    sk_log_set_level(SK_LOG_INFO);
    assert_int_equal(count_lines("invisible info line"), 0);
    assert_int_equal(count_lines("visible notice line"), 1);
}

int main(void)
{
    char tmpl[] = "/tmp/sk-log-test.XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0 || !freopen(tmpl, "w", stderr))
        return 1;
    close(fd);
    capture_path = tmpl;
    unsetenv("JOURNAL_STREAM");
    sk_log_init("test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_is_limited),
        cmocka_unit_test(other_call_sites_are_independent),
        cmocka_unit_test(partitions_are_independent),
        cmocka_unit_test(context_fields_in_plain_text),
        cmocka_unit_test(level_filters),
    };
    int rc = cmocka_run_group_tests_name("log", tests, NULL, NULL);
    unlink(tmpl);
    return rc;
}
