"""Test helpers: worlds and entries written straight into a migrated DB."""

from __future__ import annotations

import json
from typing import Any

from neuralrp.clock import iso

_DEFAULTS: dict[str, Any] = {
    "secondary_keys_json": "[]", "comment": "", "constant": 0, "selective": 0, "selective_logic": 0,
    "disabled": 0, "order_value": 100, "probability": 100, "use_probability": 1, "is_canon_law": 0,
}


def add_world(conn: Any, name: str = "World") -> int:
    """Insert a world row; returns its id."""
    now = iso()
    cur = conn.execute(
        "INSERT INTO worlds (uid, name, created_at, updated_at) VALUES (?, ?, ?, ?)", (name + now, name, now, now)
    )
    return int(cur.lastrowid)


def add_entry(conn: Any, world_id: int, keys: list[str], content: str = "", **columns: Any) -> int:
    """Insert a world entry (DB column names as keyword overrides); returns its id."""
    now = iso()
    row = {**_DEFAULTS, **columns, "world_id": world_id, "keys_json": json.dumps(keys), "content": content}
    if "secondary_keys" in row:
        row["secondary_keys_json"] = json.dumps(row.pop("secondary_keys"))
    uid = conn.execute("SELECT coalesce(max(uid), -1) + 1 AS u FROM world_entries WHERE world_id = ?",
                       (world_id,)).fetchone()["u"]
    row.update(uid=uid, created_at=now, updated_at=now)
    cur = conn.execute(
        f"INSERT INTO world_entries ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
    )
    return int(cur.lastrowid)


def update_entry(conn: Any, entry_id: int, **columns: Any) -> None:
    """Change columns of an entry and bump its updated_at."""
    if "keys" in columns:
        columns["keys_json"] = json.dumps(columns.pop("keys"))
    columns["updated_at"] = iso()
    sets = ", ".join(f"{c} = ?" for c in columns)
    conn.execute(f"UPDATE world_entries SET {sets} WHERE id = ?", (*columns.values(), entry_id))
