"""`neuralrp prompt CHAT --json`, GET /api/chats/{id}/prompt and the request the LLM gets are the same prompt."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from neuralrp.chats import service
from neuralrp.cli import cli
from neuralrp.context.sections import Prompt, Section
from neuralrp.retrieval.index import reindex_all
from tests.api.chat_helpers import chat_client, new_chat, reply_requests
from tests.fakes import FakeLLM
from tests.waiting import wait_until

WORLD = {"entries": {
    "0": {"uid": 0, "key": ["gloamwolf", "gloamwolves"], "comment": "Gloamwolves",
          "content": "Gloamwolves are wolves made of shadow and smoke that hunt only at dusk."},
    "1": {"uid": 1, "key": ["starsalt"], "content": "Starsalt is blue salt from a meteor crater, used as money."},
    "2": {"uid": 2, "key": ['"Sunken Library"'], "content": "A drowned archive under the bay."},
}}
LINE = "Shadow wolves made of smoke only hunt at dusk, so we pay the ferryman in starsalt and cross at noon."


def as_messages(doc: dict[str, Any]) -> list[dict[str, str]]:
    """The chat messages an inspector document's sections make (as the LLM receives them)."""
    sections = [Section(**{k: s[k] for k in ("kind", "role", "placement", "source", "tokens", "text")})
                for s in doc["sections"]]
    return [{"role": m.role, "content": m.content} for m in Prompt(doc["budget"], sections).messages()]


def test_cli_api_and_llm_request_are_the_same_prompt(make_settings: Any) -> None:
    settings = make_settings(llm={"base_url": "http://llm.test/v1"})
    fake = FakeLLM("openai", context_length=settings.context.max_tokens)
    with chat_client(settings, fake) as client:
        services = client.app.state.services
        chat_id = new_chat(client)["id"]
        world = client.post("/api/worlds/import", files={"file": ("w.json", json.dumps(WORLD).encode())})
        assert world.status_code == 201, world.text
        with services.db.session() as conn:
            conn.execute("INSERT INTO chat_worlds (chat_id, world_id) VALUES (?, ?)", (chat_id, world.json()["id"]))
            service.post_user_message(conn, chat_id, LINE)
        assert services.embedder.wait(120), services.embedder.error
        reindex_all(services.db, services.embedder)  # what the lore-index worker does in the background
        served = client.get(f"/api/chats/{chat_id}/prompt").json()
        env = {"NEURALRP_PATHS_DATA_DIR": str(settings.data_dir)}
        result = CliRunner().invoke(cli, ["prompt", str(chat_id), "--json"], env=env)
        assert result.exit_code == 0, result.output
        assert "waiting for the embedding model" in result.stderr
        prompt = {k: v for k, v in served.items() if k != "background"}  # the server's worker notes, not prompt
        assert json.loads(result.stdout) == prompt
        lore = {s["source"].get("entry_id"): s["source"].get("reason") for s in served["sections"]
                if s["kind"] == "lore"}
        assert sorted(lore.values()) == ["keyword", "semantic"], served["sections"]  # starsalt + the paraphrase
        fake.enqueue("We cross at noon.")
        client.portal.call(services.generations.start, chat_id, "reply")
        wait_until(lambda: reply_requests(fake), timeout=30, what="the reply request")
        assert reply_requests(fake)[0].json["messages"] == as_messages(served)
