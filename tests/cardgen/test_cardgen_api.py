"""Card and world generation through the API with the fake LLM: requests, drafts, faults, saving."""

from __future__ import annotations

import json
from typing import Any

import httpx

from neuralrp.cardgen import prompts
from neuralrp.library.cardfile import parse_card
from tests.api.chat_helpers import chat_client, new_chat, send_streamed
from tests.cardgen.helpers import ANSWER, DESCRIPTION, WORLD_ANSWER, answer
from tests.fakes import FakeLLM
from tests.waiting import wait_until

LLM = {"base_url": "http://llm.test"}


def _expect_request(body: dict[str, Any], messages: list[Any], params: Any) -> None:
    assert body["messages"] == [m.as_dict() for m in messages]
    assert body["temperature"] == params.temperature and body["max_tokens"] == params.max_tokens


def _stored_count(client: Any) -> int:
    return len(client.get("/api/characters").json())


def test_description_to_valid_v2_plist_card(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue(answer())
    with chat_client(make_settings(llm=LLM), fake) as client:
        resp = client.post("/api/cardgen/character", json={"description": DESCRIPTION})
        assert resp.status_code == 200, resp.text
        card = resp.json()["card"]
        assert _stored_count(client) == 0, "a draft is not stored"
    assert card["spec"] == "chara_card_v2" and card["spec_version"] == "2.0"
    data = card["data"]
    assert data["name"] == "Mira" and data["description"] == ANSWER["description"]
    assert data["description"].startswith("[Mira: ") and data["personality"].startswith("[Mira's Personality:")
    assert data["tags"] == ANSWER["tags"] and data["first_mes"] == ANSWER["first_mes"]
    assert data["extensions"]["neuralrp"]["visual_tags"] == "1girl, red_hair, scar, flight_jacket, spyglass, tea_shop"
    assert card["description"] == data["description"], "V1 mirror for SillyTavern"
    parsed = parse_card(json.dumps(card).encode(), "draft.json")
    assert parsed.spec == "v2" and parsed.data == {**parsed.data, **{k: data[k] for k in ("name", "tags")}}
    _expect_request(fake.last_chat_request().json, prompts.character_request(DESCRIPTION, None),
                    prompts.CARD_PARAMS)


def test_name_given_is_kept_and_sent(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue(answer(name="Someone Else"))
    with chat_client(make_settings(llm=LLM), fake) as client:
        card = client.post("/api/cardgen/character", json={"description": DESCRIPTION, "name": "Mira"}).json()
    assert card["card"]["data"]["name"] == "Mira"
    assert fake.last_chat_request().json["messages"][1]["content"].startswith("The character's name is Mira.")


def test_fenced_answer_with_prose_is_accepted(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue(f"Here is your card!\n```json\n{answer()}\n```\nHave fun.")
    with chat_client(make_settings(llm=LLM), fake) as client:
        resp = client.post("/api/cardgen/character", json={"description": DESCRIPTION})
    assert resp.status_code == 200 and len(fake.chat_requests()) == 1


def test_retry_once_with_repair_message(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    bad = answer(description="Mira is a retired pirate.")
    fake.enqueue(bad, answer())
    with chat_client(make_settings(llm=LLM), fake) as client:
        resp = client.post("/api/cardgen/character", json={"description": DESCRIPTION})
    assert resp.status_code == 200, resp.text
    first, second = fake.chat_requests()
    sent = second.json["messages"]
    assert sent[:2] == first.json["messages"]
    assert sent[2] == {"role": "assistant", "content": bad}
    assert sent[3]["role"] == "user" and "'description' is not PList" in sent[3]["content"]
    problem = ("'description' is not PList (line 1 is not wrapped in [ and ]); write it like "
               "[Name: trait, trait; Likes: a, b]")
    assert sent[3]["content"] == prompts.REPAIR.format(problem=problem)
    _expect_request(second.json, prompts.repair_messages(prompts.character_request(DESCRIPTION, None), bad, problem),
                    prompts.CARD_PARAMS)


def test_malformed_twice_gives_clear_502_and_stores_nothing(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue("I'd love to help! Mira is a pirate.", '{"name": "Mira", "description": ')
    with chat_client(make_settings(llm=LLM), fake) as client:
        resp = client.post("/api/cardgen/character", json={"description": DESCRIPTION})
        assert resp.status_code == 502
        detail = resp.json()["detail"]
        assert detail.startswith("The LLM did not give a usable character card, even after one retry")
        assert "no complete JSON object" in detail and "Nothing was changed" in detail
        assert _stored_count(client) == 0 and len(fake.chat_requests()) == 2


def test_no_llm_configured_is_503_with_how_to(make_settings: Any) -> None:
    with chat_client(make_settings()) as client:
        resp = client.post("/api/cardgen/character", json={"description": DESCRIPTION})
    assert resp.status_code == 503 and "set llm.base_url" in resp.json()["detail"]


def test_llm_down_is_503(make_settings: Any) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with chat_client(make_settings(llm={**LLM, "backend": "llamacpp"}), transport=httpx.MockTransport(refuse)) as c:
        resp = c.post("/api/cardgen/character", json={"description": DESCRIPTION})
    assert resp.status_code == 503, resp.text


def test_bad_request_bodies(make_settings: Any) -> None:
    with chat_client(make_settings(llm=LLM), FakeLLM("llamacpp")) as client:
        assert client.post("/api/cardgen/character", json={"description": " "}).status_code == 422
        assert client.post("/api/cardgen/field", json={"card": {"name": "A"}, "field": "avatar"}).status_code == 422
        assert client.post("/api/cardgen/world", json={"description": "x", "count": 0}).status_code == 422


def test_regenerate_one_field(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    new_personality = "[Mira's Personality: gruff, loyal; Likes: storms]"
    fake.enqueue(answer(), json.dumps({"personality": new_personality}), json.dumps({"visual_tags": ["1girl"]}))
    with chat_client(make_settings(llm=LLM), fake) as client:
        card = client.post("/api/cardgen/character", json={"description": DESCRIPTION}).json()["card"]
        out = client.post("/api/cardgen/field", json={"card": card, "field": "personality"}).json()
        assert out["value"] == new_personality and out["card"]["data"]["personality"] == new_personality
        assert {k: v for k, v in out["card"]["data"].items() if k != "personality"} == \
            {k: v for k, v in card["data"].items() if k != "personality"}
        request = fake.last_chat_request().json
        _expect_request(request, prompts.field_request(card["data"], ANSWER["visual_tags"], "personality"),
                        prompts.FIELD_PARAMS)
        tags = client.post("/api/cardgen/field", json={"card": out["card"], "field": "visual_tags"}).json()
        assert tags["card"]["data"]["extensions"]["neuralrp"]["visual_tags"] == "1girl" and tags["value"] == "1girl"


def test_generated_card_saves_exports_and_reimports_losslessly(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue(answer())
    settings = make_settings(llm=LLM)
    with chat_client(settings, fake) as client:
        card = client.post("/api/cardgen/character", json={"description": DESCRIPTION}).json()["card"]
        stored = client.post("/api/characters", json=card)
        assert stored.status_code == 201, stored.text
        cid = stored.json()["id"]
        for fmt in ("json", "png"):
            data = client.get(f"/api/characters/{cid}/export", params={"format": fmt}).content
            assert parse_card(data, f"x.{fmt}").to_card("v2") == card
            client.delete(f"/api/characters/{cid}")
            again = client.post("/api/characters/import", files={"file": (f"mira.{fmt}", data)})
            assert again.status_code == 201
            back = again.json()["card"]  # a PNG re-imports from its ccv3 chunk, so it comes back as V3
            assert parse_card(json.dumps(back).encode(), "back.json").to_card("v2") == card
            assert back["data"]["extensions"] == card["data"]["extensions"]
            cid = again.json()["id"]
        # Before shutdown: the re-imported card's file in characters/ is written, and the folder and the library
        # agree (the folder watcher has nothing left to do).
        source = wait_until(lambda: client.get(f"/api/characters/{cid}").json()["source_file"],
                            what="the character's file name in characters/")
        mirror = settings.data_dir / "characters" / source
        wait_until(mirror.is_file, what=f"{mirror} to be written")
        wait_until(lambda: client.post("/api/library/sync").json(),
                   until=lambda report: report == {"changes": [], "errors": 0},
                   what="characters/ and the library to agree")
    assert parse_card(mirror.read_bytes(), mirror.name).to_card("v2") == card


def test_world_draft_shape_and_save(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue(json.dumps(WORLD_ANSWER))
    with chat_client(make_settings(llm=LLM), fake) as client:
        resp = client.post("/api/cardgen/world", json={"description": "Floating islands.", "name": "Drift", "count": 2})
        assert resp.status_code == 200, resp.text
        draft = resp.json()
        assert draft["name"] == "Drift" and draft["name_taken"] is False
        assert draft["entries"] == WORLD_ANSWER["entries"]
        assert client.get("/api/worlds").json() == [], "a draft is not stored"
        _expect_request(fake.last_chat_request().json, prompts.world_request("Floating islands.", "Drift", 2),
                        prompts.WORLD_PARAMS)
        wid = client.post("/api/worlds", json={"name": draft["name"]}).json()["id"]
        saved = client.put(f"/api/worlds/{wid}", json={"entries": draft["entries"]}).json()
    assert [(e["keys"], e["canon_law"]) for e in saved["entries"]] == [(["Aerith", "floating city"], False),
                                                                      (["skystone"], True)]


def _chat_with_npc(client: Any) -> tuple[int, int]:
    chat = new_chat(client)
    npc = client.post(f"/api/chats/{chat['id']}/npcs", json={"name": "Mira", "description": "An innkeeper."})
    return chat["id"], npc.json()["id"]


def _say_as(client: Any, chat_id: int, npc_id: int, texts: list[str]) -> None:
    from neuralrp.chats import store

    app_db = client.app.state.services.db
    with app_db.session() as conn:
        for text in texts:
            turn = store.bump_turn(conn, chat_id)
            store.insert_message(conn, chat_id, turn=turn, role="assistant", character_id=npc_id,
                                 speaker_name="Mira", content=text)
        conn.execute("INSERT INTO summaries (chat_id, first_message_id, last_message_id, start_turn, end_turn, text,"
                     " created_at, updated_at) VALUES (?, 1, 2, 1, 2, ?, '2026-01-01', '2026-01-01')",
                     (chat_id, "Ari arrived at Mira's inn in a storm."))


def test_from_chat_request_has_messages_and_summaries_and_save_promotes(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    with chat_client(make_settings(llm=LLM), fake) as client:
        chat_id, npc_id = _chat_with_npc(client)
        send_streamed(client, chat_id, "Hello there")
        _say_as(client, chat_id, npc_id, ["*wipes a mug* Storm's coming.", "I used to fly with pirates."])
        fake.reset()
        fake.enqueue(answer(name="Wrong"))
        resp = client.post("/api/cardgen/from-chat", json={"chat_id": chat_id, "character_id": npc_id})
        assert resp.status_code == 200, resp.text
        draft = resp.json()
        assert draft["npc"] is True and draft["card"]["data"]["name"] == "Mira"
        assert draft["card"]["data"]["extensions"]["neuralrp"]["npc"] is True, "the NPC card's extensions are kept"
        user = fake.last_chat_request().json["messages"][1]["content"]
        assert "Mira: *wipes a mug* Storm's coming." in user and "Mira: I used to fly with pirates." in user
        assert "Ari arrived at Mira's inn in a storm." in user and "Hello there" not in user
        assert "description: An innkeeper." in user
        assert fake.last_chat_request().json["messages"][0]["content"] == prompts.FROM_CHAT_SYSTEM
        assert client.get(f"/api/characters/{npc_id}").json()["card"]["data"]["description"] == "An innkeeper."
        saved = client.post("/api/cardgen/from-chat/save",
                            json={"chat_id": chat_id, "character_id": npc_id, "card": draft["card"]})
        assert saved.status_code == 200, saved.text
        assert saved.json()["scope_chat_id"] is None and saved.json()["visual_tags"].startswith("1girl")
        library = {c["name"]: c for c in client.get("/api/characters").json()}
        assert library["Mira"]["id"] == npc_id
        stored = client.get(f"/api/characters/{npc_id}").json()["card"]["data"]
        assert stored["description"] == ANSWER["description"] and "npc" not in stored["tags"]


def test_from_chat_refusals(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    with chat_client(make_settings(llm=LLM), fake) as client:
        chat_id, npc_id = _chat_with_npc(client)
        silent = client.post("/api/cardgen/from-chat", json={"chat_id": chat_id, "character_id": npc_id})
        assert silent.status_code == 422 and "has not said anything" in silent.json()["detail"]
        other = client.post("/api/cardgen/from-chat", json={"chat_id": chat_id, "character_id": 9999})
        assert other.status_code == 404
        _say_as(client, chat_id, npc_id, ["Hi."])
        fake.enqueue("nope", "still nope")
        bad = client.post("/api/cardgen/from-chat", json={"chat_id": chat_id, "character_id": npc_id})
        assert bad.status_code == 502
        assert client.get(f"/api/characters/{npc_id}").json()["scope_chat_id"] == chat_id, "nothing changed"
