"""Tags: an index over the tags kept in each card, for AND filters, top chips and autocomplete."""

from __future__ import annotations

from typing import Any


def _clean(tags: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for tag in tags:
        text = " ".join(str(tag).split())
        if text and text.casefold() not in seen:
            seen[text.casefold()] = text
    return list(seen.values())


def set_character_tags(conn: Any, character_id: int, tags: list[str]) -> None:
    """Make the index hold exactly these tags for the character."""
    conn.execute("DELETE FROM character_tags WHERE character_id = ?", (character_id,))
    for tag in _clean(tags):
        conn.execute("INSERT INTO tags (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (tag,))
        tag_id = conn.execute("SELECT id FROM tags WHERE name = ?", (tag,)).fetchone()["id"]
        conn.execute("INSERT OR IGNORE INTO character_tags (character_id, tag_id) VALUES (?, ?)",
                     (character_id, tag_id))


def tags_by_character(conn: Any) -> dict[int, list[str]]:
    """Every character's tags, by character id."""
    out: dict[int, list[str]] = {}
    rows = conn.execute("SELECT ct.character_id, t.name FROM character_tags ct JOIN tags t ON t.id = ct.tag_id"
                        " ORDER BY t.name COLLATE NOCASE")
    for row in rows:
        out.setdefault(row["character_id"], []).append(row["name"])
    return out


def characters_with_all(conn: Any, tags: list[str]) -> set[int]:
    """Ids of characters carrying every one of the tags (AND)."""
    wanted = _clean(tags)
    if not wanted:
        return {r["id"] for r in conn.execute("SELECT id FROM characters")}
    marks = ", ".join("?" * len(wanted))
    rows = conn.execute(
        f"SELECT ct.character_id FROM character_tags ct JOIN tags t ON t.id = ct.tag_id WHERE t.name IN ({marks})"
        " GROUP BY ct.character_id HAVING count(DISTINCT t.id) = ?", (*wanted, len(wanted)))
    return {r["character_id"] for r in rows}


def top_tags(conn: Any, limit: int = 5) -> list[dict[str, Any]]:
    """The most used tags (global characters only), most used first."""
    rows = conn.execute(
        "SELECT t.name, count(*) AS count FROM character_tags ct JOIN tags t ON t.id = ct.tag_id"
        " JOIN characters c ON c.id = ct.character_id WHERE c.scope_chat_id IS NULL"
        " GROUP BY t.id ORDER BY count DESC, t.name COLLATE NOCASE LIMIT ?", (limit,))
    return [dict(r) for r in rows]


def complete_tags(conn: Any, prefix: str, limit: int = 10) -> list[dict[str, Any]]:
    """Tags starting with the prefix (then containing it), most used first."""
    text = prefix.strip()
    like = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute(
        "SELECT t.name, count(ct.character_id) AS count, (t.name LIKE ? ESCAPE '\\') AS starts"
        " FROM tags t LEFT JOIN character_tags ct ON ct.tag_id = t.id WHERE t.name LIKE ? ESCAPE '\\'"
        " GROUP BY t.id HAVING count > 0 ORDER BY starts DESC, count DESC, t.name COLLATE NOCASE LIMIT ?",
        (f"{like}%", f"%{like}%", limit))
    return [{"name": r["name"], "count": r["count"]} for r in rows]
