"""Prompt building: count tags, snapshot assembly, keyword validation, the rule fallback, presets."""

from __future__ import annotations

from typing import Any

import pytest

from neuralrp.config import ImageSettings
from neuralrp.images.presets import apply_preset, chat_context_tokens, pick_preset
from neuralrp.images.prompting import PromptError, Subject, count_tags, snapshot_prompt, substitute_names
from neuralrp.images.scene import check_keywords, clean_phrase, rule_keywords, transcript
from neuralrp.library.characters import insert_character
from neuralrp.llm.answers import AnswerError
from tests.images.helpers import card


def people(*genders: str) -> list[Subject]:
    return [Subject(f"p{i}", g, []) for i, g in enumerate(genders)]


@pytest.mark.parametrize(("genders", "tags"), [
    (("female",), ["1girl", "solo"]),
    (("male",), ["1boy", "solo"]),
    (("other",), ["1other", "solo"]),
    (("",), ["1other", "solo"]),
    (("female", "female"), ["2girls"]),
    (("male", "female"), ["1girl", "1boy"]),
    (("female", "male", "male", "other"), ["1girl", "2boys", "1other"]),
    (("female",) * 7, ["6+girls"]),
    ((), []),
])
def test_count_tags(genders: tuple[str, ...], tags: list[str]) -> None:
    assert count_tags(people(*genders)) == tags


def test_snapshot_prompt_order_dedupe_and_count_tags_dropped_from_visual_tags() -> None:
    subjects = [Subject("A", "female", ["1girl", "Blonde hair", "solo", "blue eyes"]),
                Subject("B", "male", ["blonde hair", "2boys", "armor"])]
    keywords = {"location": "forest", "action": "walking", "activity": "", "dress": "armor", "expression": "smile"}
    assert snapshot_prompt("masterpiece, best quality", subjects, keywords) == (
        "masterpiece, best quality, 1girl, 1boy, Blonde hair, blue eyes, armor, walking, smile, forest")


def test_check_keywords_validates_and_cleans() -> None:
    names = ["Alice", "Ari"]
    good = check_keywords({"location": "Alice's (dark) forest", "action": ["running", "Jumping"], "activity": None,
                           "dress": "red: cloak", "expression": "smile\nAri"}, names)
    assert good == {"location": "dark forest", "action": "running, jumping", "activity": "", "dress": "red cloak",
                    "expression": "smile"}
    for bad, problem in [({"location": "x"}, "'action' is missing"),
                         ({**good, "dress": 3}, "'dress' must be a string"),
                         ({**good, "location": "x" * 81}, "too long"),
                         ({k: "" for k in good}, "every keyword is empty")]:
        with pytest.raises(AnswerError, match=problem):
            check_keywords(bad, names)
    assert clean_phrase("[Bob] <lora:x:1>, sitting", ["Bob"]) == "lora x 1, sitting"


def test_transcript_cuts_all_but_the_last_line() -> None:
    text = transcript([("Ari", "a" * 400), ("Alice", "b  c " * 100)])
    first, last = text.split("\n")
    assert first == "Ari: " + "a" * 350 + "..." and last == "Alice: " + "b c " * 99 + "b c"


def test_rule_keywords_read_newest_first_and_action_from_the_last_message() -> None:
    lines = [("Ari", "We walk into the old tavern in my leather jacket."),
             ("Mira", "*Mira frowns and sits at the bar.* You look tired, she says."),
             ("Ari", "I hug her.")]
    assert rule_keywords(lines, ["Mira", "Ari"]) == {
        "location": "bar", "action": "hug", "activity": "conversation", "dress": "jacket", "expression": "frown"}
    assert rule_keywords([], []) == {k: "" for k in ("location", "action", "activity", "dress", "expression")}


def test_presets_lower_steps_and_pixels_keeping_aspect() -> None:
    cfg = ImageSettings(large_context_tokens=100, vram_gb=12)
    assert pick_preset(cfg, 100) is None
    preset = pick_preset(cfg, 101)
    assert preset is not None and preset.name == "large-context-12gb"
    assert pick_preset(cfg, 101, skip=True) is None
    assert pick_preset(ImageSettings(large_context_tokens=100, presets_enabled=False), 5000) is None
    sent = apply_preset({"steps": 30, "width": 768, "height": 512, "prompt": "x"}, preset)
    assert sent == {"steps": 18, "width": 512, "height": 320, "prompt": "x"}
    small = apply_preset({"steps": 10, "width": 256, "height": 256}, preset)
    assert small == {"steps": 10, "width": 256, "height": 256}
    big = pick_preset(ImageSettings(large_context_tokens=0, vram_gb=16), 1)
    assert big is not None and apply_preset({"steps": 20, "width": 1024, "height": 1024}, big)["width"] == 512


def test_chat_context_tokens_counts_live_messages(conn: Any) -> None:
    from neuralrp.chats import store

    chat_id = store.insert_chat(conn, title="t")
    store.insert_message(conn, chat_id, role="user", content="x" * 400, turn=1)
    store.insert_message(conn, chat_id, role="assistant", content="hi", turn=1, token_count=1000)
    gone = store.insert_message(conn, chat_id, role="assistant", content="y", turn=1, token_count=5000)
    store.archive_message(conn, gone, "deleted")
    assert chat_context_tokens(conn, chat_id) == 1100 and chat_context_tokens(conn, None) == 0


def test_name_substitution_prefers_the_cast_then_the_library(conn: Any) -> None:
    from neuralrp.chats import store

    lib = insert_character(conn, card("Nora", "female", "silver hair"), visual_tags="silver hair, red eyes")
    chat_id = store.insert_chat(conn, title="t")
    npc = insert_character(conn, card("Nora", "female", ""), scope_chat_id=chat_id, visual_tags="green cloak")
    store.add_cast_member(conn, chat_id, npc)
    bare = insert_character(conn, card("Plain", "", ""))
    assert substitute_names(conn, "[nora] waves", chat_id) == "green cloak waves"
    assert substitute_names(conn, "[Nora], [NORA]", None) == "silver hair, red eyes, silver hair, red eyes"
    assert substitute_names(conn, "no brackets", chat_id) == "no brackets"
    with pytest.raises(PromptError, match=r"\[Ghost\] does not name a character in this chat's cast or the library"):
        substitute_names(conn, "[Ghost] smiles", chat_id)
    # A1111's own bracket syntax passes through untouched: weighting, prompt editing, alternation
    assert (substitute_names(conn, "[Nora] in [blurry] rain, [day:night:0.5], [cat|dog]", chat_id)
            == "green cloak in [blurry] rain, [day:night:0.5], [cat|dog]")
    with pytest.raises(PromptError, match=r"\[Plain\] has no visual tags yet"):
        substitute_names(conn, "[Plain]", None)
    assert lib and bare and PromptError.status_code == 400
