-- A character linked to a world it does not own: a card whose embedded book equals a world already in the
-- library is linked to that world instead of getting a copy of it (worlds.character_id stays the owner, the
-- world that came with the card). The card's book is exported from the linked world.
CREATE TABLE character_worlds (
    character_id INTEGER NOT NULL REFERENCES characters(id) ON DELETE CASCADE,
    world_id INTEGER NOT NULL REFERENCES worlds(id) ON DELETE CASCADE,
    linked_at TEXT NOT NULL,
    PRIMARY KEY (character_id, world_id)
);
CREATE INDEX ix_character_worlds_world ON character_worlds(world_id);
