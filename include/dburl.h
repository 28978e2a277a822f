/* dburl — db.url: the database's address in one URL, parsed into its
 * parts (user, host or unix socket, port, database name).
 *
 * A password never belongs in the URL (db.password_file holds it), and no
 * message quotes any part of the URL: a mistyped one may carry a password
 * where it is not expected. */
#pragma once
#include <stddef.h>

/* Parsed db.url: mariadb://user@host:port/dbname or
 * mariadb://user@localhost/dbname?socket=/run/mysqld/mysqld.sock */
struct sk_dburl {
    char *user;
    char *host;    /* NULL when a unix socket is used */
    unsigned port; /* default 3306 */
    char *socket;  /* NULL unless ?socket= */
    char *dbname;
};

/* Parse a db URL into *u (allocates); 0, or -EINVAL (-ENOMEM) with a
 * message in err on error, *u then zeroed.  Forms:
 * mariadb://user@host[:port]/dbname, user@[v6addr]:port,
 * user@localhost/dbname?socket=/abs/path; "mysql://" also accepted; user,
 * dbname and socket are percent-decoded.  A password in the URL is refused
 * (use db.password_file).  Messages never quote parts of the URL. */
int sk_dburl_parse(const char *url, struct sk_dburl *u, char *err, size_t errlen);
/* Free the parts; safe on a zeroed or already freed *u (idempotent). */
void sk_dburl_free(struct sk_dburl *u);
