/* dbtls — TLS to MariaDB: the options of each connect, the check of the
 * server's certificate against the host name of db.url, and what a
 * connection's TLS state is in words.
 *
 * The pool connects to the address it resolved (Connector/C would resolve
 * a name synchronously), but the certificate must be valid for the NAME
 * in db.url.  Connector/C 3.3 checks MYSQL_OPT_SSL_VERIFY_SERVER_CERT
 * against mysql->host, which it copies from the host argument of the
 * connect only once the server's greeting arrived, after the TCP connect.
 * So the connect is started with a buffer holding the address and, at its
 * first pause (the TCP connect or the greeting: the address was used
 * then), the buffer is given the name: Connector/C checks the name, before
 * any credential is sent.  Without such a pause it checks the address and
 * refuses a certificate made for the name (fail closed, retried).  Once
 * connected, the peer certificate is checked for the name again with
 * OpenSSL (the library Connector/C uses here, which is checked at start),
 * so a connection is never used unless it is verified for the name.
 *
 * Connector/C 3.3 leaves the socket of a connection in blocking mode, and
 * reads TLS records with SSL_read: without a fix every statement over TLS
 * would run inside its _start call and block the loop.  The socket is made
 * non-blocking once connected, so SSL_read reports WANT_READ and the call
 * pauses as for a plain connection.  The TLS handshake itself still runs
 * inside the connect call (Connector/C has no pause there). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <mysql.h>

#include "config.h"

/* At start (sk_config_finish, db.tls not off): Connector/C uses the same
 * OpenSSL as this program, the CA file holds certificates, the client
 * certificate and key load and belong together.  0, or -EINVAL with a
 * message naming the setting. */
int sk_dbtls_check(const struct sk_config *cfg, char *err, size_t errlen);

/* The TLS options of one connect, on a handle after mysql_init.  0 or
 * -EINVAL. */
int sk_dbtls_options(MYSQL *m, const struct sk_config *cfg);

/* At a pause of a connect: with db.tls = verify-full, put the host name of
 * db.url into host (the buffer handed to mysql_real_connect_start) so
 * that Connector/C checks the certificate against it.  Returns whether
 * the name is in place. */
bool sk_dbtls_connect_paused(const struct sk_config *cfg, char *host, size_t hostlen);

/* After a connect succeeded: is the session what db.tls asks for (TLS on,
 * certificate verified, for the name)?  0 with the TLS state in words in
 * desc, or -EPROTO with the reason in why (the caller closes it).  Makes
 * the socket non-blocking, see above. */
int sk_dbtls_connected(MYSQL *m, const struct sk_config *cfg, bool named, char *desc,
                       size_t desclen, char *why, size_t whylen);

/* A failed connect's message, with what a TLS failure means for these
 * settings (which certificate, which name, which CA). */
void sk_dbtls_failure(MYSQL *m, const struct sk_config *cfg, bool named, char *why,
                      size_t whylen);
