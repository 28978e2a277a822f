/* settings — load the configuration from its sources, see include/settings.h. */
#include "settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sk_settings_load(const struct sk_settings_src *src, struct sk_config *cfg, char *err, size_t errlen)
{
    int r = sk_config_init(cfg);
    if (r < 0) {
        snprintf(err, errlen, "%s", r == -ENOMEM ? "out of memory" : "invalid settings table");
        return r;
    }
    if (src->config_file && (r = sk_config_load_file(cfg, src->config_file, err, errlen)) < 0)
        goto fail;
    for (size_t i = 0; i < src->n_overrides; i++) {
        const char *kv = src->overrides[i];
        const char *eq = strchr(kv, '=');
        if (!eq) {
            snprintf(err, errlen, "-o \"%.100s\": expected KEY=VALUE", kv);
            r = -EINVAL;
            goto fail;
        }
        char key[256];
        size_t klen = (size_t)(eq - kv);
        if (klen >= sizeof key) {
            snprintf(err, errlen, "-o: key too long");
            r = -EINVAL;
            goto fail;
        }
        memcpy(key, kv, klen);
        key[klen] = '\0';
        if ((r = sk_config_set(cfg, key, eq + 1, "-o", err, errlen)) < 0)
            goto fail;
    }
    if ((r = sk_config_finish(cfg, err, errlen)) < 0)
        goto fail;
    return 0;
fail:
    sk_config_free(cfg);
    return r;
}
