/* fuzz_check — the one invariant checker behind the libFuzzer target
 * (tests/fuzz/fuzz_event.c) and the regression unit test
 * (tests/unit/test_fuzz_regressions.c).  See tests/fuzz/README.md.
 *
 * Input format (what the fuzzer mutates and what regression files hold):
 *
 *   byte 0        flags: bit 0  score event (else user event)
 *                        bit 1  a key follows (else the message has no key)
 *                        bit 2  tombstone: the payload is NULL
 *                        bits 4-5  tight limits' max_depth - 1 (1..4)
 *                        other bits are ignored
 *   byte 1        key length L                   (only when bit 1 is set)
 *   L bytes       the Kafka key, cut to what is left of the input
 *   the rest      the payload
 *
 * An empty input is a user event without key and with an empty payload. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define FZ_F_SCORE 0x01u
#define FZ_F_KEY 0x02u
#define FZ_F_TOMBSTONE 0x04u
#define FZ_DEPTH_SHIFT 4u
#define FZ_KEY_MAX 255u

/* An input split into its parts; the pointers point into the input. */
struct fz_input {
    unsigned flags;
    enum sk_event_kind kind;
    bool has_key;
    const uint8_t *key;
    size_t key_len;
    bool tombstone;
    const uint8_t *payload;
    size_t payload_len;
};

void fz_split(const uint8_t *data, size_t size, struct fz_input *in);

/* Encode (flags, key, payload) in the input format; key == NULL means no
 * key (keys longer than FZ_KEY_MAX are cut).  Returns a malloc'd buffer
 * and its size in *size, NULL when out of memory. */
uint8_t *fz_encode(unsigned flags, const void *key, size_t key_len, const void *payload,
                   size_t payload_len, size_t *size);

/* Run one input through every invariant.  Returns the number of violated
 * invariants (0 = all good); each violation is described on stderr. */
unsigned fz_check(const uint8_t *data, size_t size);

/* Call fn for every user/score example under examples_dir (the
 * schemas/examples directory), encoded in the input format with the key
 * the example defines (its .key file, else derived from the body as
 * tests/unit/test_schema_examples.c does).  name is "<kind>-<valid|invalid>-
 * <file name without .json>".  Returns the number of examples, or -1 when
 * the directory cannot be read or an example cannot be loaded. */
typedef void fz_example_fn(const char *name, const uint8_t *data, size_t size, void *ctx);
long fz_for_each_example(const char *examples_dir, fz_example_fn *fn, void *ctx);

/* Whole file into a malloc'd buffer (NUL-terminated, *len without the NUL);
 * NULL when it cannot be read. */
uint8_t *fz_slurp(const char *path, size_t *len);
