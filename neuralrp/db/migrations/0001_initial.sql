-- NeuralRP schema, version 1.
-- Times are ISO-8601 UTC text. JSON columns hold JSON text. Booleans are 0/1.

CREATE TABLE characters (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- the whole card as imported or edited (V2/V3 JSON), kept losslessly
    card_json TEXT NOT NULL,
    spec TEXT NOT NULL DEFAULT 'chara_card_v2',
    -- NULL: a global character; set: an NPC scoped to that chat
    scope_chat_id INTEGER REFERENCES chats(id) ON DELETE CASCADE,
    gender TEXT NOT NULL DEFAULT '',
    visual_tags TEXT NOT NULL DEFAULT '',
    talkativeness REAL NOT NULL DEFAULT 0.5,
    avatar_path TEXT,
    source_file TEXT,
    source_mtime REAL,
    capsule TEXT,
    capsule_hash TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ix_characters_scope ON characters(scope_chat_id);
CREATE INDEX ix_characters_name ON characters(name COLLATE NOCASE);
CREATE UNIQUE INDEX ux_characters_source ON characters(source_file) WHERE source_file IS NOT NULL;

CREATE TABLE worlds (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- world-level fields we do not model (scan_depth, token_budget, extensions...)
    extra_json TEXT NOT NULL DEFAULT '{}',
    -- set when the world came from (or is embedded in) a character card
    character_id INTEGER REFERENCES characters(id) ON DELETE SET NULL,
    source_file TEXT,
    source_mtime REAL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX ux_worlds_name ON worlds(name COLLATE NOCASE);
CREATE INDEX ix_worlds_character ON worlds(character_id);

CREATE TABLE world_entries (
    id INTEGER PRIMARY KEY,
    world_id INTEGER NOT NULL REFERENCES worlds(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    keys_json TEXT NOT NULL DEFAULT '[]',
    secondary_keys_json TEXT NOT NULL DEFAULT '[]',
    comment TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '',
    constant INTEGER NOT NULL DEFAULT 0,
    selective INTEGER NOT NULL DEFAULT 0,
    selective_logic INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    order_value INTEGER NOT NULL DEFAULT 100,
    position INTEGER NOT NULL DEFAULT 0,
    probability INTEGER NOT NULL DEFAULT 100,
    use_probability INTEGER NOT NULL DEFAULT 1,
    is_canon_law INTEGER NOT NULL DEFAULT 0,
    -- every other SillyTavern entry field, byte-for-byte equivalent JSON
    extra_json TEXT NOT NULL DEFAULT '{}',
    content_hash TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (world_id, uid)
);

CREATE TABLE chats (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    -- NULL title: an unnamed chat
    title TEXT,
    mode TEXT NOT NULL DEFAULT 'narrator' CHECK (mode IN ('narrator', 'focus', 'auto')),
    focus_character_id INTEGER REFERENCES characters(id) ON DELETE SET NULL,
    persona_json TEXT NOT NULL DEFAULT '{}',
    settings_json TEXT NOT NULL DEFAULT '{}',
    -- the absolute turn counter: only ever goes up
    turn INTEGER NOT NULL DEFAULT 0 CHECK (turn >= 0),
    next_seq INTEGER NOT NULL DEFAULT 1,
    autosave INTEGER NOT NULL DEFAULT 0,
    forked_from_chat_id INTEGER REFERENCES chats(id) ON DELETE SET NULL,
    forked_from_message_id INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_activity_at TEXT NOT NULL
);
CREATE INDEX ix_chats_activity ON chats(last_activity_at DESC);

CREATE TABLE chat_cast (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    character_id INTEGER NOT NULL REFERENCES characters(id) ON DELETE CASCADE,
    is_active INTEGER NOT NULL DEFAULT 1,
    position INTEGER NOT NULL DEFAULT 0,
    first_turn INTEGER,
    last_present_turn INTEGER,
    last_full_card_turn INTEGER,
    joined_at TEXT NOT NULL,
    UNIQUE (chat_id, character_id)
);
CREATE INDEX ix_chat_cast_character ON chat_cast(character_id);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    -- order within the chat; never reused
    seq INTEGER NOT NULL,
    -- the chat's absolute turn number when this message was written
    turn INTEGER NOT NULL CHECK (turn >= 0),
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    character_id INTEGER REFERENCES characters(id) ON DELETE SET NULL,
    speaker_name TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'streaming', 'incomplete', 'error')),
    swipe_index INTEGER NOT NULL DEFAULT 0,
    -- soft delete / folded into a summary; never physically removed by normal use
    archived INTEGER NOT NULL DEFAULT 0,
    archived_reason TEXT,
    summary_id INTEGER REFERENCES summaries(id) ON DELETE SET NULL,
    token_count INTEGER,
    token_counter TEXT,
    extra_json TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (chat_id, seq)
);
CREATE INDEX ix_messages_chat_live ON messages(chat_id, archived, seq);
CREATE INDEX ix_messages_turn ON messages(chat_id, turn);

CREATE TABLE message_swipes (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'complete',
    created_at TEXT NOT NULL,
    UNIQUE (message_id, idx)
);

CREATE TABLE summaries (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    first_message_id INTEGER NOT NULL,
    last_message_id INTEGER NOT NULL,
    start_turn INTEGER NOT NULL,
    end_turn INTEGER NOT NULL,
    -- 0: a scene summary of messages; 1+: a summary of summaries
    level INTEGER NOT NULL DEFAULT 0,
    text TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    parent_id INTEGER REFERENCES summaries(id) ON DELETE SET NULL,
    edited INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ix_summaries_chat ON summaries(chat_id, archived, start_turn);

CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    chat_id INTEGER REFERENCES chats(id) ON DELETE SET NULL,
    message_id INTEGER REFERENCES messages(id) ON DELETE SET NULL,
    file_name TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL DEFAULT 'manual' CHECK (source IN ('snapshot', 'manual', 'inpaint', 'recreate')),
    prompt TEXT NOT NULL DEFAULT '',
    negative_prompt TEXT NOT NULL DEFAULT '',
    seed INTEGER,
    sampler TEXT,
    scheduler TEXT,
    steps INTEGER,
    cfg_scale REAL,
    width INTEGER,
    height INTEGER,
    model TEXT,
    -- the exact payload sent, so recreate can send it again
    request_json TEXT NOT NULL DEFAULT '{}',
    info_json TEXT NOT NULL DEFAULT '{}',
    favorite INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX ix_images_chat ON images(chat_id, created_at DESC);

CREATE TABLE tags (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL COLLATE NOCASE UNIQUE
);

CREATE TABLE character_tags (
    character_id INTEGER NOT NULL REFERENCES characters(id) ON DELETE CASCADE,
    tag_id INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (character_id, tag_id)
);
CREATE INDEX ix_character_tags_tag ON character_tags(tag_id);

CREATE TABLE world_tags (
    world_id INTEGER NOT NULL REFERENCES worlds(id) ON DELETE CASCADE,
    tag_id INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (world_id, tag_id)
);
CREATE INDEX ix_world_tags_tag ON world_tags(tag_id);

CREATE TABLE image_tags (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tag_id INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (image_id, tag_id)
);

CREATE TABLE change_history (
    id INTEGER PRIMARY KEY,
    entity_type TEXT NOT NULL,
    entity_id INTEGER NOT NULL,
    operation TEXT NOT NULL CHECK (operation IN ('create', 'update', 'delete', 'restore', 'sync_conflict')),
    old_json TEXT,
    new_json TEXT,
    note TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX ix_change_history_entity ON change_history(entity_type, entity_id, created_at DESC);
CREATE INDEX ix_change_history_created ON change_history(created_at);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value_json TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE job_runs (
    job TEXT PRIMARY KEY,
    last_started_at TEXT,
    last_finished_at TEXT,
    last_status TEXT,
    last_detail TEXT NOT NULL DEFAULT ''
);
