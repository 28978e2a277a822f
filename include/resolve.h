/* resolve — the database's host name to a numeric address, off the loop.
 *
 * Connector/C resolves a host name synchronously even in non-blocking
 * mode, so the pool hands each connect a numeric address, and looks the
 * name up again before every (re)connect: a failover that moves the name
 * to another server is followed.  Each lookup runs getaddrinfo() in a
 * short-lived detached thread (glibc's NSS: /etc/hosts, then DNS, as
 * nsswitch.conf says) with every signal blocked; the thread writes an
 * eventfd the loop watches when it is done.  A lookup that takes longer
 * than its timeout is abandoned: its thread ends on its own and its answer
 * is dropped.
 *
 * One lookup at a time per resolver; the answer comes back through the
 * done callback, from the loop, never from inside sk_resolve_start. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

/* The longest numeric address with its NUL: INET6_ADDRSTRLEN, and room
 * for a link-local address's "%interface" (IF_NAMESIZE). */
#define SK_RESOLVE_ADDR_MAX 64

struct sk_resolve;

/* Exactly one of addr (numeric, the first address getaddrinfo gave) and why
 * (the reason, for the log) is non-NULL.  Both are valid during the call
 * only.  The resolver may start the next lookup from here. */
typedef void (*sk_resolve_fn)(void *ud, const char *addr, const char *why);

/* timeout_usec bounds each lookup (0: none). */
int sk_resolve_new(sd_event *loop, uint64_t timeout_usec, sk_resolve_fn done, void *ud,
                   struct sk_resolve **out);
/* Abandons a lookup in flight (done is not called).  NULL-safe. */
void sk_resolve_free(struct sk_resolve *r);
/* Start looking host up: 0, -EBUSY while a lookup is in flight, or another
 * negative errno when the lookup could not start (done is not called). */
int sk_resolve_start(struct sk_resolve *r, const char *host);
bool sk_resolve_busy(const struct sk_resolve *r);

/* Whether host already is a numeric IPv4 or IPv6 address (then copied to
 * out, which holds SK_RESOLVE_ADDR_MAX bytes): no lookup needed.  No I/O. */
bool sk_resolve_numeric(const char *host, char out[SK_RESOLVE_ADDR_MAX]);
