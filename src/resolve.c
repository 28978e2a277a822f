/* resolve — host name lookups off the loop, see include/resolve.h.
 *
 * A lookup is a job shared by two owners, the resolver and the thread
 * running getaddrinfo(), each holding one reference: whichever lets go
 * last frees it.  So a resolver freed (or a lookup abandoned after its
 * timeout) while the thread is still in getaddrinfo() never waits for it,
 * and the thread never writes to an eventfd that was closed. */
#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <threads.h>
#include <unistd.h>

struct job {
    atomic_uint refs;
    atomic_bool done; /* the answer below is complete (release/acquire) */
    int efd;          /* written once by the thread when done */
    char *host;
    char addr[SK_RESOLVE_ADDR_MAX]; /* the answer, or "" */
    char why[160];                  /* the reason when there is no answer */
};

struct sk_resolve {
    sd_event *loop;
    uint64_t timeout_usec;
    sk_resolve_fn done;
    void *ud;
    struct job *job;      /* in flight, NULL when none */
    sd_event_source *io;  /* the job's eventfd */
    sd_event_source *timer;
};

static void job_unref(struct job *j)
{
    if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (j->efd >= 0)
        close(j->efd);
    free(j->host);
    free(j);
}

/* The thread: the only blocking call of the process after start-up lives
 * here, away from the loop. */
static int lookup(void *arg)
{
    struct job *j = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int r = getaddrinfo(j->host, NULL, &hints, &ai);
    int e = errno;
    if (r == 0) {
        r = getnameinfo(ai->ai_addr, ai->ai_addrlen, j->addr, sizeof j->addr, NULL, 0,
                        NI_NUMERICHOST);
        e = errno;
        freeaddrinfo(ai);
    }
    if (r != 0) {
        char buf[96];
        j->addr[0] = '\0';
        snprintf(j->why, sizeof j->why, "%s",
                 r == EAI_SYSTEM ? strerror_r(e, buf, sizeof buf) : gai_strerror(r));
    }
    atomic_store_explicit(&j->done, true, memory_order_release);
    eventfd_write(j->efd, 1); /* cannot fail: the counter is far from its limit */
    job_unref(j);
    return 0;
}

static void drop_job(struct sk_resolve *r)
{
    r->io = sd_event_source_disable_unref(r->io);
    sd_event_source_set_enabled(r->timer, SD_EVENT_OFF);
    if (r->job)
        job_unref(r->job);
    r->job = NULL;
}

static int on_answer(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    (void)s;
    (void)revents;
    struct sk_resolve *r = ud;
    eventfd_t v;
    (void)eventfd_read(fd, &v);
    struct job *j = r->job;
    if (!atomic_load_explicit(&j->done, memory_order_acquire))
        return 0;
    char addr[SK_RESOLVE_ADDR_MAX], why[sizeof j->why];
    memcpy(addr, j->addr, sizeof addr);
    memcpy(why, j->why, sizeof why);
    drop_job(r);
    /* Last: the callback may start the next lookup. */
    r->done(r->ud, addr[0] ? addr : NULL, addr[0] ? NULL : why);
    return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    struct sk_resolve *r = ud;
    char why[80];
    snprintf(why, sizeof why, "no answer within %llu ms",
             (unsigned long long)(r->timeout_usec / 1000u));
    drop_job(r); /* the thread ends on its own; its answer is dropped */
    r->done(r->ud, NULL, why);
    return 0;
}

int sk_resolve_new(sd_event *loop, uint64_t timeout_usec, sk_resolve_fn done, void *ud,
                   struct sk_resolve **out)
{
    struct sk_resolve *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = (struct sk_resolve){.loop = loop, .timeout_usec = timeout_usec, .done = done, .ud = ud};
    int e = sd_event_add_time_relative(loop, &r->timer, CLOCK_MONOTONIC, 0, 1000, on_timeout, r);
    if (e >= 0)
        e = sd_event_source_set_enabled(r->timer, SD_EVENT_OFF);
    if (e < 0) {
        sk_resolve_free(r);
        return e;
    }
    *out = r;
    return 0;
}

void sk_resolve_free(struct sk_resolve *r)
{
    if (!r)
        return;
    drop_job(r);
    r->timer = sd_event_source_disable_unref(r->timer);
    free(r);
}

bool sk_resolve_busy(const struct sk_resolve *r) { return r->job != NULL; }

/* A detached thread with every signal blocked: the loop takes its signals
 * through a signalfd, which only works when no thread lets them in.  (C11
 * threads: <pthread.h> would pull in the system's <sched.h>, which
 * include/sched.h shadows.) */
static int spawn(struct job *j)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    thrd_t t;
    int e = thrd_create(&t, lookup, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != thrd_success)
        return e == thrd_nomem ? -ENOMEM : -EAGAIN;
    thrd_detach(t);
    return 0;
}

int sk_resolve_start(struct sk_resolve *r, const char *host)
{
    if (r->job)
        return -EBUSY;
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    atomic_init(&j->refs, 1);
    atomic_init(&j->done, false);
    j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    j->host = strdup(host);
    int e = j->efd < 0 ? -errno : j->host ? 0 : -ENOMEM;
    r->job = j;
    if (e == 0)
        e = sd_event_add_io(r->loop, &r->io, j->efd, EPOLLIN, on_answer, r);
    if (e == 0 && r->timeout_usec) {
        e = sd_event_source_set_time_relative(r->timer, r->timeout_usec);
        if (e >= 0)
            e = sd_event_source_set_enabled(r->timer, SD_EVENT_ONESHOT);
    }
    if (e >= 0) {
        atomic_store(&j->refs, 2); /* the thread's, before it exists */
        e = spawn(j);
        if (e < 0)
            atomic_store(&j->refs, 1);
    }
    if (e < 0) {
        drop_job(r);
        return e;
    }
    return 0;
}

bool sk_resolve_numeric(const char *host, char out[SK_RESOLVE_ADDR_MAX])
{
    unsigned char buf[sizeof(struct in6_addr)];
    int af = inet_pton(AF_INET, host, buf) == 1    ? AF_INET
             : inet_pton(AF_INET6, host, buf) == 1 ? AF_INET6
                                                   : 0;
    return af && inet_ntop(af, buf, out, SK_RESOLVE_ADDR_MAX) != NULL;
}
