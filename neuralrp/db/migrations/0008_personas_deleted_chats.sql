-- Personas (issue 14): who the user plays, with a description the prompt carries and an optional avatar;
-- at most one is the default for new chats. A chat keeps its persona in chats.persona_json
-- ({persona_id, name, description}), refreshed when the persona is edited.
CREATE TABLE personas (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    avatar_path TEXT,
    is_default INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX ux_personas_default ON personas(is_default) WHERE is_default = 1;

-- A deleted chat is kept (undo) until retention purges it: retention.deleted_chat_days after deleted_at.
ALTER TABLE chats ADD COLUMN deleted_at TEXT;
CREATE INDEX ix_chats_deleted ON chats(deleted_at) WHERE deleted_at IS NOT NULL;
