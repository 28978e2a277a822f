/* fuzz_event — libFuzzer target for the event parser and validator.
 *
 * Every input is split into (kind, key, payload) as described in
 * fuzz_check.h and run through fz_check(), the same checker the
 * regression unit test uses; any violated invariant aborts so libFuzzer
 * keeps the input as a crash file.  Build and run with `make fuzz`. */
#include "fuzz_check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned fails = fz_check(data, size);
    if (fails) {
        fprintf(stderr, "fuzz_event: %u invariant(s) violated\n", fails);
        abort();
    }
    return 0;
}
