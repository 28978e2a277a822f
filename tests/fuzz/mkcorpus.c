/* mkcorpus — write the schemas/examples inputs, encoded in the fuzz input
 * format (fuzz_check.h), as seed files into a directory.
 *
 *   mkcorpus SCHEMAS_EXAMPLES_DIR OUT_DIR
 *
 * Exits non-zero when the examples cannot be read or none are found. */
#include "fuzz_check.h"

#include <stdio.h>
#include <stdlib.h>

struct out {
    const char *dir;
    int errors;
};

static void write_seed(const char *name, const uint8_t *data, size_t size, void *ctx)
{
    struct out *o = ctx;
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%s", o->dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size) {
        perror(path);
        o->errors++;
    }
    if (f && fclose(f) != 0)
        o->errors++;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SCHEMAS_EXAMPLES_DIR OUT_DIR\n", argv[0]);
        return 2;
    }
    struct out o = {argv[2], 0};
    long n = fz_for_each_example(argv[1], write_seed, &o);
    if (n <= 0 || o.errors) {
        fprintf(stderr, "mkcorpus: %s: %ld examples, %d write errors\n", argv[1], n, o.errors);
        return 1;
    }
    printf("mkcorpus: %ld seeds from %s in %s\n", n, argv[1], argv[2]);
    return 0;
}
