"""PList validation table and JSON extraction from fenced or chatty answers."""

from __future__ import annotations

import pytest

from neuralrp.cardgen.plist import format_plist, is_plist, normalize_plist, plist_problem
from neuralrp.cardgen.service import AnswerError, check_card_answer, check_world_answer
from neuralrp.llm.answers import extract_json
from tests.cardgen.helpers import ANSWER


@pytest.mark.parametrize(("text", "ok"), [
    ("[Mira: kind, brave]", True),
    ("[Mira: kind, brave; Appearance: red hair, scar; Likes: tea]", True),
    ("[Mira's Personality: sharp; Likes: tea]\n[Mira's body: tall, lean]", True),
    ("  [Mira:   kind ,brave ]  ", True),
    ("[Place(the Drift): floating city, trade hub]", True),
    ("", False),
    ("Mira is kind and brave.", False),
    ("[Mira kind, brave]", False),
    ("[Mira: kind; Likes:]", False),
    ("[: kind]", False),
    ("[Mira: [kind], brave]", False),
    ("[Mira: kind", False),
    ("[]", False),
    ("[Mira: kind] and some prose", False),
])
def test_plist_shape(text: str, ok: bool) -> None:
    assert is_plist(text) is ok, plist_problem(text)


def test_plist_problem_sentences() -> None:
    assert plist_problem("Mira is kind.") == "line 1 is not wrapped in [ and ]"
    assert "no values after 'Likes:'" in (plist_problem("[Mira: kind; Likes: ]") or "")
    assert plist_problem("") == "it is empty"


def test_format_and_normalize() -> None:
    text = format_plist("Mira", {"core": ["kind", " brave "], "Likes": ["tea"], "Empty": []})
    assert text == "[Mira: kind, brave; Likes: tea]" and is_plist(text)
    assert normalize_plist("\n  [Mira:  kind]  \n\n[X: y]\n") == "[Mira: kind]\n[X: y]"


@pytest.mark.parametrize("text", [
    '{"a": 1}',
    '```json\n{"a": 1}\n```',
    '```\n{"a": 1}\n```',
    'Sure! Here is the card:\n```json\n{"a": 1}\n```\nEnjoy.',
    'Here you go: {"a": 1} — hope it helps {not json}',
    'Thinking {about it}... {"a": 1}',
])
def test_extract_json(text: str) -> None:
    assert extract_json(text) == {"a": 1}


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"), ("no json here", "no complete JSON object"), ('{"a": 1', "no complete JSON object"),
    ("[1, 2]", "no complete JSON object"),
])
def test_extract_json_refuses(text: str, reason: str) -> None:
    with pytest.raises(AnswerError, match=reason):
        extract_json(text)


def test_card_answer_checks() -> None:
    assert check_card_answer(dict(ANSWER))["tags"] == ANSWER["tags"]
    assert check_card_answer({**ANSWER, "visual_tags": "1girl, red_hair"})["visual_tags"] == ["1girl", "red_hair"]
    for bad, reason in [({"description": "Mira is a pirate."}, "'description' is not PList"),
                        ({"tags": [1, 2]}, "'tags' must be a list of strings"),
                        ({"first_mes": ""}, "'first_mes' must be a non-empty string"),
                        ({"name": None}, "'name' must be a non-empty string")]:
        with pytest.raises(AnswerError, match=reason):
            check_card_answer({**ANSWER, **bad})


def test_world_answer_checks() -> None:
    ok = check_world_answer({"entries": [{"keys": "a, b", "content": "[A: b]"}]})
    assert ok == [{"keys": ["a", "b"], "content": "[A: b]", "canon_law": False}]
    for bad, reason in [({"entries": []}, "non-empty list"), ({"entries": [{"content": "x"}]}, "needs 'keys'"),
                        ({"entries": [{"keys": ["a"], "content": ""}]}, "needs 'content'"),
                        ({"entries": [{"keys": ["a"], "content": "x", "canon_law": "yes"}]}, "canon_law")]:
        with pytest.raises(AnswerError, match=reason):
            check_world_answer(bad)
