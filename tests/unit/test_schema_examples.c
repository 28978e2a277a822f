/* Runs every example under schemas/examples through the code:
 *   <kind>/valid/<name>.json       must parse (user, score) with SK_OK;
 *   <kind>/invalid/<code>--*.json  must be rejected with exactly <code>;
 *   result/valid/<name>.json       must be reproduced byte for byte by
 *                                  sk_result_json() (minus the final newline).
 * The Kafka key of an input example is the content of the sibling .key file
 * (exact bytes; an empty file means "no key"), else derived from the body:
 * username for user events, game_id in decimal for score events.
 * The examples directory is $SK_SRCDIR/schemas/examples (SK_SRCDIR defaults
 * to the current directory, then its parents are tried).  Finding no
 * examples is a failure, not a skip.
 *
 * The input examples are walked, and their keys derived, by the fuzz
 * checker (tests/fuzz/fuzz_check.c, #included as in
 * test_fuzz_regressions.c): one walker and one key rule for both tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../fuzz/fuzz_check.c"

#include <cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "event.h"
#include "result.h"

static char examples[4096];

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int find_examples(void **state)
{
    (void)state;
    const char *env = getenv("SK_SRCDIR");
    const char *const tries[] = {env ? env : ".", "..", "../..", "../../.."};
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        snprintf(examples, sizeof examples, "%s/schemas/examples", tries[i]);
        if (is_dir(examples))
            return 0;
        if (env) /* an explicit SK_SRCDIR must be right */
            break;
    }
    print_error("schemas/examples not found (set SK_SRCDIR to the source tree)\n");
    return -1;
}

/* Sorted *.json names in dir; returns the count. */
static size_t list_json(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof *v);
    assert_non_null(v);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t l = strlen(e->d_name);
            if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
                continue;
            if (n == cap) {
                cap *= 2;
                v = realloc(v, cap * sizeof *v);
                assert_non_null(v);
            }
            v[n] = strdup(e->d_name);
            assert_non_null(v[n]);
            n++;
        }
        closedir(d);
    }
    qsort(v, n, sizeof *v, cmp_names);
    *out = v;
    return n;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

struct tally {
    const char *kind_name; /* the kind this test checks */
    size_t counts[2];      /* invalid, valid */
    int failures;
};

/* One example, as the fuzz checker encodes it: name is
 * "<kind>-<valid|invalid>-<file name without .json>", data carries the key
 * the example defines and its body. */
static void check_input(const char *name, const uint8_t *data, size_t size, void *ctx)
{
    struct tally *t = ctx;
    size_t kl = strlen(t->kind_name);
    if (strncmp(name, t->kind_name, kl) != 0 || name[kl] != '-')
        return;
    const char *rest = name + kl + 1;
    bool valid = !strncmp(rest, "valid-", 6);
    const char *file = rest + (valid ? 6 : 8);
    t->counts[valid]++;
    char want[64] = "ok";
    if (!valid) {
        const char *dash = strstr(file, "--");
        if (!dash || (size_t)(dash - file) >= sizeof want) {
            print_error("%s: name is not <code>--<what>.json\n", name);
            t->failures++;
            return;
        }
        snprintf(want, sizeof want, "%.*s", (int)(dash - file), file);
    }
    struct fz_input in;
    fz_split(data, size, &in);
    struct sk_limits lim;
    sk_limits_default(&lim);
    struct sk_event ev = {0};
    struct sk_parse_error err;
    enum sk_reject rc = sk_event_parse(in.kind, (const char *)in.payload, in.payload_len,
                                       in.has_key ? (const char *)in.key : NULL, in.key_len, &lim,
                                       &ev, &err);
    if (strcmp(sk_reject_code(rc), want) != 0) {
        print_error("%s: expected %s, got %s (%s)\n", name, want, sk_reject_code(rc),
                    rc ? err.message : "");
        t->failures++;
    }
    sk_event_clear(&ev);
}

static void run_inputs(const char *kind_name)
{
    struct tally t = {.kind_name = kind_name};
    assert_true(fz_for_each_example(examples, check_input, &t) > 0);
    if (t.counts[1] < 1 || t.counts[0] < 8) {
        print_error("%s: %zu valid and %zu invalid examples, want >= 1 and >= 8\n", kind_name,
                    t.counts[1], t.counts[0]);
        t.failures++;
    }
    assert_int_equal(t.failures, 0);
}

static void user_examples(void **state)
{
    (void)state;
    run_inputs("user");
}

static void score_examples(void **state)
{
    (void)state;
    run_inputs("score");
}

static const char *str_of(const cJSON *o, const char *name, size_t *len)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    if (len)
        *len = s ? strlen(s) : 0;
    return s;
}

/* 0 when absent (a result without user_id) */
static int64_t int_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? (int64_t)cJSON_GetNumberValue(v) : 0;
}

static void result_examples(void **state)
{
    (void)state;
    char dir[4160];
    snprintf(dir, sizeof dir, "%s/result/valid", examples);
    char **names;
    size_t n = list_json(dir, &names);
    int failures = 0;
    struct sk_buf b;
    sk_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len;
        char *text = (char *)fz_slurp(path, &len);
        assert_non_null(text);
        if (len && text[len - 1] == '\n')
            text[--len] = '\0';
        cJSON *j = cJSON_ParseWithLength(text, len);
        assert_non_null(j);
        struct sk_result r = {0};
        r.event_id = str_of(j, "event_id", &r.event_id_len);
        const char *st = str_of(j, "status", NULL);
        assert_non_null(st);
        r.status = !strcmp(st, "applied")     ? SK_ST_APPLIED
                   : !strcmp(st, "duplicate") ? SK_ST_DUPLICATE
                   : !strcmp(st, "deleted")   ? SK_ST_DELETED
                   : !strcmp(st, "not_found") ? SK_ST_NOT_FOUND
                                              : SK_ST_REJECTED;
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(j, "source");
        r.topic = str_of(src, "topic", NULL);
        r.partition = (int32_t)int_of(src, "partition");
        r.offset = int_of(src, "offset");
        if (r.status == SK_ST_REJECTED) {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
            const char *code = str_of(e, "code", NULL);
            assert_non_null(code);
            for (int c = 0; c < SK_E__COUNT; c++)
                if (!strcmp(sk_reject_code((enum sk_reject)c), code))
                    r.error = (enum sk_reject)c;
            r.error_message = str_of(e, "message", NULL);
        } else {
            r.user_id = int_of(j, "user_id");
            r.username = str_of(j, "username", &r.username_len);
            if (cJSON_GetObjectItemCaseSensitive(j, "game_id")) {
                r.kind = SK_EV_SCORE;
                r.game_id = int_of(j, "game_id");
                r.score = int_of(j, "score");
            } else {
                r.kind = SK_EV_USER;
                const cJSON *nk = cJSON_GetObjectItemCaseSensitive(j, "nickname");
                r.nick = !nk ? SK_NICK_ABSENT : cJSON_IsNull(nk) ? SK_NICK_NULL : SK_NICK_SET;
                r.nickname = str_of(j, "nickname", &r.nickname_len);
            }
        }
        sk_buf_reset(&b);
        sk_result_json(&b, &r);
        if (strcmp(sk_buf_cstr(&b), text) != 0) {
            print_error("%s:\n  file: %s\n  code: %s\n", path, text, sk_buf_cstr(&b));
            failures++;
        }
        cJSON_Delete(j);
        free(text);
    }
    sk_buf_free(&b);
    free_list(names, n);
    if (n < 4) {
        print_error("%s: only %zu result examples\n", dir, n);
        failures++;
    }
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(user_examples),
        cmocka_unit_test(score_examples),
        cmocka_unit_test(result_examples),
    };
    return cmocka_run_group_tests_name("schema_examples", tests, find_examples, NULL);
}
