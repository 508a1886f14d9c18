"""Settings edited in the web UI: stored in the DB, layered over config.yaml and the environment."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from neuralrp.config import SECRET_KEYS, Settings, apply_overrides
from neuralrp.db import appstate
from neuralrp.db.connection import Database, connect, transaction
from neuralrp.db.maintenance import has_table
from neuralrp.errors import ConfigError, InvalidInput, NotFound

EDITABLE: dict[str, tuple[str, ...]] = {
    "llm": ("base_url", "api_key", "backend", "model", "api_mode", "template", "timeout_s", "keep_incomplete",
            "thinking"),
    "sampling": ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_tokens", "stop"),
    "context": ("max_tokens", "absence_turns", "summarize_at", "keep_recent_turns", "summary_word_limit"),
    "world": ("canon_law_every", "lore_token_budget", "semantic_threshold", "active_worlds"),
    "chats": ("system_prompt", "auto_replies", "greetings"),
    "images": ("base_url", "username", "password", "timeout_s", "large_context_tokens", "presets_enabled",
               "vram_gb", "steps", "cfg_scale", "sampler", "scheduler", "width", "height", "quality_tags",
               "negative_prompt", "user_in_shot", "user_gender", "user_tags"),
}
MASK = "***"
HOST_SECRETS = {"llm": ("api_key",), "images": ("username", "password")}  # credentials tied to a base URL's host
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


def _host(url: Any) -> tuple[str, int | None] | None:
    """(host name, port) of a base URL, or None when it has none."""
    try:
        parts = urlsplit(str(url or ""))
        return (parts.hostname, parts.port) if parts.hostname else None
    except ValueError:
        return None


def forget_secrets_on_new_host(current: Settings, clean: dict[str, dict[str, Any]]) -> list[str]:
    """A patch that moves a base URL to another host clears that section's credentials unless the same patch
    gives new ones: a key is never sent to a host it was not entered for. Returns the keys cleared."""
    cleared = []
    for section, secrets in HOST_SECRETS.items():
        values = clean.get(section, {})
        if "base_url" not in values or _host(values["base_url"]) == _host(getattr(current, section).base_url):
            continue
        for key in secrets:
            if key not in values and getattr(getattr(current, section), key):
                values[key] = None
                cleared.append(f"{section}.{key}")
    return cleared


def valid_overrides(base: Settings, rows: list[tuple[str, Any]]) -> dict[str, dict[str, Any]]:
    """The stored `ui.<section>.<key>` values that still validate over `base`; the others are logged and skipped."""
    kept: dict[str, dict[str, Any]] = {}
    for name, value in rows:
        _, section, key = name.split(".", 2)
        if key not in EDITABLE.get(section, ()):
            continue
        trial = {s: dict(v) for s, v in kept.items()}
        trial.setdefault(section, {})[key] = value
        try:
            apply_overrides(base, trial, source="settings saved in the UI")
        except ConfigError as e:
            log.warning("ignoring a stored UI setting: %s", e.message)
            continue
        kept = trial
    return kept


def saved_settings(base: Settings) -> tuple[Settings, list[str]]:
    """The settings the server runs with: `base` plus the Settings page's saved values, and their names.

    Reads the database read-only and only when it exists; a database without a settings table (never
    migrated) adds nothing.
    """
    if not base.db_path.is_file():
        return base, []
    conn = connect(base.db_path, readonly=True)
    try:
        rows = appstate.values_with_prefix(conn, "ui.") if has_table(conn, "settings") else []
    finally:
        conn.close()
    overrides = valid_overrides(base, rows)
    names = sorted(f"{s}.{k}" for s, keys in overrides.items() for k in keys)
    return apply_overrides(base, overrides, source="settings saved in the UI"), names


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
            rows = appstate.values_with_prefix(conn, "ui.")
        self.overrides = valid_overrides(self.base, rows)
        self.current = apply_overrides(self.base, self.overrides, source="settings saved in the UI")

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
        cleared = forget_secrets_on_new_host(self.current, clean)
        if cleared:
            log.warning("a base URL moved to another host: cleared %s (enter it again for the new host)",
                        ", ".join(cleared))
        merged = {s: {**self.overrides.get(s, {}), **clean.get(s, {})} for s in {*self.overrides, *clean}}
        try:
            effective = apply_overrides(self.base, merged, source="the settings page")
        except ConfigError as e:
            raise InvalidInput(e.message) from e
        with self.db.session() as conn, transaction(conn):
            for section, values in clean.items():
                for key, value in values.items():
                    appstate.set_value(conn, f"ui.{section}.{key}", value)
        self.overrides, self.current = merged, effective
        return set(clean)

    def reset(self, section: str, key: str) -> None:
        """Drop one UI override; the config-file value applies again."""
        if key not in self.overrides.get(section, {}):
            raise NotFound(f"'{section}.{key}' is not overridden in the UI")
        with self.db.session() as conn:
            appstate.delete_value(conn, f"ui.{section}.{key}")
        del self.overrides[section][key]
        before = self.current
        self.current = apply_overrides(self.base, self.overrides, source="settings saved in the UI")
        if key == "base_url" and section in HOST_SECRETS:
            self._forget_ui_secrets(before, section)

    def _forget_ui_secrets(self, before: Settings, section: str) -> None:
        """After a base URL reset moved to the config file's host, the credentials entered in the UI (for the
        other host) are cleared; the config file's own credentials stay."""
        moved = {section: {"base_url": getattr(self.current, section).base_url}}
        cleared = [name.split(".", 1)[1] for name in forget_secrets_on_new_host(before, moved)]
        ui_secrets = [k for k in cleared if k in self.overrides.get(section, {})]
        for name in ui_secrets:
            self.reset(section, name)
