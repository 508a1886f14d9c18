"""Settings edited in the web UI: stored in the DB, layered over config.yaml and the environment."""

from __future__ import annotations

import json
import logging
from typing import Any

from neuralrp.clock import iso
from neuralrp.config import SECRET_KEYS, Settings, apply_overrides
from neuralrp.db.connection import Database, transaction
from neuralrp.errors import ConfigError, InvalidInput, NotFound

EDITABLE: dict[str, tuple[str, ...]] = {
    "llm": ("base_url", "api_key", "backend", "model", "api_mode", "template", "timeout_s", "keep_incomplete"),
    "sampling": ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_tokens", "stop"),
    "context": ("max_tokens", "absence_turns", "summarize_at", "keep_recent_turns", "summary_word_limit"),
    "world": ("canon_law_every", "lore_token_budget", "semantic_threshold"),
    "images": ("base_url", "timeout_s", "large_context_tokens", "presets_enabled", "vram_gb", "steps", "cfg_scale",
               "sampler", "scheduler", "width", "height", "quality_tags", "negative_prompt", "user_in_shot",
               "user_gender", "user_tags"),
}
MASK = "***"
log = logging.getLogger(__name__)


def _check_patch(patch: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(patch, dict):
        raise InvalidInput("settings must be an object of sections")
    clean: dict[str, dict[str, Any]] = {}
    for section, values in patch.items():
        if section not in EDITABLE:
            raise InvalidInput(f"'{section}' cannot be edited here; editable sections: {', '.join(EDITABLE)}")
        if not isinstance(values, dict):
            raise InvalidInput(f"'{section}' must be an object of keys")
        for key, value in values.items():
            if key not in EDITABLE[section]:
                raise InvalidInput(f"unknown key '{section}.{key}'; editable: {', '.join(EDITABLE[section])}")
            if key in SECRET_KEYS and value == MASK:
                continue
            clean.setdefault(section, {})[key] = value
    return clean


class LiveSettings:
    """The effective settings: base (file + env) plus the UI's stored overrides."""

    def __init__(self, base: Settings, db: Database) -> None:
        self.base = base
        self.db = db
        self.overrides: dict[str, dict[str, Any]] = {}
        self.current = base

    def load(self) -> None:
        """Read stored overrides; ones that no longer validate are ignored (and reported) rather than fatal."""
        with self.db.session() as conn:
            rows = conn.execute("SELECT key, value_json FROM settings WHERE key LIKE 'ui.%'").fetchall()
        kept: dict[str, dict[str, Any]] = {}
        for row in rows:
            _, section, key = row["key"].split(".", 2)
            if key not in EDITABLE.get(section, ()):
                continue
            trial = {s: dict(v) for s, v in kept.items()}
            trial.setdefault(section, {})[key] = json.loads(row["value_json"])
            try:
                apply_overrides(self.base, trial, source="settings saved in the UI")
            except ConfigError as e:
                log.warning("ignoring a stored UI setting: %s", e.message)
                continue
            kept = trial
        self.overrides = kept
        self.current = apply_overrides(self.base, kept, source="settings saved in the UI")

    def document(self) -> dict[str, Any]:
        """Editable values (secrets masked) and which keys the UI overrides."""
        dumped = self.current.model_dump(mode="json")
        values = {s: {k: dumped[s][k] for k in keys} for s, keys in EDITABLE.items()}
        for section in values.values():
            for key in SECRET_KEYS & section.keys():
                section[key] = MASK if section[key] else None
        overridden = sorted(f"{s}.{k}" for s, keys in self.overrides.items() for k in keys)
        return {"values": values, "overridden": overridden}

    def update(self, patch: Any) -> set[str]:
        """Validate and store a partial update; returns the sections that changed."""
        clean = _check_patch(patch)
        merged = {s: {**self.overrides.get(s, {}), **clean.get(s, {})} for s in {*self.overrides, *clean}}
        try:
            effective = apply_overrides(self.base, merged, source="the settings page")
        except ConfigError as e:
            raise InvalidInput(e.message) from e
        with self.db.session() as conn, transaction(conn):
            for section, values in clean.items():
                for key, value in values.items():
                    conn.execute("INSERT INTO settings (key, value_json, updated_at) VALUES (?, ?, ?)"
                                 " ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json,"
                                 " updated_at = excluded.updated_at", (f"ui.{section}.{key}", json.dumps(value), iso()))
        self.overrides, self.current = merged, effective
        return set(clean)

    def reset(self, section: str, key: str) -> None:
        """Drop one UI override; the config-file value applies again."""
        if key not in self.overrides.get(section, {}):
            raise NotFound(f"'{section}.{key}' is not overridden in the UI")
        with self.db.session() as conn:
            conn.execute("DELETE FROM settings WHERE key = ?", (f"ui.{section}.{key}",))
        del self.overrides[section][key]
        self.current = apply_overrides(self.base, self.overrides, source="settings saved in the UI")
