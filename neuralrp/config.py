"""Typed settings: defaults < config.yaml < NEURALRP_{SECTION}_{KEY} env vars < CLI flags."""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from neuralrp.errors import ConfigError

ENV_PREFIX = "NEURALRP_"
CONFIG_ENV = "NEURALRP_CONFIG"
SECRET_KEYS = frozenset({"api_key", "access_token", "password"})


class Section(BaseModel):
    """Base for a config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)


class PathSettings(Section):
    data_dir: Path = Path("data")


def web_base_url(value: str | None) -> str | None:
    """A base URL must be http:// or https:// with a host (never file:, gopher:, javascript: ...); blank is none."""
    if value is None or not value.strip():
        return None
    scheme, sep, rest = value.strip().partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if not sep or scheme.lower() not in ("http", "https") or not host or any(c.isspace() for c in value.strip()):
        raise ValueError("must be an http:// or https:// address with a host name")
    return value.strip()


class LLMSettings(Section):
    base_url: str | None = None
    api_key: str | None = None

    @field_validator("base_url")
    @classmethod
    def _web_base_url(cls, value: str | None) -> str | None:
        return web_base_url(value)
    backend: Literal["auto", "openai", "koboldcpp", "tabbyapi", "ollama", "llamacpp", "llamacpp_python"] = "auto"
    model: str = ""
    api_mode: Literal["chat", "completion"] = "chat"
    template: Literal["chatml", "llama3", "mistral", "alpaca"] = "chatml"
    timeout_s: float = Field(300.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    keep_incomplete: bool = True
    thinking: bool = False
    parallel_slots: int = Field(1, ge=1, le=64)
    background_timeout_s: float = Field(300.0, gt=0)


class SamplingSettings(Section):
    temperature: float = Field(0.8, ge=0, le=10)
    top_p: float = Field(0.95, ge=0, le=1)
    top_k: int = Field(40, ge=0)
    min_p: float = Field(0.05, ge=0, le=1)
    repetition_penalty: float = Field(1.08, ge=0)
    max_tokens: int = Field(350, ge=1)
    stop: list[str] = Field(default_factory=list)


class LocalSettings(Section):
    model_path: Path | None = None
    demo: bool = False
    n_ctx: int = Field(4096, ge=256)
    n_threads: int | None = Field(None, ge=1)
    startup_timeout_s: float = Field(120.0, gt=0)
    prompt_cache_mb: int | None = Field(None, ge=0)  # RAM prompt cache (None: sized from the GGUF, 0: off)


class SizePreset(Section):
    label: str = Field(min_length=1)
    width: int = Field(ge=64, le=4096)
    height: int = Field(ge=64, le=4096)


def _default_sizes() -> list[SizePreset]:
    return [SizePreset(label="Square", width=512, height=512), SizePreset(label="Portrait", width=512, height=768),
            SizePreset(label="Landscape", width=768, height=512)]


class ImageSettings(Section):
    base_url: str | None = None
    username: str | None = None
    password: str | None = None
    timeout_s: float = Field(600.0, gt=0)
    large_context_tokens: int = Field(12000, ge=0)
    presets_enabled: bool = True
    vram_gb: int = 8
    steps: int = Field(20, ge=1, le=150)
    cfg_scale: float = Field(7.0, ge=1, le=30)
    sampler: str = "Euler a"
    scheduler: str = "Automatic"
    width: int = Field(512, ge=64, le=4096)
    height: int = Field(512, ge=64, le=4096)
    size_presets: list[SizePreset] = Field(default_factory=_default_sizes)
    quality_tags: str = "masterpiece, best quality, high quality"
    negative_prompt: str = "low quality, worst quality, bad anatomy, bad hands, text, watermark"
    user_in_shot: bool = False
    user_gender: Literal["female", "male", "other", ""] = ""
    user_tags: str = ""

    @field_validator("base_url")
    @classmethod
    def _web_base_url(cls, value: str | None) -> str | None:
        return web_base_url(value)

    @field_validator("vram_gb")
    @classmethod
    def _known_card_size(cls, value: int) -> int:
        if value not in (8, 12, 16):
            raise ValueError("must be 8, 12 or 16 (GB of graphics memory)")
        return value


class ContextSettings(Section):
    max_tokens: int = Field(8192, ge=512)
    absence_turns: int = Field(20, ge=1)
    summarize_at: float = Field(0.8, gt=0, le=1)
    keep_recent_turns: int = Field(6, ge=1)
    summary_word_limit: int = Field(1200, ge=100)


class WorldSettings(Section):
    canon_law_every: int = Field(3, ge=1)
    lore_token_budget: int = Field(800, ge=0)
    semantic_threshold: float = Field(0.40, ge=-1, le=1)
    active_worlds: list[str] = Field(default_factory=list)  # worlds (by name) every chat uses


class LibrarySettings(Section):
    scan_on_start: bool = True
    watch: bool = True


class EmbeddingSettings(Section):
    model: Literal["e5", "minilm", "mpnet"] = "e5"


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"
    log_prompts: bool = False
    max_mb: int = Field(10, ge=1)
    keep_files: int = Field(10, ge=1)
    rotate_daily: bool = True


class BackupSettings(Section):
    enabled: bool = True
    every_hours: float = Field(24, gt=0)
    retention_days: int = Field(30, ge=1)
    keep_at_least: int = Field(3, ge=1)


class RetentionSettings(Section):
    unnamed_chat_days: int = Field(0, ge=0)
    autosave_days: int = Field(0, ge=0)
    archived_message_days: int = Field(0, ge=0)
    metrics_days: int = Field(30, ge=0)
    vacuum_every_days: int = Field(7, ge=0)
    deleted_chat_days: int = Field(30, ge=0)


class ChatSettings(Section):
    history_days: int = Field(30, ge=1)
    system_prompt: str = ""  # empty: the built-in prompt (neuralrp/context/text.py DEFAULT_SYSTEM_PROMPT)
    auto_replies: int = Field(3, ge=1, le=10)  # Auto mode: addressed characters that answer one message in turn
    greetings: Literal["all", "first"] = "all"  # a new chat's greetings: every member's in cast order, or the first's


class SecuritySettings(Section):
    access_token: str | None = None
    max_upload_mb: int = Field(20, ge=1)
    allowed_hosts: list[str] = Field(default_factory=list)
    max_json_depth: int = Field(64, ge=8)


class Settings(BaseSettings):
    """All of NeuralRP's settings; build with load_settings(), never at import."""

    model_config = SettingsConfigDict(extra="forbid", validate_assignment=True)

    server: ServerSettings = Field(default_factory=ServerSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    local: LocalSettings = Field(default_factory=LocalSettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    context: ContextSettings = Field(default_factory=ContextSettings)
    world: WorldSettings = Field(default_factory=WorldSettings)
    library: LibrarySettings = Field(default_factory=LibrarySettings)
    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    chats: ChatSettings = Field(default_factory=ChatSettings)
    backups: BackupSettings = Field(default_factory=BackupSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Only init kwargs: load_settings() merges file and environment itself to name bad keys."""
        return (init_settings,)

    @property
    def data_dir(self) -> Path:
        """The data directory, absolute."""
        return self.paths.data_dir.expanduser().resolve()

    @property
    def db_path(self) -> Path:
        """Path of the SQLite file."""
        return self.data_dir / "neuralrp.db"


def section_fields() -> dict[str, type[Section]]:
    """Map section name to its model class."""
    return {name: f.annotation for name, f in Settings.model_fields.items()}  # type: ignore[misc]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror})") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def _is_structured(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, dict):
        return True
    return any(typing.get_origin(a) in (list, dict) for a in typing.get_args(annotation))


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Turn NEURALRP_{SECTION}_{KEY} variables into a nested dict; also return key -> variable name."""
    sections = section_fields()
    out: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV:
            continue
        rest = var[len(ENV_PREFIX):].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError(f"{var}: unknown setting section; known sections: {', '.join(sections)}")
        key = rest[len(section) + 1:]
        field = sections[section].model_fields.get(key)
        if field is None:
            known = ", ".join(sections[section].model_fields)
            raise ConfigError(f"{var}: unknown key '{section}.{key}'; known keys: {known}")
        value: Any = raw
        if _is_structured(field.annotation):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{var}: '{section}.{key}' needs a JSON list or object ({e.msg})") from e
        out.setdefault(section, {})[key] = value
        origin[f"{section}.{key}"] = var
    return out, origin


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _format_errors(err: ValidationError, origin: dict[str, str], source: str) -> str:
    lines = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"])
        where = origin.get(key, source)
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}' (in {where})")
        else:
            got = item.get("input")
            lines.append(f"'{key}': {item['msg']} (got {got!r}, in {where})")
    return "invalid settings: " + "; ".join(lines)


def resolve_config_path(path: Path | str | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The config file to read and whether the user named it explicitly."""
    if path is not None:
        return Path(path), True
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]), True
    return Path("config.yaml"), False


def load_settings(
    path: Path | str | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings from the config file, the environment and explicit overrides."""
    env = os.environ if environ is None else environ
    cfg_path, explicit = resolve_config_path(path, env)
    data: dict[str, Any] = {}
    if cfg_path.exists():
        data = _read_yaml(cfg_path)
    elif explicit:
        raise ConfigError(f"{cfg_path}: config file not found")
    env_data, origin = _env_overrides(env)
    merged = _merge(_merge(data, env_data), overrides or {})
    try:
        return Settings(**merged)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, origin, str(cfg_path))) from e


def apply_overrides(base: Settings, overrides: Mapping[str, Any], *, source: str) -> Settings:
    """Base settings with nested overrides applied and validated; errors name the key and the source."""
    merged = _merge(base.model_dump(), overrides)
    try:
        return Settings(**merged)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, {}, source)) from e


def masked_dump(settings: Settings) -> dict[str, Any]:
    """Settings as plain data with secrets replaced by '***'."""
    data = settings.model_dump(mode="json")
    for section in data.values():
        for key in SECRET_KEYS & section.keys():
            if section[key]:
                section[key] = "***"
    return data
