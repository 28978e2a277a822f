/* Replays the fuzz target's inputs through its invariant checker:
 *   - every file in tests/fuzz/regressions/ (inputs that once crashed or
 *     violated an invariant; README* and dot files are skipped);
 *   - every user/score example of schemas/examples, encoded in the fuzz
 *     input format, so the test is never vacuous;
 *   - a few hand-made edge inputs (empty input, tombstone, cut key).
 * The directories are found under $SK_SRCDIR (default: the current
 * directory, then its parents).  Not finding them is a failure.
 *
 * One checker, not two: tests/fuzz/fuzz_check.c is #included here (the
 * Makefile builds each tests/unit/test_*.c as a single translation unit
 * against the library objects), and the libFuzzer target links the same
 * file.  See tests/fuzz/README.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../fuzz/fuzz_check.c"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char root[4096];

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int find_root(void **state)
{
    (void)state;
    const char *env = getenv("SK_SRCDIR");
    const char *const tries[] = {env ? env : ".", "..", "../..", "../../.."};
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/tests/fuzz/regressions", tries[i]);
        if (is_dir(p)) {
            snprintf(root, sizeof root, "%s", tries[i]);
            return 0;
        }
        if (env) /* an explicit SK_SRCDIR must be right */
            break;
    }
    print_error("tests/fuzz/regressions not found (set SK_SRCDIR to the source tree)\n");
    return -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void regressions(void **state)
{
    (void)state;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/regressions", root);
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0, cap = 16;
    char **names = malloc(cap * sizeof *names);
    assert_non_null(names);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, "README", 6) == 0)
            continue;
        if (n == cap) {
            cap *= 2;
            names = realloc(names, cap * sizeof *names);
            assert_non_null(names);
        }
        names[n] = strdup(e->d_name);
        assert_non_null(names[n]);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    unsigned failed = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4500];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len = 0;
        uint8_t *data = fz_slurp(path, &len);
        if (!data) {
            print_error("%s: cannot read\n", path);
            failed++;
        } else if (fz_check(data, len) != 0) {
            print_error("%s: invariants violated (see above)\n", path);
            failed++;
        }
        free(data);
        free(names[i]);
    }
    free(names);
    print_message("%zu regression inputs\n", n);
    assert_int_equal(failed, 0);
}

struct tally {
    unsigned seen, failed;
};

static void check_example(const char *name, const uint8_t *data, size_t size, void *ctx)
{
    struct tally *t = ctx;
    t->seen++;
    if (fz_check(data, size) != 0) {
        print_error("example %s: invariants violated (see above)\n", name);
        t->failed++;
    }
}

static void examples(void **state)
{
    (void)state;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/schemas/examples", root);
    struct tally t = {0, 0};
    long n = fz_for_each_example(dir, check_example, &t);
    if (n < 16) {
        print_error("%s: %ld examples, want >= 16\n", dir, n);
        fail();
    }
    assert_int_equal(t.seen, (unsigned)n);
    assert_int_equal(t.failed, 0);
}

static void edge_inputs(void **state)
{
    (void)state;
    static const uint8_t score_key_cut[] = {FZ_F_SCORE | FZ_F_KEY, 200, '4', '2'};
    static const uint8_t tombstone[] = {FZ_F_TOMBSTONE | FZ_F_KEY, 1, 'a', '{', '}'};
    static const uint8_t score_tombstone[] = {FZ_F_SCORE | FZ_F_TOMBSTONE | FZ_F_KEY, 1, '7'};
    static const uint8_t tombstone_bad_key[] = {FZ_F_TOMBSTONE | FZ_F_KEY, 2, 'a', '\n'};
    static const uint8_t key_len_missing[] = {FZ_F_KEY};
    static const uint8_t all_flags[] = {0xff, 0, '{', '"', 'u', 's', 'e', 'r', 'n', 'a', 'm', 'e',
                                        '"', ':', '"', 'x', '"', '}'};
    assert_int_equal(fz_check(NULL, 0), 0);
    assert_int_equal(fz_check(score_key_cut, sizeof score_key_cut), 0);
    assert_int_equal(fz_check(tombstone, sizeof tombstone), 0);
    assert_int_equal(fz_check(score_tombstone, sizeof score_tombstone), 0);
    assert_int_equal(fz_check(tombstone_bad_key, sizeof tombstone_bad_key), 0);
    assert_int_equal(fz_check(key_len_missing, sizeof key_len_missing), 0);
    assert_int_equal(fz_check(all_flags, sizeof all_flags), 0);

    /* The encoder and the splitter agree. */
    size_t size = 0;
    uint8_t *in = fz_encode(FZ_F_SCORE, "7", 1, "{}", 2, &size);
    assert_non_null(in);
    struct fz_input s;
    fz_split(in, size, &s);
    assert_int_equal(s.kind, SK_EV_SCORE);
    assert_true(s.has_key);
    assert_int_equal(s.key_len, 1);
    assert_memory_equal(s.key, "7", 1);
    assert_int_equal(s.payload_len, 2);
    assert_memory_equal(s.payload, "{}", 2);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(regressions),
        cmocka_unit_test(examples),
        cmocka_unit_test(edge_inputs),
    };
    return cmocka_run_group_tests_name("fuzz_regressions", tests, find_root, NULL);
}
