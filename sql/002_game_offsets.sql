-- 002_game_offsets: what has been applied, per game, as a Kafka position.
--
-- Every score batch of a game takes the game row's lock first, reads the
-- next offset applied for its game in each partition, skips (reports as
-- "duplicate") any event below it, and moves the mark forward in the same
-- transaction as the score rows.  A batch retried after an ambiguous
-- commit, events consumed again after a crash, and a partition processed by
-- two instances during a rebalance therefore never apply an event twice:
-- the database, not Kafka's committed offsets, says what was applied.
--
-- Keyed by game as well as partition because the games of one partition
-- commit out of order (they run on different connections in parallel).

CREATE TABLE IF NOT EXISTS game_offsets (
    topic       VARCHAR(249) NOT NULL,
    `partition` INT          NOT NULL,
    game_id     BIGINT       NOT NULL,
    next_offset BIGINT       NOT NULL,
    updated_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                             ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (topic, `partition`, game_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT IGNORE INTO schema_migrations (version, name) VALUES (2, '002_game_offsets');
