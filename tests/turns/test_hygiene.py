"""Speaker hygiene while a reply streams: labels held back until decided, own labels removed, another speaker's
line dropped at the start and the end of the reply after it."""

from __future__ import annotations

import pytest

from neuralrp.turns.hygiene import NARRATOR, ReplyFilter, Voice, name_forms

SERAPHINA = Voice.of("Seraphina", ["Kai", "Amy Lee"])


def run(pieces: list[str], voice: Voice = SERAPHINA, **kw: bool) -> tuple[str, str, bool]:
    """(everything given out, the final text, cut) for a reply streamed in these pieces."""
    clean = ReplyFilter(voice, **kw)
    shown = []
    for piece in pieces:
        shown.append(clean.feed(piece))
        if clean.cut:
            break
    shown.append(clean.finish())
    return "".join(shown), clean.text, clean.cut


def test_names_and_stops() -> None:
    assert name_forms("Chiharu Yamada") == ["Chiharu Yamada", "Chiharu"] and name_forms("Al Bo") == ["Al Bo"]
    assert SERAPHINA.stops() == ("\nKai:", "\nAmy Lee:", "\nAmy:")
    assert Voice.of(NARRATOR, ["Kai"]).stops() == ("\nKai:",)
    assert Voice.of("Ari", ["Ari", "Bo"]).others == ("Bo",), "a user named like the speaker is not stopped"


@pytest.mark.parametrize(("pieces", "text", "cut"), [
    (["Sera", "phina", ": *smiles* Hello", " there."], "*smiles* Hello there.", False),
    (["**Seraphina:** Hi.\n\nShe waits."], "Hi.\n\nShe waits.", False),
    (["seraphina : Hi."], "Hi.", False),
    (["Kai: I walk in.\n", "Seraphina: Welcome!", " Come.\nAmy: yo"], "Welcome! Come.", True),
    (["She nods.\n", "Kaiser", " arrives.\nAmy Lee: ok"], "She nods.\nKaiser arrives.", True),
    (["Hello.\n\n", "**Kai**", ": hey"], "Hello.", True),
    (["Seraphina:\n", "Hello."], "Hello.", False),
    (["A line that mentions Kai: inline is fine."], "A line that mentions Kai: inline is fine.", False),
])
def test_clean_text(pieces: list[str], text: str, cut: bool) -> None:
    shown, final, was_cut = run(pieces)
    assert (final, was_cut) == (text, cut)
    assert shown.rstrip() == final and "Kai:" not in shown.replace("mentions Kai: inline", "")


def test_nothing_undecided_is_given_out() -> None:
    clean = ReplyFilter(SERAPHINA)
    assert clean.feed("Ser") == "" and clean.feed("aph") == "", "could still become 'Seraphina:'"
    assert clean.feed("im") == "Seraphim", "cannot any more"
    assert clean.feed(" waves.\nK") == " waves.\n" and clean.feed("a") == ""
    assert clean.feed("y") == "Kay" and not clean.cut


def test_a_continue_goes_on_mid_line_and_still_stops() -> None:
    assert run([" and left.\nKai: x"], continuing=True)[1:] == (" and left.", True)
    assert run(["Kai, she said."], continuing=True)[1] == "Kai, she said.", "the rest of a line is no label"
