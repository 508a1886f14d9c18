-- Chat craft: full-text search over every message, archived and summarized ones included.

-- External-content FTS5 index: rowid = messages.id; text lives only in messages.
-- The trigram tokenizer matches any substring of 3+ characters, so Chinese/Japanese text
-- (no spaces between words) is searchable; it folds case and (remove_diacritics 1) accents.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content,
    speaker_name,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'trigram remove_diacritics 1'
);

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content, speaker_name) VALUES (new.id, new.content, new.speaker_name);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, speaker_name)
        VALUES ('delete', old.id, old.content, old.speaker_name);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, speaker_name ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, speaker_name)
        VALUES ('delete', old.id, old.content, old.speaker_name);
    INSERT INTO messages_fts (rowid, content, speaker_name) VALUES (new.id, new.content, new.speaker_name);
END;

-- Backfill the messages written before this migration.
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
