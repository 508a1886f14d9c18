"""The group chat bench/kv_reuse.py plays: three cards, a lorebook on Seraphina's card, a persona, the user lines."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

USER = "Ari"
PERSONA = {"name": USER, "gender": "female",
           "description": "a young cartographer from the river towns, curious, stubborn and quick with a joke"}
LORE_BUDGET = 600  # below the world's ~730 tokens of lore, so the budget binds

BOOK = [
    (["Eldoria"], "Eldoria is an old forest kingdom of silver oaks and hidden glades. Its roads are overgrown, its "
                  "villages small, and its people trust the guardians of the glade more than any crown. " 
                  "Its last queen vanished a hundred years ago and nobody has claimed the throne since."),
    (["moonwell"], "The Moonwell is a spring in the heart of the glade whose water glows at night. A cup of it "
                   "closes wounds, but drinking twice in one moon brings fever dreams that last three days. " 
                  "Only a guardian may draw from it, and the water loses its glow once it leaves the glade."),
    (["Shadowfang", "shadowfangs"], "Shadowfangs are wolves of smoke and shadow that hunt at dusk. Fire does not "
                                    "hurt them; only moonlight and silver make them fade back into the dark. " 
                  "They never attack a group that carries a moon lantern, and they howl before every hunt."),
    (["Crystal Spire"], "The Crystal Spire is a tower of blue quartz on the northern cliffs. Mages once studied "
                        "the stars there; now it hums at night, and travellers swear it whispers their names. " 
                  "The stairs inside are said to count one step more going down than going up."),
    (["starsalt"], "Starsalt is blue salt dug from a meteor crater. Merchants use it as money across Eldoria, and "
                   "a pinch of it on a blade keeps it from rusting for a year. " 
                  "A full pouch of it buys a horse; forged starsalt turns grey in rain."),
    (["Ferryman", "ferry"], "The Ferryman of the Grey River takes one coin of starsalt per crossing and never "
                            "speaks. He will not carry anyone who lies to him; the river knows the difference. " 
                  "His boat is older than the river towns, and no one has seen his face under the hood."),
    (["Hollow King"], "The Hollow King was the last ruler of the old kingdom. He traded his heart for endless "
                      "life; his empty armour still walks the ruins under the Crystal Spire. " 
                  "On nights of the new moon his footsteps echo through the whole valley."),
    (["glade"], "The glade is a ring of ancient trees around the Moonwell. No Shadowfang can enter it while a "
                "guardian lives, which is why Seraphina never leaves it for long. " 
                  "Flowers bloom there in winter, and the air always smells of rain."),
    (["Amy's workshop", "workshop"], "Amy's workshop is a cluttered tree house full of clockwork birds, maps "
                                     "and half-built lanterns. Everything in it is labelled in tiny, neat letters. " 
                  "A sign over the door says Do Not Touch The Birds, which nobody obeys."),
    (["Aqua's shrine", "shrine"], "Aqua's shrine is a small blue pavilion on the lake. Worshippers are few; Aqua "
                                  "insists the offerings of sweet bread are for the goddess, not for herself. " 
                  "The lake around it stays warm all year, and fish gather near the steps."),
    (["river towns"], "The river towns trade fish, cloth and rumours. Their maps are the best in Eldoria, drawn "
                      "by guild cartographers who swear never to sell a map of the glade. " 
                  "Each town has a guild hall where travellers can buy news for a copper coin."),
    (["Grey River", "river"], "The Grey River runs from the northern cliffs to the sea. Its water is cold and "
                              "clear, and it floods every spring when the snow on the cliffs melts. " 
                  "Fishermen say the river carries voices downstream after a storm."),
    (["lantern", "lanterns"], "Moon lanterns hold a drop of Moonwell water behind glass. Their light keeps "
                              "Shadowfangs away for one night, then the water dims and must be replaced. " 
                  "Amy sells them for three pinches of starsalt, or for a good story."),
    (["old map", "map"], "The old map of the kingdom shows a road under the Crystal Spire that no living person "
                         "has walked. Someone has marked it with a red circle and the word 'heart'. " 
                  "The paper is older than the kingdom itself and smells faintly of smoke."),
]

CARDS: list[dict[str, Any]] = [
    {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Seraphina",
        "description": "Seraphina is the guardian of the glade in Eldoria, a tall elf with long pink hair and "
                       "amber eyes. She heals the wounded with the water of the Moonwell and keeps the "
                       "Shadowfangs out of the forest. She is centuries old but rarely speaks of her past.",
        "personality": "gentle, protective, patient, fierce when the glade is threatened, dry humour",
        "scenario": "Ari woke up in the glade after a Shadowfang attack; Seraphina tends her wounds while "
                    "Amy and Aqua help them plan a journey to the Crystal Spire.",
        "first_mes": "",
        "mes_example": "<START>\n{{char}}: Rest now, {{user}}. The glade will keep you safe tonight.",
        "character_book": {"name": "Eldoria", "entries": [
            {"id": i, "keys": keys, "content": content, "enabled": True, "insertion_order": i,
             "constant": False, "selective": False, "secondary_keys": [], "comment": keys[0]}
            for i, (keys, content) in enumerate(BOOK)]},
    }},
    {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Amy",
        "description": "Amy is a tinkerer who lives in a tree house workshop at the edge of the glade. She "
                       "builds clockwork birds and moon lanterns, talks fast, and owns an old map of the kingdom "
                       "that she has never managed to read completely.",
        "personality": "cheerful, curious, scatterbrained, brave in a pinch, loves puzzles",
        "scenario": "Amy joins the journey to test her new lanterns against the Shadowfangs.",
        "first_mes": "",
        "mes_example": "<START>\n{{char}}: Ooh, hold still, {{user}}, I want to see if the lantern glows brighter "
                       "near you!",
    }},
    {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Aqua",
        "description": "Aqua is a water goddess who fell to the mortal world and now keeps a small shrine on "
                       "the lake. She is powerful but clumsy, proud of her divinity, and easily moved to tears "
                       "or laughter. She can purify water and calm the Grey River.",
        "personality": "proud, dramatic, kind-hearted, lazy, fond of sweet bread and praise",
        "scenario": "Aqua comes along because the Ferryman refused to carry her across the river.",
        "first_mes": "",
        "mes_example": "<START>\n{{char}}: Praise me, {{user}}! Without a goddess this trip would be doomed!",
    }},
]

_ORDER = [0, 1, 2, 1, 0, 2, 2, 0, 1, 0, 2, 1]  # who the user addresses: a new speaker almost every turn
_ASIDES = ["My boots are still wet from the river and the wind is getting colder.",
           "I keep looking at the tree line; something moved there a moment ago.",
           "The fire is low, so keep your voice down if you answer.", "We have maybe an hour of light left.",
           "Amy's clockwork bird keeps landing on my shoulder, it is distracting.",
           "I wrote everything you said so far in my notebook.", "My map is useless here, all the roads are wrong.",
           "Aqua ate the last of the sweet bread again, by the way.", "My left hand still aches from the bite.",
           "The stars look different this far north.", "Someone left fresh tracks near our camp.",
           "I traded my spare knife for a bag of dried apples.", "The owls have been quiet all evening.",
           "It smells like snow, even though it is summer.", "My lantern flickered twice just now.",
           "I found a silver feather on the path.", "The bridge behind us creaked all night.",
           "I dreamt of a tower made of glass.", "There is frost on the moss this morning.",
           "My notebook is almost full."]
_OPENERS = ["what do you make of this:", "tell me honestly,", "I keep thinking about something:",
            "help me understand one thing:", "before we go on,", "quick question:", "listen,", "be honest,"]
_TOPICS = [
    "is the water of the moonwell really safe to drink twice?",
    "why do the shadowfangs fear the glade but not the fire we lit last night?",
    "how far is the Crystal Spire from here if we follow the Grey River north?",
    "do we have enough starsalt to pay the Ferryman for all four of us?",
    "what happened to the Hollow King, and why does his armour still walk?",
    "can your lanterns keep the shadowfangs away for a whole night?",
    "what is that red circle on the old map near the Crystal Spire?",
    "should we stop at Aqua's shrine before crossing the river?",
    "the river towns say nobody sells a map of the glade, is that true?",
    "I heard the Crystal Spire whispers names at night, have you heard it?",
    "how does starsalt keep a blade from rusting?",
    "the Ferryman looked at me strangely, does he know when someone lies?",
    "will the Grey River flood before we reach the northern cliffs?",
    "what do you remember of Eldoria before the Hollow King fell?",
    "Amy's workshop was full of clockwork birds, can they scout ahead?",
    "why does the moonwell glow only at night?",
    "if the shadowfangs come at dusk, where do we camp?",
    "what does the word heart on the old map mean?",
    "can a goddess calm the river long enough for us to cross?",
    "is there another road under the Crystal Spire besides the one on the map?",
    "who built the watchtowers along the border of Eldoria?",
    "does the Ferryman ever cross the river at night?",
    "how many moon lanterns do we need for the whole journey?",
    "what would the Hollow King want with a heart?",
    "can starsalt be used to pay for a room in the river towns?",
    "why did the mages leave the Crystal Spire?",
    "is it true that the glade blooms in winter?",
    "would the shadowfangs follow us onto the Grey River?",
    "what offerings does Aqua's shrine accept besides sweet bread?",
    "how old is the old map, really?",
    "could Amy's workshop build us a boat?",
    "what do the river towns say about the Hollow King?",
    "is the moonwell water still good after a full day in a flask?",
    "where did the last queen of Eldoria go?",
    "can we reach the northern cliffs before the spring flood?",
    "do the stairs of the Crystal Spire really change their count?",
    "what happens if someone lies to the Ferryman by accident?",
    "why are there no guardians outside the glade?",
    "should we buy news at the guild hall before we leave?",
    "what is the first thing we do when we reach the Spire?",
]


def lines(turns: int) -> list[str]:
    """The user's lines, each addressing one character first (Auto mode picks them)."""
    names = [c["data"]["name"] for c in CARDS]
    return [f"{names[_ORDER[i % len(_ORDER)]]}, {_OPENERS[i % len(_OPENERS)]} {_TOPICS[i % len(_TOPICS)]}"
            + (f" {_ASIDES[i // 2 % len(_ASIDES)]}" if i % 2 else "") for i in range(turns)]


def card_text(card: dict[str, Any]) -> str:
    """A card in full, as a naive prompt puts it at the top."""
    data = card["data"]
    name = data["name"]
    parts = [f"[Character: {name}]"]
    for label, key in (("Description", "description"), ("Personality", "personality"), ("Scenario", "scenario"),
                       ("Example dialogue", "mes_example")):
        if data.get(key):
            parts.append(f"{label}: {data[key].replace('{{char}}', name).replace('{{user}}', USER)}")
    return "\n".join(parts)


def naive_lore(recent: str, count: Callable[[str], int]) -> list[str]:
    """Entries a key of which the recent messages name, in book order, within the lore budget."""
    out: list[str] = []
    used = 0
    for keys, content in BOOK:
        if any(re.search(rf"\b{re.escape(k)}\b", recent, re.IGNORECASE) for k in keys):
            cost = count(content)
            if used + cost <= LORE_BUDGET:
                out.append(content)
                used += cost
    return out
