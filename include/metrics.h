/* metrics — the Prometheus text endpoint (/metrics) and /healthz, served by
 * libmicrohttpd from the daemon's own sd-event loop: MHD runs without a
 * thread of its own, its epoll fd is an io source of the loop and its
 * timeout a timer, so rendering reads the daemon's counters with no
 * locking.  What the text says is the stats module's (include/stats.h). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "buf.h"

struct sk_metrics;
/* render appends the whole /metrics text; healthy says whether /healthz is
 * 200 (true) or 503. */
struct sk_metrics_ops {
    void (*render)(void *ud, struct sk_buf *out);
    bool (*healthy)(void *ud);
};

/* listen is "host:port" (port 0 picks a free one); host must be a numeric
 * address.  Returns 0 and *out, or -errno with a message in err. */
int sk_metrics_start(sd_event *loop, const char *listen, const struct sk_metrics_ops *ops, void *ud,
                     struct sk_metrics **out, char *err, size_t errlen);
unsigned sk_metrics_port(const struct sk_metrics *m);
void sk_metrics_stop(struct sk_metrics *m);
