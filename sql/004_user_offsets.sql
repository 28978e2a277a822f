-- 004_user_offsets: what has been applied, per user, as a Kafka position.
--
-- The fence of user events, as game_offsets is the fence of score events:
-- every users transaction takes its users rows' locks first (in byte order
-- of the names), reads the next offset applied for each user in each
-- partition, writes a nickname only from an event at or above it (an event
-- below it is reported "duplicate"), and moves the mark forward in the same
-- transaction.  An instance stopped past the session timeout that wakes up
-- and writes what it held therefore cannot put an older nickname over a
-- newer one.
--
-- Keyed by partition as well as user: a user's events are in one partition
-- (the key is the username) until partitions are added to the topic; then
-- each partition is fenced on its own, and the two are not ordered against
-- each other (Kafka orders nothing across partitions).  The username has the
-- type and collation of users.username, so the two compare byte for byte;
-- no foreign key, so that the mark never blocks or depends on a users row.

CREATE TABLE IF NOT EXISTS user_offsets (
    topic       VARCHAR(249) NOT NULL,
    `partition` INT          NOT NULL,
    username    VARCHAR(50)  CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    next_offset BIGINT       NOT NULL,
    updated_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                             ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (topic, `partition`, username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT IGNORE INTO schema_migrations (version, name) VALUES (4, '004_user_offsets');
