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
 * examples is a failure, not a skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

/* Whole file, NUL-terminated; *len without the NUL.  NULL when absent. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    char *p = malloc(cap + 1);
    assert_non_null(p);
    n = fread(p, 1, cap, f);
    assert_false(ferror(f));
    fclose(f);
    p[n] = '\0';
    *len = n;
    return p;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
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

/* Key for an input example; returns a malloc'd key or NULL (no key). */
static char *example_key(const char *json_path, enum sk_event_kind kind, const char *body,
                         size_t body_len, size_t *key_len)
{
    char path[4200];
    snprintf(path, sizeof path, "%.*s.key", (int)(strlen(json_path) - 5), json_path);
    char *k = slurp(path, key_len);
    if (k) {
        if (*key_len == 0) {
            free(k);
            return NULL;
        }
        return k;
    }
    /* derived: the body may well be invalid, then any key will do */
    char tmp[64] = "-";
    cJSON *j = cJSON_ParseWithLength(body, body_len);
    if (j && kind == SK_EV_USER) {
        const char *u = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "username"));
        if (u) {
            /* cut at a NUL for hostile examples: fine, their body fails first */
            char *dup = strdup(u);
            cJSON_Delete(j);
            assert_non_null(dup);
            *key_len = strlen(dup);
            return dup;
        }
    } else if (j) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "game_id");
        if (cJSON_IsNumber(g))
            snprintf(tmp, sizeof tmp, "%.0f", cJSON_GetNumberValue(g));
    }
    cJSON_Delete(j);
    *key_len = strlen(tmp);
    char *dup = strdup(tmp);
    assert_non_null(dup);
    return dup;
}

static void run_inputs(const char *kind_name, enum sk_event_kind kind)
{
    int failures = 0;
    size_t counts[2] = {0, 0};
    for (int valid = 1; valid >= 0; valid--) {
        char dir[4160];
        snprintf(dir, sizeof dir, "%s/%s/%s", examples, kind_name, valid ? "valid" : "invalid");
        char **names;
        size_t n = list_json(dir, &names);
        counts[valid] = n;
        for (size_t i = 0; i < n; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            size_t len, key_len = 0;
            char *body = slurp(path, &len);
            assert_non_null(body);
            char *key = example_key(path, kind, body, len, &key_len);
            char want[64] = "ok";
            if (!valid) {
                const char *dash = strstr(names[i], "--");
                if (!dash || (size_t)(dash - names[i]) >= sizeof want) {
                    print_error("%s: name is not <code>--<what>.json\n", path);
                    failures++;
                    free(key);
                    free(body);
                    continue;
                }
                snprintf(want, sizeof want, "%.*s", (int)(dash - names[i]), names[i]);
            }
            struct sk_limits lim;
            sk_limits_default(&lim);
            struct sk_event ev = {0};
            struct sk_parse_error err;
            enum sk_reject rc = sk_event_parse(kind, body, len, key, key_len, &lim, &ev, &err);
            if (strcmp(sk_reject_code(rc), want) != 0) {
                print_error("%s: expected %s, got %s (%s)\n", path, want, sk_reject_code(rc),
                            rc ? err.message : "");
                failures++;
            }
            sk_event_clear(&ev);
            free(key);
            free(body);
        }
        free_list(names, n);
    }
    if (counts[1] < 1 || counts[0] < 8) {
        print_error("%s: %zu valid and %zu invalid examples, want >= 1 and >= 8\n", kind_name,
                    counts[1], counts[0]);
        failures++;
    }
    assert_int_equal(failures, 0);
}

static void user_examples(void **state)
{
    (void)state;
    run_inputs("user", SK_EV_USER);
}

static void score_examples(void **state)
{
    (void)state;
    run_inputs("score", SK_EV_SCORE);
}

static const char *str_of(const cJSON *o, const char *name, size_t *len)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    if (len)
        *len = s ? strlen(s) : 0;
    return s;
}

static int64_t int_of(const cJSON *o, const char *name)
{
    return (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, name));
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
        char *text = slurp(path, &len);
        assert_non_null(text);
        if (len && text[len - 1] == '\n')
            text[--len] = '\0';
        cJSON *j = cJSON_ParseWithLength(text, len);
        assert_non_null(j);
        struct sk_result r = {0};
        r.event_id = str_of(j, "event_id", &r.event_id_len);
        const char *st = str_of(j, "status", NULL);
        assert_non_null(st);
        r.status = !strcmp(st, "applied") ? SK_ST_APPLIED
                   : !strcmp(st, "duplicate") ? SK_ST_DUPLICATE : SK_ST_REJECTED;
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
