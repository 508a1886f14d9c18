-- Context engine: worlds active in a chat, presence tracking, and embeddings in sqlite-vec.

-- Worlds a chat uses besides those linked to its cast's cards.
CREATE TABLE chat_worlds (
    chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    world_id INTEGER NOT NULL REFERENCES worlds(id) ON DELETE CASCADE,
    PRIMARY KEY (chat_id, world_id)
);

-- The turn of a cast member's last reset point (first appearance or return after absence).
ALTER TABLE chat_cast ADD COLUMN reset_turn INTEGER;
-- The turn a cast member was made inactive (for "left the scene" reminders).
ALTER TABLE chat_cast ADD COLUMN left_turn INTEGER;

-- Which embedding model made a vector, and for what content; vectors live in a vec0 table per dimension.
CREATE TABLE embeddings (
    id INTEGER PRIMARY KEY,
    owner_type TEXT NOT NULL,
    owner_id INTEGER NOT NULL,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (owner_type, owner_id, model)
);
CREATE INDEX ix_embeddings_model ON embeddings(model, owner_type);

-- rowid = embeddings.id
CREATE VIRTUAL TABLE vec_384 USING vec0(embedding float[384] distance_metric=cosine);
CREATE VIRTUAL TABLE vec_768 USING vec0(embedding float[768] distance_metric=cosine);
