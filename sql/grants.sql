-- The least-privilege runtime account the daemon connects as.
--
-- The daemon upserts and reads: SELECT, INSERT, UPDATE on its own database.
-- It deletes only what a tombstone on the users topic deletes: a user and
-- that user's game_players rows, so DELETE on those two tables and no other
-- (the marks in game_offsets and user_offsets are never deleted by it).  No
-- DDL (migrations run as an administrator), no access to other databases
-- or to the mysql schema.  Table-level grants need the tables: apply this
-- file after the migrations.
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
-- the test harness substitutes it (sed on "`scorekeeper`.") to grant the
-- same account on private per-test databases.  Re-applying never removes
-- privileges granted elsewhere (no REVOKE), which is what lets several test
-- databases share the account.

CREATE USER IF NOT EXISTS 'scorekeeper'@'127.0.0.1' ACCOUNT LOCK;
CREATE USER IF NOT EXISTS 'scorekeeper'@'localhost' ACCOUNT LOCK;

GRANT SELECT, INSERT, UPDATE ON `scorekeeper`.* TO 'scorekeeper'@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE ON `scorekeeper`.* TO 'scorekeeper'@'localhost';
GRANT DELETE ON `scorekeeper`.`users` TO 'scorekeeper'@'127.0.0.1';
GRANT DELETE ON `scorekeeper`.`users` TO 'scorekeeper'@'localhost';
GRANT DELETE ON `scorekeeper`.`game_players` TO 'scorekeeper'@'127.0.0.1';
GRANT DELETE ON `scorekeeper`.`game_players` TO 'scorekeeper'@'localhost';
