-- 003_game_players_key: game_players clustered by (game_id, user_id).
--
-- The upsert key becomes the primary key; the row id stays, unique and
-- auto-increment, as a secondary key.  Why: InnoDB checks a duplicate
-- UNIQUE secondary key under a next-key lock, which also locks the gap
-- before the row, even at READ COMMITTED.  At a game's first or last player
-- that gap borders another game, so two transactions on different games
-- (different connections) waited for each other, and under steady load
-- lock waits piled up into second-long latency spikes.  A duplicate primary
-- key is locked as a record only.  As a bonus the score lookups by
-- (game_id, user_id) read the clustered row directly, and one game's
-- players are stored together.

-- Re-applied by hand, the file changes nothing: the ALTER runs only while
-- the primary key is still the id.
SET @sk_003 := IF((SELECT COUNT(*) FROM information_schema.KEY_COLUMN_USAGE
                   WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'game_players'
                     AND CONSTRAINT_NAME = 'PRIMARY' AND COLUMN_NAME = 'id') > 0,
    'ALTER TABLE game_players
         DROP PRIMARY KEY,
         ADD PRIMARY KEY (game_id, user_id),
         ADD UNIQUE KEY uk_game_players_id (id),
         DROP KEY uk_game_players_game_user',
    'DO 0');
PREPARE sk_003 FROM @sk_003;
EXECUTE sk_003;
DEALLOCATE PREPARE sk_003;

INSERT IGNORE INTO schema_migrations (version, name) VALUES (3, '003_game_players_key');
