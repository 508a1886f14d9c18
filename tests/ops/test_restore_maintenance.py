"""Restore as a maintenance mode, against the running app over real sockets with the fake LLM streaming.

Under 8 concurrent writers with replies in flight: nothing acknowledged (2xx) before the restore began is
missing from the pre-restore backup, writes during the restore get 409 with the maintenance sentence, and
folder sync does not undo the restore. A backup that fails verification stops nothing.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from neuralrp.api.maintenance import gated
from neuralrp.app import create_app
from neuralrp.config import Settings
from neuralrp.library.cardfile import parse_card
from neuralrp.library.service import Library
from neuralrp.library.sync import scan
from neuralrp.ops.backup import SLOW_ENV, archive_folders, create_backup, files_archive, list_backups, prune_backups
from neuralrp.services import RESTORING, Services, restore_offline
from tests.api.chat_helpers import CARD
from tests.fakes import FakeLLM, LiveServer
from tests.waiting import wait_until

LONG_REPLY = " ".join(f"word{i}" for i in range(60))  # 60 chunks: with the fake's delay, ~3 s of streaming
WORLD = "Northreach"


@dataclass
class Seen:
    """What one writer was told: acknowledgements (2xx) with the time they arrived, refusals, surprises."""

    name: str
    acks: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    refusals: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    interrupted: list[dict[str, Any]] = field(default_factory=list)  # replies the restore stopped
    unexpected: list[str] = field(default_factory=list)
    streaming: bool = False

    def answer(self, resp: httpx.Response, ack: Callable[[dict[str, Any]], dict[str, Any]]) -> bool:
        """Record a plain JSON answer; False when it was a refusal."""
        if resp.is_success:
            self.acks.append((time.monotonic(), ack(resp.json())))
            return True
        if resp.status_code == 409:
            self.refusals.append((409, resp.json()))
        else:
            self.unexpected.append(f"{resp.status_code} {resp.text[:300]}")
        return False


@dataclass
class Fixture:
    """The running app, its services, the fake LLM and an HTTP client."""

    url: str
    services: Services
    fake: FakeLLM
    settings: Settings


@pytest.fixture
def running(make_settings: Any) -> Iterator[Fixture]:
    fake = FakeLLM("llamacpp", hang_timeout=30)
    with LiveServer(fake.app) as llm:
        settings = make_settings(llm={"base_url": llm.url})
        app = create_app(settings)
        with LiveServer(app, graceful_timeout=5) as server:
            yield Fixture(server.url, app.state.services, fake, settings)


def client(url: str) -> httpx.Client:
    """A client of the app (no proxies from the environment)."""
    return httpx.Client(base_url=url, trust_env=False, timeout=60)


# ---- the writers


def stream_reply(http: httpx.Client, seen: Seen, chat_id: int, n: int) -> bool:
    """Send a message and follow its SSE stream; False when the request was refused."""
    with http.stream("POST", f"/api/chats/{chat_id}/messages", json={"content": f"line {n} in chat {chat_id}"}) as r:
        if r.status_code != 200:
            r.read()
            return seen.answer(r, lambda body: body)
        text = ""
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event["type"] == "user":
                seen.acks.append((time.monotonic(), {"user": event["message"]}))
            elif event["type"] == "token":
                text += event["text"]
                seen.streaming = True
            elif event["type"] == "done" and event["message"] is not None:
                seen.acks.append((time.monotonic(), {"reply": event["message"]}))
            elif event["type"] == "error":
                seen.interrupted.append({**event, "streamed": text})
        seen.streaming = False
    return True


def json_reply(http: httpx.Client, seen: Seen, chat_id: int, n: int) -> bool:
    """Send a message without streaming (the answer comes when the reply ends)."""
    r = http.post(f"/api/chats/{chat_id}/messages", json={"content": f"plain {n}", "stream": False})
    if r.status_code == 409 and r.json().get("message"):
        seen.interrupted.append({**r.json(), "streamed": r.json()["message"]["content"]})
        return False
    return seen.answer(r, lambda body: {"user": body["user"], "reply": body["reply"]})


def run_writer(seen: Seen, url: str, stop: threading.Event, step: Callable[[httpx.Client, Seen, int], bool],
               stop_when_refused: bool) -> None:
    """Call step(n) for n = 1, 2, ... until told to stop (or, if asked, after the first refusal)."""
    with client(url) as http:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                ok = step(http, seen, n)
            except httpx.HTTPError as e:
                seen.unexpected.append(f"{type(e).__name__}: {e}")
                return
            if not ok and stop_when_refused:
                return


def writers(f: Fixture, ids: dict[str, int], card: dict[str, Any]) -> list[tuple[Seen, Any, bool]]:
    """The eight writers: (what they saw, their step, whether they stop at the first refusal)."""

    def edit_card(http: httpx.Client, seen: Seen, n: int) -> bool:
        body = json.loads(json.dumps(card))
        body["data"]["description"] = f"edit {n}"
        return seen.answer(http.put(f"/api/characters/{ids['char']}", json={"card": body}), lambda _: {"card": n})

    def save_world(http: httpx.Client, seen: Seen, n: int) -> bool:
        entries = [{"keys": ["tower"], "content": f"world edit {n}"}]
        return seen.answer(http.put(f"/api/worlds/{ids['world']}", json={"entries": entries}), lambda _: {"world": n})

    def change_setting(http: httpx.Client, seen: Seen, n: int) -> bool:
        resp = http.put("/api/settings", json={"sampling": {"top_k": 100 + n}})
        return seen.answer(resp, lambda _: {"top_k": 100 + n})

    def create_chat(http: httpx.Client, seen: Seen, n: int) -> bool:
        resp = http.post("/api/chats", json={"character_ids": [ids["char"]], "title": f"created {n}"})
        return seen.answer(resp, lambda body: {"chat": body["id"]})

    def rename(http: httpx.Client, seen: Seen, n: int) -> bool:
        return seen.answer(http.patch(f"/api/chats/{ids['a']}", json={"title": f"title {n}"}), lambda _: {"title": n})

    return [
        (Seen("send-a"), lambda h, s, n: stream_reply(h, s, ids["a"], n), False),
        (Seen("send-b"), lambda h, s, n: stream_reply(h, s, ids["b"], n), False),
        (Seen("send-c"), lambda h, s, n: json_reply(h, s, ids["c"], n), False),
        (Seen("card"), edit_card, True),
        (Seen("world"), save_world, True),
        (Seen("settings"), change_setting, True),
        (Seen("chats"), create_chat, False),
        (Seen("rename"), rename, False),
    ]


# ---- reading backups and folders


def open_backup(path: Path, tmp: Path) -> sqlite3.Connection:
    """A read-only connection to a .db.gz backup."""
    raw = tmp / (path.name + ".db")
    with gzip.open(path, "rb") as src, open(raw, "wb") as out:
        shutil.copyfileobj(src, out)
    conn = sqlite3.connect(raw)
    conn.row_factory = sqlite3.Row
    return conn


def library_rows(conn: Any) -> dict[str, Any]:
    """What folder sync could change: cards and world entries (capsules and the like left out)."""
    chars = {r["id"]: (r["name"], r["card_json"]) for r in conn.execute("SELECT * FROM characters")}
    worlds = {r["id"]: r["name"] for r in conn.execute("SELECT * FROM worlds")}
    entries = sorted((r["world_id"], r["content"]) for r in conn.execute("SELECT * FROM world_entries"))
    return {"characters": chars, "worlds": worlds, "entries": entries}


def number(text: str) -> int:
    """The counter at the end of 'edit 12' / 'title 12'."""
    return int(text.rsplit(" ", 1)[1])


def check_acknowledged(pre: sqlite3.Connection, all_seen: list[Seen], before: float) -> int:
    """Every ack that arrived before `before` is in the pre-restore backup; returns how many were checked."""
    checked = 0
    description = json.loads(pre.execute("SELECT card_json FROM characters WHERE name = 'Seraphina'")
                             .fetchone()["card_json"])["data"]["description"]
    world_texts = [r["content"] for r in pre.execute("SELECT content FROM world_entries")]
    top_k = json.loads(pre.execute("SELECT value_json FROM settings WHERE key = 'ui.sampling.top_k'")
                       .fetchone()["value_json"])
    for seen in all_seen:
        for at, ack in seen.acks:
            if at >= before:
                continue
            checked += 1
            for kind in ("user", "reply"):
                if kind in ack and ack[kind] is not None:
                    row = pre.execute("SELECT content FROM messages WHERE id = ?", (ack[kind]["id"],)).fetchone()
                    assert row is not None and row["content"] == ack[kind]["content"], (seen.name, ack)
            if "card" in ack:
                assert number(description) >= ack["card"], (description, ack)
            if "world" in ack:
                assert max(number(t) for t in world_texts) >= ack["world"], (world_texts, ack)
            if "top_k" in ack:
                assert top_k >= ack["top_k"], (top_k, ack)
            if "chat" in ack:
                assert pre.execute("SELECT 1 FROM chats WHERE id = ?", (ack["chat"],)).fetchone(), ack
            if "title" in ack:
                title = pre.execute("SELECT title FROM chats WHERE title LIKE 'title %'").fetchone()["title"]
                assert number(title) >= ack["title"], (title, ack)
    return checked


def check_mirrors_match_db(settings: Settings) -> None:
    """characters/ and worlds/ hold exactly the DB's mirror files, with the DB's content and recorded mtimes."""
    conn = sqlite3.connect(settings.db_path)
    conn.row_factory = sqlite3.Row
    try:
        chars = conn.execute("SELECT * FROM characters WHERE source_file IS NOT NULL").fetchall()
        worlds = conn.execute("SELECT * FROM worlds WHERE source_file IS NOT NULL").fetchall()
        folder = settings.data_dir / "characters"
        assert sorted(p.name for p in folder.iterdir() if p.suffix in (".png", ".json")) == \
            sorted(r["source_file"] for r in chars)
        for row in chars:
            path = folder / row["source_file"]
            assert abs(path.stat().st_mtime - row["source_mtime"]) < 0.001
            assert parse_card(path.read_bytes(), path.name).data["description"] == \
                json.loads(row["card_json"])["data"]["description"]
        folder = settings.data_dir / "worlds"
        assert sorted(p.name for p in folder.iterdir() if p.suffix == ".json") == \
            sorted(r["source_file"] for r in worlds)
        for row in worlds:
            path = folder / row["source_file"]
            assert abs(path.stat().st_mtime - row["source_mtime"]) < 0.001
            in_file = sorted(e["content"] for e in json.loads(path.read_text())["entries"].values())
            in_db = sorted(r["content"] for r in conn.execute("SELECT content FROM world_entries WHERE world_id = ?",
                                                              (row["id"],)))
            assert in_file == in_db
    finally:
        conn.close()


# ---- the tests


def setup_library(http: httpx.Client) -> tuple[dict[str, int], dict[str, Any]]:
    """A character (with a card file), three chats and a world (with a world file)."""
    a = http.post("/api/chats", json={"card": CARD, "title": "A"}).json()
    char = a["cast"][0]["character_id"]
    b = http.post("/api/chats", json={"character_ids": [char], "title": "B"}).json()
    c = http.post("/api/chats", json={"character_ids": [char], "title": "C"}).json()
    world = http.post("/api/worlds", json={"name": WORLD}).json()
    saved = http.put(f"/api/worlds/{world['id']}", json={"entries": [{"keys": ["tower"], "content": "edit 0"}]})
    assert saved.status_code == 200, saved.text
    card = http.get(f"/api/characters/{char}").json()["card"]
    return {"a": a["id"], "b": b["id"], "c": c["id"], "char": char, "world": world["id"]}, card


def test_restore_under_concurrent_writers(running: Fixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = running
    f.fake.set_fault("slow", between=0.05)
    f.fake.enqueue(*[LONG_REPLY] * 400)
    with client(f.url) as http:
        ids, card = setup_library(http)
        base = http.post("/api/backups", json={"label": "base"}).json()["name"]
        base_path = f.settings.data_dir / "backups" / base
        edited = json.loads(json.dumps(card))
        edited["data"]["description"] = "edited after the backup"
        assert http.put(f"/api/characters/{ids['char']}", json={"card": edited}).status_code == 200
        assert http.post("/api/worlds", json={"name": "Later"}).status_code == 201
        stop = threading.Event()
        crew = writers(f, ids, card)
        threads = [threading.Thread(target=run_writer, args=(s, f.url, stop, step, once), name=s.name, daemon=True)
                   for s, step, once in crew]
        for thread in threads:
            thread.start()
        all_seen = [s for s, _, _ in crew]
        wait_until(lambda: all(len(s.acks) >= 2 for s in all_seen if not s.name.startswith("send"))
                   and any(s.streaming for s in all_seen), what="every writer to be acknowledged and a reply to stream")
        monkeypatch.setenv(SLOW_ENV, "0.003")  # the pre-restore backup takes a while: writers meet the closed door
        restore_began = time.monotonic()
        restored = http.post(f"/api/backups/{base}/restore")
        stop.set()
        for thread in threads:
            thread.join(60)
        assert restored.status_code == 200, restored.text
        assert f.services.watcher is not None and f.services.watcher.wait_for_scans(1, timeout=30), \
            "the folder watcher rescans after the restore"
        resync = http.post("/api/library/sync").json()
        settings_after = http.get("/api/settings").json()
        after_write = http.patch(f"/api/chats/{ids['b']}", json={"title": "after"})
        listing = http.get("/api/backups").json()["backups"]
    assert not any(t.is_alive() for t in threads)
    assert [u for s in all_seen for u in s.unexpected] == []

    refusals = [body for s in all_seen for _, body in s.refusals]
    assert refusals and all(b["detail"] == RESTORING and b["error"] == "MaintenanceMode" for b in refusals), refusals
    assert all(s.refusals for s in all_seen if s.name in ("card", "world", "settings")), "these writers met the door"
    interrupted = [i for s in all_seen for i in s.interrupted]
    assert interrupted, "a reply was streaming when the restore began"
    assert all(i["status"] == 409 and i["detail"] == RESTORING for i in interrupted), interrupted

    pre_name = restored.json()["pre_restore"]
    pre = open_backup(f.settings.data_dir / "backups" / pre_name, tmp_path)
    try:
        assert check_acknowledged(pre, all_seen, restore_began) >= 16
        for item in interrupted:
            if item["message"] is not None:  # the text so far is kept (all that was shown, maybe a chunk more)
                kept = item["message"]
                row = pre.execute("SELECT content, status FROM messages WHERE id = ?", (kept["id"],)).fetchone()
                assert (row["content"], row["status"]) == (kept["content"], "incomplete") == (kept["content"],
                                                                                            kept["status"])
                assert kept["content"].startswith(item["streamed"]) and kept["content"]
    finally:
        pre.close()
    with tarfile.open(files_archive(f.settings.data_dir / "backups" / pre_name)) as tar:
        kept = tar.getnames()
    assert "worlds/Later.json" in kept and any(n.startswith("characters/") for n in kept)
    assert {b["name"] for b in listing} >= {base, pre_name}
    assert next(b for b in listing if b["name"] == pre_name)["files"] == files_archive(Path(pre_name)).name

    base_conn = open_backup(base_path, tmp_path)
    live = sqlite3.connect(f.settings.db_path)
    live.row_factory = sqlite3.Row
    try:
        assert library_rows(live) == library_rows(base_conn), "folder sync did not bring post-backup edits back"
    finally:
        base_conn.close()
        live.close()
    check_mirrors_match_db(f.settings)
    assert resync == {"changes": [], "errors": 0}
    assert "sampling.top_k" not in settings_after["overridden"], "settings were reloaded from the restored DB"
    assert after_write.status_code == 200, "writes are taken again after the restore"


def test_a_backup_failing_verification_stops_nothing(running: Fixture) -> None:
    f = running
    f.fake.set_fault("slow", between=0.03)
    f.fake.enqueue(LONG_REPLY)
    bad = f.settings.data_dir / "backups" / "neuralrp-20250101-000000-bad.db.gz"
    bad.write_bytes(gzip.compress(b"this is not a database" * 100))
    seen = Seen("reply")
    with client(f.url) as http:
        ids, _ = setup_library(http)
        reader = threading.Thread(target=stream_reply, args=(http, seen, ids["a"], 1), daemon=True)
        reader.start()
        wait_until(lambda: seen.streaming, what="the reply to stream")
        refused = http.post(f"/api/backups/{bad.name}/restore")
        during = http.patch(f"/api/chats/{ids['b']}", json={"title": "still writable"})
        reader.join(60)
        listing = http.get("/api/backups").json()["backups"]
    assert refused.status_code == 422, refused.text
    assert "is not a usable SQLite database" in refused.json()["detail"] or "damaged" in refused.json()["detail"]
    assert refused.json()["detail"].endswith("Nothing was stopped or changed.")
    assert during.status_code == 200
    assert seen.interrupted == [] and seen.unexpected == []
    (_, reply), = [a for a in seen.acks if "reply" in a[1]]
    assert reply["reply"]["content"] == LONG_REPLY and reply["reply"]["status"] == "complete"
    assert [b["name"] for b in listing] == [bad.name], "no pre-restore backup was taken"
    assert not f.services.writes.closed and f.services.watcher is not None
    assert f.services.watcher.state == "running"


def test_offline_restore_rewrites_mirrors_so_a_scan_changes_nothing(settings: Settings) -> None:
    from neuralrp.services import open_database

    db = open_database(settings)
    library = Library(db, settings.data_dir)
    result = library.import_card(json.dumps(CARD).encode(), "card.json")
    wid = library.create_world(WORLD)
    folder = settings.data_dir / "backups"
    info = create_backup(db, folder, now=datetime(2025, 1, 1, tzinfo=UTC), label="base")
    with db.session() as conn:
        card = json.loads(conn.execute("SELECT card_json FROM characters").fetchone()["card_json"])
    card["data"]["description"] = "changed after the backup"
    assert result.id is not None
    library.update_card(result.id, card)
    library.save_world(wid, [{"keys": ["x"], "content": "later lore"}])
    report = restore_offline(settings, info.name)
    assert report.pre_restore is not None
    assert scan(library).lines == [], "nothing in the folders is newer than the restored DB"
    with db.session() as conn:
        stored = json.loads(conn.execute("SELECT card_json FROM characters").fetchone()["card_json"])
        assert conn.execute("SELECT count(*) AS n FROM world_entries").fetchone()["n"] == 0
    assert stored["data"]["description"] == CARD["data"]["description"]  # type: ignore[index]
    check_mirrors_match_db(settings)


def picture(colour: tuple[int, int, int]) -> bytes:
    """A small PNG of one colour."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 48), colour).save(out, format="PNG")
    return out.getvalue()


def colour_of(png: bytes) -> tuple[int, ...]:
    """The colour of a picture's top-left pixel."""
    import io

    from PIL import Image

    return tuple(Image.open(io.BytesIO(png)).convert("RGB").getpixel((0, 0)))


def test_a_picture_replaced_after_the_backup_comes_back_with_the_restore(settings: Settings) -> None:
    from neuralrp.library import characters as chars
    from neuralrp.services import open_database

    db = open_database(settings)
    library = Library(db, settings.data_dir)
    cid = library.import_card(json.dumps(CARD).encode(), "card.json").id
    assert cid is not None
    first = library.set_avatar(cid, picture((200, 30, 30)), "red.png")
    red = library.avatar_bytes(first)
    info = create_backup(db, settings.data_dir / "backups", now=datetime(2025, 1, 1, tzinfo=UTC), label="base")
    second = library.set_avatar(cid, picture((30, 30, 200)), "blue.png")
    assert second.avatar_path != first.avatar_path and library.avatar_bytes(first) is None, "red went to trash/"
    restore_offline(settings, info.name)
    with db.session() as conn:
        restored = chars.get_character(conn, cid)
    assert restored.avatar_path == first.avatar_path
    assert red is not None and library.avatar_bytes(restored) == red
    mirror = next((settings.data_dir / "characters").glob("*.png"))
    shown = parse_card(mirror.read_bytes(), mirror.name).avatar_png
    assert shown is not None and colour_of(shown) == (200, 30, 30), "the card file carries the restored picture"
    check_mirrors_match_db(settings)


def test_a_picture_that_cannot_come_back_does_not_stop_the_restore(settings: Settings,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from neuralrp.library import service
    from neuralrp.services import open_database

    db = open_database(settings)
    library = Library(db, settings.data_dir)
    cid = library.import_card(json.dumps(CARD).encode(), "card.json").id
    assert cid is not None
    library.set_avatar(cid, picture((200, 30, 30)), "red.png")
    info = create_backup(db, settings.data_dir / "backups", now=datetime(2025, 1, 1, tzinfo=UTC), label="base")
    library.set_avatar(cid, picture((30, 30, 200)), "blue.png")
    with db.session() as conn:
        card = json.loads(conn.execute("SELECT card_json FROM characters").fetchone()["card_json"])
    card["data"]["description"] = "changed after the backup"
    library.update_card(cid, card)

    def full_disk(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(service.shutil, "move", full_disk)
    report = restore_offline(settings, info.name)
    assert report.pre_restore is not None
    assert scan(library).lines == [], "the card files were still rewritten from the restored DB"
    check_mirrors_match_db(settings)


def test_files_archive_is_listed_pruned_and_deleted_with_its_backup(settings: Settings, tmp_path: Path) -> None:
    from neuralrp.ops.backup import delete_backup
    from neuralrp.services import open_database

    db = open_database(settings)
    folder = settings.data_dir / "backups"
    (settings.data_dir / "characters" / "x.png").write_bytes(b"png")
    old = create_backup(db, folder, now=datetime(2020, 1, 1, tzinfo=UTC), label="pre-restore")
    archive_folders(files_archive(old.path), [settings.data_dir / "characters", settings.data_dir / "worlds"])
    new = create_backup(db, folder, now=datetime(2025, 1, 1, tzinfo=UTC), label="pre-restore")
    archive_folders(files_archive(new.path), [settings.data_dir / "characters"])
    assert [b.name for b in list_backups(folder)] == [new.name, old.name], "archives are not listed as backups"
    assert list_backups(folder)[1].as_dict()["files"] == files_archive(old.path).name
    prune_backups(folder, retention_days=30, keep_at_least=1, now=datetime(2025, 1, 2, tzinfo=UTC))
    assert not old.path.exists() and not files_archive(old.path).exists()
    delete_backup(folder, new.name)
    assert sorted(p.name for p in folder.iterdir()) == []


@pytest.mark.parametrize(("method", "path", "held"), [
    ("POST", "/api/chats/1/messages", True),
    ("PUT", "/api/settings", True),
    ("DELETE", "/api/backups/neuralrp-20250101-000000.db.gz", True),
    ("POST", "/api/cardgen/from-chat/save", True),
    ("POST", "/api/backups/neuralrp-20250101-000000.db.gz/restore", False),
    ("POST", "/api/chats/3/stop", False),
    ("POST", "/api/chats/export/training", False),
    ("POST", "/api/cardgen/character", False),
    ("GET", "/api/chats", False),
    ("POST", "/login.html", False),
])
def test_which_requests_the_door_holds_back(method: str, path: str, held: bool) -> None:
    assert gated(method, path) is held
