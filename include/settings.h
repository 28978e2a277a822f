/* settings — where the settings come from (a file and -o overrides), kept
 * so that a reload (SIGHUP) reads exactly the same sources again. */
#pragma once
#include <stddef.h>

#include "config.h"

struct sk_settings_src {
    const char *config_file; /* NULL: none */
    char **overrides;        /* "key=value" strings, in command-line order */
    size_t n_overrides;
};

/* Build a complete, checked configuration from the sources: defaults, the
 * file, every -o, then sk_config_finish().  On error returns a negative
 * errno (-EINVAL for refused settings, the file's open or read error,
 * -ENOMEM; see sk_config_load_file, sk_config_finish) with a message in
 * err and leaves *cfg freed. */
int sk_settings_load(const struct sk_settings_src *src, struct sk_config *cfg, char *err, size_t errlen);
