"""`neuralrp worlds`: the worlds chats use, per chat, per character (the card's linked world) and global."""

from __future__ import annotations

import json
from typing import Any

import click

from neuralrp.config import Settings, load_settings
from neuralrp.errors import NeuralRPError


def _settings(ctx: click.Context) -> Settings:
    try:
        return load_settings(ctx.obj["config"])
    except NeuralRPError as e:
        raise click.ClickException(e.message) from e


def _library(settings: Settings) -> Any:
    from neuralrp.library.service import Library
    from neuralrp.services import open_database

    return Library(open_database(settings), settings.data_dir)


@click.group(name="worlds")
def worlds_group() -> None:
    """The worlds chats use: per chat, per character (the card's linked world) and global."""


def _world_ids(conn: Any, names: tuple[str, ...]) -> list[int]:
    from neuralrp.library.worlds import world_by_name

    return [world_by_name(conn, name).id for name in names]


@worlds_group.command(name="list")
@click.pass_context
def worlds_list(ctx: click.Context) -> None:
    """Every world with its entries and who uses it."""
    from neuralrp.chats.worldlinks import world_users
    from neuralrp.library.worlds import list_worlds
    from neuralrp.ops.ui_settings import saved_settings

    settings, _ = saved_settings(_settings(ctx))
    active = {n.casefold() for n in settings.world.active_worlds}
    with _library(settings).db.session() as conn:
        users, found = world_users(conn), list_worlds(conn)
    for w in found:
        used = users.get(w["id"], {})
        bits = [f"{w['entry_count']} entries"] + (["global"] if w["name"].casefold() in active else [])
        bits += [f"chats {', '.join(map(str, used['chats']))}"] if used.get("chats") else []
        bits += [f"linked by {', '.join(used['characters'])}"] if used.get("characters") else []
        click.echo(f"{w['id']:>4}  {w['name']}  ({'; '.join(bits)})")


@worlds_group.command(name="chat")
@click.argument("chat_id", type=int)
@click.option("--attach", multiple=True, help="A world (by name) to add to the chat's own worlds.")
@click.option("--detach", multiple=True, help="A world (by name) to take off the chat's own worlds.")
@click.pass_context
def worlds_chat(ctx: click.Context, chat_id: int, attach: tuple[str, ...], detach: tuple[str, ...]) -> None:
    """Show (and change) the worlds a chat uses, with the link each came through."""
    from neuralrp.chats import service, worldlinks
    from neuralrp.ops.ui_settings import saved_settings

    settings, _ = saved_settings(_settings(ctx))
    with _library(settings).db.session() as conn:
        try:
            if attach or detach:
                drop = set(_world_ids(conn, detach))
                keep = [w for w in worldlinks.chat_world_choice(conn, chat_id) + _world_ids(conn, attach)
                        if w not in drop]
                service.set_chat_worlds(conn, chat_id, keep)
            service.chat_public(conn, chat_id)
            links = worldlinks.world_links(conn, chat_id, settings.world.active_worlds)
        except NeuralRPError as e:
            raise click.ClickException(e.message) from e
    for link in links:
        click.echo(f"{link.world_id:>4}  {link.name}  (via {worldlinks.link_label(link.via)})")
    if not links:
        click.echo(f"chat {chat_id} uses no world")


@worlds_group.command(name="link")
@click.argument("character")
@click.argument("world", required=False, default="")
@click.pass_context
def worlds_link(ctx: click.Context, character: str, world: str) -> None:
    """Link CHARACTER's card to WORLD (its extensions.world; no WORLD: unlink). The card file is rewritten."""
    from neuralrp.library.characters import character_by_name

    library = _library(_settings(ctx))
    try:
        with library.db.session() as conn:
            char = character_by_name(conn, character)
            world = world and _world_names(conn, world)
        card = json.loads(json.dumps(char.card))
        card["data"].setdefault("extensions", {})["world"] = world
        library.update_card(char.id, card)
    except NeuralRPError as e:
        raise click.ClickException(e.message) from e
    click.echo(f"{char.name} is linked to {world}" if world else f"{char.name} is linked to no world")


def _world_names(conn: Any, name: str) -> str:
    from neuralrp.library.worlds import world_by_name

    return world_by_name(conn, name).name


@worlds_group.command(name="global")
@click.option("--add", multiple=True, help="A world (by name) every chat uses.")
@click.option("--remove", multiple=True, help="A world to take off the global list.")
@click.pass_context
def worlds_global(ctx: click.Context, add: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Show (and change) the worlds every chat uses (world.active_worlds, saved like the Settings page does; a
    running server takes the change at its next start, or set it on the Settings page)."""
    from neuralrp.ops.ui_settings import LiveSettings

    library = _library(_settings(ctx))
    live = LiveSettings(_settings(ctx), library.db)
    live.load()
    names = list(live.current.world.active_worlds)
    try:
        if add or remove:
            with library.db.session() as conn:
                added = [_world_names(conn, n) for n in add]
            gone = {n.casefold() for n in remove}
            names = [n for n in dict.fromkeys(names + added) if n.casefold() not in gone]
            live.update({"world": {"active_worlds": names}})
    except NeuralRPError as e:
        raise click.ClickException(e.message) from e
    click.echo("\n".join(names) if names else "no global worlds")
