-- 001_schema: the initial scorekeeper schema.
--
-- Idempotent (CREATE TABLE IF NOT EXISTS, INSERT IGNORE) so that re-applying
-- it to a database that already has it changes nothing.  Applied to the
-- database selected by the client (mariadb DBNAME < 001_schema.sql); no
-- database name appears here so tests can use private databases.
--
-- Every table is InnoDB (transactions, row locks, foreign keys) and utf8mb4
-- (full Unicode; MariaDB's legacy "utf8" is 3-byte and cannot store emoji).
-- Timestamps have microsecond precision so ordering of updates within one
-- second stays visible when debugging batches.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INT          NOT NULL,
    name       VARCHAR(200) NOT NULL,
    applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS users (
    id         BIGINT       NOT NULL AUTO_INCREMENT,
    -- Usernames arrive in events as opaque byte strings and are the
    -- identity of a player.  The binary NO PAD collation compares exact
    -- bytes: 'alice', 'Alice' and 'alice ' (trailing space) are three
    -- different users, and the UNIQUE index and lookups by username agree
    -- byte for byte with what the daemon hashes and batches in memory.
    -- A case-insensitive or PAD SPACE collation would silently merge
    -- distinct players and make upserts hit the wrong row.
    username   VARCHAR(50)  CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    nickname   VARCHAR(50)  NULL,
    created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                            ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY uk_users_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS games (
    -- Game ids are assigned upstream and arrive in events; never generated
    -- here, hence no AUTO_INCREMENT.
    id         BIGINT       NOT NULL,
    name       VARCHAR(100) NOT NULL,
    created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                            ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS game_players (
    id         BIGINT       NOT NULL AUTO_INCREMENT,
    game_id    BIGINT       NOT NULL,
    user_id    BIGINT       NOT NULL,
    score      BIGINT       NOT NULL DEFAULT 0,
    created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                            ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    -- The upsert key: one row per player per game.  It also serves
    -- lookups and the foreign key on game_id (leftmost column).
    UNIQUE KEY uk_game_players_game_user (game_id, user_id),
    KEY ix_game_players_user (user_id),
    CONSTRAINT fk_game_players_game FOREIGN KEY (game_id) REFERENCES games (id),
    CONSTRAINT fk_game_players_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The Kafka position applied per partition: next_offset is the offset of the
-- first message NOT yet reflected in the tables above.  It is written in the
-- same transaction as the rows a batch changes, so after a crash the daemon
-- resumes exactly where the database is, whatever Kafka's committed group
-- offsets say.  249 is Kafka's maximum topic name length.
CREATE TABLE IF NOT EXISTS kafka_offsets (
    consumer_group VARCHAR(249) NOT NULL,
    topic          VARCHAR(249) NOT NULL,
    `partition`    INT          NOT NULL,
    next_offset    BIGINT       NOT NULL,
    updated_at     TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                                ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (consumer_group, topic, `partition`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT IGNORE INTO schema_migrations (version, name) VALUES (1, '001_schema');
