-- A word index beside the trigram one: searches of whole words (Latin scripts) use it, which is
-- several times faster on large chats; CJK text and very short terms keep using the trigram index.
CREATE VIRTUAL TABLE messages_words USING fts5(
    content,
    speaker_name,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_words_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_words (rowid, content, speaker_name) VALUES (new.id, new.content, new.speaker_name);
END;

CREATE TRIGGER messages_words_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_words (messages_words, rowid, content, speaker_name)
        VALUES ('delete', old.id, old.content, old.speaker_name);
END;

CREATE TRIGGER messages_words_update AFTER UPDATE OF content, speaker_name ON messages BEGIN
    INSERT INTO messages_words (messages_words, rowid, content, speaker_name)
        VALUES ('delete', old.id, old.content, old.speaker_name);
    INSERT INTO messages_words (rowid, content, speaker_name) VALUES (new.id, new.content, new.speaker_name);
END;

INSERT INTO messages_words (messages_words) VALUES ('rebuild');
