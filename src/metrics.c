/* metrics — the HTTP endpoint, see include/metrics.h. */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct sk_metrics {
    struct MHD_Daemon *mhd;
    sd_event *loop;
    sd_event_source *io, *timer;
    struct sk_metrics_ops ops;
    void *ud;
    unsigned port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             const char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    struct sk_metrics *m = cls;
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return reply(conn, 405, "text/plain", "method not allowed\n", 19);
    if (!strcmp(url, "/metrics")) {
        struct sk_buf b;
        sk_buf_init(&b);
        m->ops.render(m->ud, &b);
        enum MHD_Result r = sk_buf_failed(&b)
                                ? reply(conn, 500, "text/plain", "out of memory\n", 14)
                                : reply(conn, 200, "text/plain; version=0.0.4", b.p ? b.p : "", b.len);
        sk_buf_free(&b);
        return r;
    }
    if (!strcmp(url, "/healthz")) {
        if (m->ops.healthy(m->ud))
            return reply(conn, 200, "text/plain", "ok\n", 3);
        return reply(conn, 503, "text/plain", "not ready\n", 10);
    }
    return reply(conn, 404, "text/plain", "not found\n", 10);
}

static void rearm(struct sk_metrics *m)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(m->mhd, &ms) == MHD_YES) {
        sd_event_source_set_time_relative(m->timer, (uint64_t)ms * 1000u);
        sd_event_source_set_enabled(m->timer, SD_EVENT_ONESHOT);
    } else {
        sd_event_source_set_enabled(m->timer, SD_EVENT_OFF);
    }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    (void)s;
    (void)fd;
    (void)revents;
    struct sk_metrics *m = ud;
    MHD_run(m->mhd); /* non-blocking: MHD has no thread and waits on nothing */
    rearm(m);
    return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    struct sk_metrics *m = ud;
    MHD_run(m->mhd);
    rearm(m);
    return 0;
}

int sk_metrics_start(sd_event *loop, const char *listen, const struct sk_metrics_ops *ops, void *ud,
                     struct sk_metrics **out, char *err, size_t errlen)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host) {
        snprintf(err, errlen, "metrics.listen \"%s\": expected HOST:PORT", listen);
        return -EINVAL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || port > 65535) {
        snprintf(err, errlen, "metrics.listen \"%s\": bad port", listen);
        return -EINVAL;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "metrics.listen \"%s\": host must be a numeric IPv4 address", listen);
        return -EINVAL;
    }
    struct sk_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->loop = loop;
    m->ops = *ops;
    m->ud = ud;
    m->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL,
                              on_request, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                              MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                              MHD_OPTION_END);
    if (!m->mhd) {
        snprintf(err, errlen, "cannot listen for metrics on %s: %s", listen, strerror(errno ? errno : EADDRINUSE));
        free(m);
        return -EADDRINUSE;
    }
    const union MHD_DaemonInfo *fdinfo = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pinfo = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_BIND_PORT);
    m->port = pinfo ? pinfo->port : (unsigned)port;
    int r = fdinfo ? sd_event_add_io(loop, &m->io, fdinfo->epoll_fd, EPOLLIN, on_io, m) : -EINVAL;
    if (r >= 0)
        r = sd_event_add_time_relative(loop, &m->timer, CLOCK_MONOTONIC, 1000000, 1000, on_timer, m);
    if (r < 0) {
        snprintf(err, errlen, "cannot watch the metrics socket: %s", strerror(-r));
        sk_metrics_stop(m);
        return r;
    }
    rearm(m);
    *out = m;
    return 0;
}

unsigned sk_metrics_port(const struct sk_metrics *m) { return m->port; }

void sk_metrics_stop(struct sk_metrics *m)
{
    if (!m)
        return;
    sd_event_source_disable_unref(m->io);
    sd_event_source_disable_unref(m->timer);
    if (m->mhd)
        MHD_stop_daemon(m->mhd);
    free(m);
}
