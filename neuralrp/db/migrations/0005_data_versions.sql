-- Change counters for caches that would otherwise re-read thousands of rows to see whether anything
-- changed: every write to world entries or stored vectors bumps its row. `token` is a fresh random
-- number on each bump, so a restored or replaced database never looks like the cached one.
CREATE TABLE data_versions (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 0,
    token INTEGER NOT NULL DEFAULT 0
);
INSERT INTO data_versions (name, version, token) VALUES ('world_entries', 0, random()), ('embeddings', 0, random());

CREATE TRIGGER world_entries_version_insert AFTER INSERT ON world_entries BEGIN
    UPDATE data_versions SET version = version + 1, token = random() WHERE name = 'world_entries';
END;
CREATE TRIGGER world_entries_version_update AFTER UPDATE ON world_entries BEGIN
    UPDATE data_versions SET version = version + 1, token = random() WHERE name = 'world_entries';
END;
CREATE TRIGGER world_entries_version_delete AFTER DELETE ON world_entries BEGIN
    UPDATE data_versions SET version = version + 1, token = random() WHERE name = 'world_entries';
END;

CREATE TRIGGER embeddings_version_insert AFTER INSERT ON embeddings BEGIN
    UPDATE data_versions SET version = version + 1, token = random() WHERE name = 'embeddings';
END;
CREATE TRIGGER embeddings_version_update AFTER UPDATE ON embeddings BEGIN
    UPDATE data_versions SET version = version + 1, token = random() WHERE name = 'embeddings';
END;
CREATE TRIGGER embeddings_version_delete AFTER DELETE ON embeddings BEGIN
    UPDATE data_versions SET version = version + 1, token = random() WHERE name = 'embeddings';
END;
