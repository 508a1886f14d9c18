-- Bulk imports (a 10,000-message SillyTavern chat) store messages with search_indexed = 0 and no token count;
-- a background job counts their tokens and adds them to the two full-text indexes afterwards, by setting
-- search_indexed = 1. The triggers only touch the indexes for rows that are in them (an external-content FTS5
-- 'delete' of a row it never held would corrupt the index).
ALTER TABLE messages ADD COLUMN search_indexed INTEGER NOT NULL DEFAULT 1;
CREATE INDEX ix_messages_search_pending ON messages(id) WHERE search_indexed = 0;

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
DROP TRIGGER messages_words_insert;
DROP TRIGGER messages_words_delete;
DROP TRIGGER messages_words_update;

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.search_indexed = 1 BEGIN
    INSERT INTO messages_fts (rowid, content, speaker_name) VALUES (new.id, new.content, new.speaker_name);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.search_indexed = 1 BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, speaker_name)
        VALUES ('delete', old.id, old.content, old.speaker_name);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, speaker_name, search_indexed ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, speaker_name)
        SELECT 'delete', old.id, old.content, old.speaker_name WHERE old.search_indexed = 1;
    INSERT INTO messages_fts (rowid, content, speaker_name)
        SELECT new.id, new.content, new.speaker_name WHERE new.search_indexed = 1;
END;

CREATE TRIGGER messages_words_insert AFTER INSERT ON messages WHEN new.search_indexed = 1 BEGIN
    INSERT INTO messages_words (rowid, content, speaker_name) VALUES (new.id, new.content, new.speaker_name);
END;

CREATE TRIGGER messages_words_delete AFTER DELETE ON messages WHEN old.search_indexed = 1 BEGIN
    INSERT INTO messages_words (messages_words, rowid, content, speaker_name)
        VALUES ('delete', old.id, old.content, old.speaker_name);
END;

CREATE TRIGGER messages_words_update AFTER UPDATE OF content, speaker_name, search_indexed ON messages BEGIN
    INSERT INTO messages_words (messages_words, rowid, content, speaker_name)
        SELECT 'delete', old.id, old.content, old.speaker_name WHERE old.search_indexed = 1;
    INSERT INTO messages_words (rowid, content, speaker_name)
        SELECT new.id, new.content, new.speaker_name WHERE new.search_indexed = 1;
END;
