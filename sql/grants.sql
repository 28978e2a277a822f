-- The least-privilege runtime account the daemon connects as.
--
-- The daemon only ever upserts and reads: SELECT, INSERT, UPDATE on its own
-- database and nothing else -- no DELETE, no DDL (migrations run as an
-- administrator), no access to other databases or to the mysql schema.
--
-- No password is set here, so this file can be committed and re-applied.
-- A newly created account is LOCKED until a password is set, so it is never
-- usable without one.  An operator applies it as an administrator and then
-- sets the password from stdin (never on a command line, where ps would
-- show it), for example:
--
--   mariadb -uroot scorekeeper < sql/grants.sql
--   { printf "ALTER USER 'scorekeeper'@'127.0.0.1' IDENTIFIED BY '%s' ACCOUNT UNLOCK;\n" "$pw"
--     printf "ALTER USER 'scorekeeper'@'localhost' IDENTIFIED BY '%s' ACCOUNT UNLOCK;\n" "$pw"
--   } | mariadb -uroot
--
-- Both hosts: '127.0.0.1' for TCP (the server runs with skip-name-resolve,
-- so TCP clients never match 'localhost'), 'localhost' for the unix socket.
--
-- The database name `scorekeeper` below is the only place the name appears;
-- the test harness substitutes it (sed on "`scorekeeper`.*") to grant the
-- same account on private per-test databases.  Re-applying never removes
-- privileges granted elsewhere (no REVOKE), which is what lets several test
-- databases share the account.

CREATE USER IF NOT EXISTS 'scorekeeper'@'127.0.0.1' ACCOUNT LOCK;
CREATE USER IF NOT EXISTS 'scorekeeper'@'localhost' ACCOUNT LOCK;

GRANT SELECT, INSERT, UPDATE ON `scorekeeper`.* TO 'scorekeeper'@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE ON `scorekeeper`.* TO 'scorekeeper'@'localhost';
