"""The chat view in a real browser: new chat dialog, live streaming, stop, regenerate/swipes, errors, layout.

The NeuralRP app runs on a real port against a fake llama.cpp server (also on a real port) that sends one
word every 0.15 s, so the reply can be watched growing in the page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.conftest import DESKTOP, PHONE, PageLog, expect, serve_with_llm
from tests.fakes import FakeLLM
from tests.waiting import DEFAULT_TIMEOUT, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.playwright

CARD = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Seraphina",
        "description": "Guardian of the glade.",
        "first_mes": '*Seraphina kneels beside you.* "You\'re awake, {{user}}. **Rest now.**"',
    },
}
HTTP_ERROR_LOG = re.compile(r"Failed to load resource: the server responded with a status of (4|5)\d\d ")
LONG_REPLY = " ".join(f"word{i}" for i in range(60))


@pytest.fixture(scope="module")
def app_url(fake: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """NeuralRP on a real port, its LLM the slow fake on another."""
    fake.set_fault("slow", between=0.15)
    with serve_with_llm(fake, tmp_path_factory.mktemp("chat-ui")) as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh_fake(fake: FakeLLM) -> Iterator[None]:
    """Every test starts with no queued replies and only the slow-stream fault."""
    yield
    fake.replies.clear()
    fake.clear_faults()
    fake.set_fault("slow", between=0.15)




def new_chat(app_url: str, name: str = "Seraphina") -> dict[str, Any]:
    """Create a chat through the API (faster than the dialog, for tests about something else)."""
    card = json.loads(json.dumps(CARD))
    card["data"]["name"] = name
    resp = httpx.post(f"{app_url}/api/chats", json={"card": card, "persona": {"name": "Ari"}}, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def stored_messages(app_url: str, chat_id: int) -> list[dict[str, Any]]:
    resp = httpx.get(f"{app_url}/api/chats/{chat_id}/messages", timeout=10)
    return resp.json()["messages"]  # type: ignore[no-any-return]


def assert_clean(page_log: PageLog) -> None:
    """No script errors; Chromium's own "Failed to load resource" lines for expected 4xx/5xx answers are fine."""
    page_log.console_errors[:] = [e for e in page_log.console_errors if not HTTP_ERROR_LOG.match(e)]
    page_log.assert_clean()


def replies(page: Page) -> Locator:
    return page.locator(".msg[data-role=assistant]")


def last_reply_text(page: Page) -> Locator:
    return replies(page).last.locator(".msg-text")


def send(page: Page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def wait_for_text(locator: Locator, min_len: int, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Poll a locator's text until it is at least min_len long; returns it."""
    return wait_until(lambda: locator.text_content() or "", until=lambda text: len(text) >= min_len,
                      timeout=timeout, interval=0.05, what=f"a text of at least {min_len} characters")


def test_new_chat_dialog_with_a_pasted_card(page: Page, page_log: PageLog, app_url: str) -> None:
    page.goto("/#/chat")
    page.get_by_role("button", name="New chat").click()
    dialog = page.get_by_role("dialog", name="New chat")
    expect(dialog).to_be_visible()

    dialog.get_by_label("Card JSON").fill("{not json")
    dialog.get_by_role("button", name="Start chat").click()
    expect(dialog.get_by_role("alert")).to_contain_text("not valid JSON")

    bad_card = {"description": "nameless"}
    refusal = httpx.post(f"{app_url}/api/chats", json={"card": bad_card}, timeout=10)
    assert refusal.status_code == 422
    dialog.get_by_label("Card JSON").fill(json.dumps(bad_card))
    dialog.get_by_role("button", name="Start chat").click()
    expect(dialog.get_by_role("alert")).to_have_text(refusal.json()["detail"])  # the API's sentence, in the dialog

    dialog.get_by_label("Card JSON").fill(json.dumps(CARD))
    dialog.get_by_label("Title (optional)").fill("Glade at dusk")
    dialog.get_by_label("Persona name").fill("Ari")
    dialog.get_by_role("button", name="Start chat").click()
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(re.compile(r"#/chat/\d+$"))
    expect(page.get_by_role("heading", level=1, name="Glade at dusk")).to_be_visible()
    greeting = replies(page).first
    expect(greeting.locator(".msg-name")).to_have_text("Seraphina")
    expect(greeting.locator(".msg-text")).to_have_text('Seraphina kneels beside you. "You\'re awake, Ari. Rest now."')
    expect(greeting.locator("em.action")).to_have_text("Seraphina kneels beside you.")
    expect(greeting.locator("strong")).to_have_text("Rest now.")
    current = page.locator(".chat-item[aria-current=page]")
    expect(current).to_contain_text("Glade at dusk")

    # the library now has Seraphina: a second chat can pick her from the list
    page.get_by_role("button", name="New chat").click()
    dialog = page.get_by_role("dialog", name="New chat")
    dialog.get_by_label("Seraphina").check()
    dialog.get_by_role("button", name="Start chat").click()
    expect(page.get_by_role("heading", level=1, name="Seraphina")).to_be_visible()
    expect(page.locator(".chat-item")).to_have_count(2)
    assert_clean(page_log)


def test_reply_streams_live_and_survives_a_reload(page: Page, page_log: PageLog, fake: FakeLLM,
                                                  app_url: str) -> None:
    chat = new_chat(app_url)
    reply = "The glade is quiet tonight, and the fireflies drift between the old oaks while the stream hums softly."
    fake.enqueue(reply)
    page.goto(f"/#/chat/{chat['id']}")
    expect(replies(page)).to_have_count(1)
    send(page, "Where am I?")

    user = page.locator(".msg[data-role=user]")
    expect(user.locator(".msg-text")).to_have_text("Where am I?")
    expect(page.get_by_label("Message", exact=True)).to_have_value("")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_hidden()
    bubble = last_reply_text(page)
    first = wait_for_text(bubble, 10)
    second = wait_for_text(bubble, len(first) + 5)
    assert len(second) > len(first) and reply.startswith(second)
    expect(bubble).to_have_text(reply, timeout=15_000)
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_enabled()
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()

    page.reload()
    expect(page.locator(".msg[data-role=user] .msg-text")).to_have_text("Where am I?")
    expect(last_reply_text(page)).to_have_text(reply)
    expect(page.locator(".chat-item[aria-current=page]")).to_contain_text("3 messages")
    assert_clean(page_log)


def test_reload_mid_reply_follows_the_reply_to_its_end(page: Page, page_log: PageLog, fake: FakeLLM,
                                                       app_url: str) -> None:
    chat = new_chat(app_url)
    fake.enqueue(LONG_REPLY)
    page.goto(f"/#/chat/{chat['id']}")
    send(page, "Tell me a long story")
    before = wait_for_text(last_reply_text(page), 20)

    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.reload()
    expect(page.get_by_text("A reply is in progress")).to_be_visible()
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    bubble = last_reply_text(page)
    wait_for_text(bubble, len(before) + 20)  # still growing after the reload
    expect(bubble).to_have_text(LONG_REPLY, timeout=20_000)
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_enabled()
    expect(page.get_by_text("A reply is in progress")).to_be_hidden()
    expect(page.locator(".msg[data-role=user] .msg-text")).to_have_text("Tell me a long story")

    path = f"/api/chats/{chat['id']}"
    assert [u for u in requested if u.endswith(f"{path}/stream")], "the page follows the reply's event stream"
    polls = [u for u in requested if f"{path}/messages" in u]
    assert len(polls) == 1, f"one load of the messages, no polling: {polls}"
    stored = stored_messages(app_url, chat["id"])
    assert (stored[-1]["content"], stored[-1]["status"]) == (LONG_REPLY, "complete")
    assert_clean(page_log)


def test_enter_sends_and_shift_enter_makes_a_new_line(page: Page, page_log: PageLog, fake: FakeLLM,
                                                      app_url: str) -> None:
    chat = new_chat(app_url)
    fake.enqueue("Noted.")
    page.goto(f"/#/chat/{chat['id']}")
    box = page.get_by_label("Message", exact=True)
    box.click()
    box.press_sequentially("line one")
    box.press("Shift+Enter")
    box.press_sequentially("line two")
    expect(box).to_have_value("line one\nline two")
    box.press("Enter")
    expect(page.locator(".msg[data-role=user] .msg-text")).to_have_text("line one\nline two")
    expect(last_reply_text(page)).to_have_text("Noted.")
    assert_clean(page_log)


def test_stop_keeps_the_partial_reply(page: Page, page_log: PageLog, fake: FakeLLM, app_url: str) -> None:
    chat = new_chat(app_url)
    fake.enqueue(LONG_REPLY)
    page.goto(f"/#/chat/{chat['id']}")
    expect(replies(page)).to_have_count(1)
    send(page, "Count for me")
    expect(replies(page)).to_have_count(2)
    wait_for_text(last_reply_text(page), 20)
    page.get_by_role("button", name="Stop").click()

    send_button = page.get_by_role("button", name="Send", exact=True)
    expect(send_button).to_be_enabled()
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    partial = last_reply_text(page).text_content() or ""
    assert 20 <= len(partial) < len(LONG_REPLY) and LONG_REPLY.startswith(partial)
    wait_until(lambda: fake.in_flight == 0 and not httpx.get(f"{app_url}/api/chats/{chat['id']}/messages",
                                                             timeout=10).json()["generating"],
               what="the backend generation to end after Stop")
    assert last_reply_text(page).text_content() == partial, "no more text after Stop"
    assert stored_messages(app_url, chat["id"])[-1]["content"] == partial

    fake.enqueue("Fine.")
    send(page, "Again")
    expect(last_reply_text(page)).to_have_text("Fine.")
    assert_clean(page_log)


def test_regenerate_makes_a_swipe_and_arrows_switch(page: Page, page_log: PageLog, fake: FakeLLM,
                                                    app_url: str) -> None:
    chat = new_chat(app_url)
    fake.enqueue("First answer.", "Second answer.")
    page.goto(f"/#/chat/{chat['id']}")
    send(page, "Tell me something")
    expect(last_reply_text(page)).to_have_text("First answer.")
    expect(replies(page).last.locator(".swipe-count")).to_have_text("1/1")  # the arrows are always on the newest

    page.get_by_role("button", name="Regenerate").click()
    expect(last_reply_text(page)).to_have_text("Second answer.")
    swipes = replies(page).last.locator(".swipes")
    expect(swipes.locator(".swipe-count")).to_have_text("2/2")
    expect(swipes.get_by_role("button", name="Write a new version")).to_be_enabled()  # → past the newest writes one

    swipes.get_by_role("button", name="Previous version").click()
    expect(last_reply_text(page)).to_have_text("First answer.")
    expect(swipes.locator(".swipe-count")).to_have_text("1/2")
    expect(swipes.get_by_role("button", name="Previous version")).to_be_disabled()
    swipes.get_by_role("button", name="Next version").click()
    expect(last_reply_text(page)).to_have_text("Second answer.")
    expect(replies(page)).to_have_count(2)  # the greeting and one reply with two versions
    assert_clean(page_log)


def test_continue_extends_the_last_reply(page: Page, page_log: PageLog, fake: FakeLLM, app_url: str) -> None:
    chat = new_chat(app_url)
    fake.enqueue("The night is", " long and cold.")
    page.goto(f"/#/chat/{chat['id']}")
    send(page, "Describe the night")
    expect(last_reply_text(page)).to_have_text("The night is")
    page.get_by_role("button", name="Continue").click()
    expect(last_reply_text(page)).to_have_text("The night is long and cold.")
    expect(replies(page)).to_have_count(2)
    assert_clean(page_log)


def test_llm_failure_shows_the_sentence_inline_and_keeps_the_message(page: Page, page_log: PageLog,
                                                                      fake: FakeLLM, app_url: str) -> None:
    chat = new_chat(app_url)
    page.goto(f"/#/chat/{chat['id']}")
    expect(replies(page)).to_have_count(1)
    fake.fault("status", code=503)
    send(page, "Anyone there?")

    user = page.locator(".msg[data-role=user]")
    expect(user.locator(".msg-text")).to_have_text("Anyone there?")
    error = user.locator(".msg-error")
    expect(error).to_have_attribute("role", "alert")
    expect(error).to_contain_text("busy or has no model loaded")
    expect(replies(page)).to_have_count(1)
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_enabled()
    assert [m["content"] for m in stored_messages(app_url, chat["id"])][-1] == "Anyone there?"

    page.reload()
    expect(page.locator(".msg[data-role=user] .msg-text")).to_have_text("Anyone there?")
    assert_clean(page_log)


def test_broken_stream_marks_the_reply_incomplete(page: Page, page_log: PageLog, fake: FakeLLM,
                                                  app_url: str) -> None:
    chat = new_chat(app_url)
    fake.enqueue("one two three four five six")
    fake.fault("cut", after=3)
    page.goto(f"/#/chat/{chat['id']}")
    send(page, "Count")
    expect(replies(page)).to_have_count(2)
    reply = replies(page).last
    expect(reply.get_by_text("Incomplete")).to_be_visible()
    expect(reply.locator(".msg-error")).to_contain_text("ended before the reply was finished")
    kept = stored_messages(app_url, chat["id"])[-1]
    assert kept["status"] == "incomplete"
    expect(reply.locator(".msg-text")).to_have_text(kept["content"])
    assert kept["content"].startswith("one two")
    assert_clean(page_log)


def test_reply_in_progress_is_shown_when_opening_the_chat(open_page: Callable[..., Page], page_log: PageLog,
                                                          fake: FakeLLM, app_url: str) -> None:
    chat = new_chat(app_url)
    fake.enqueue("A reply written while nobody watched the page at all, word after word after word.")
    writer = open_page()
    writer.goto(f"/#/chat/{chat['id']}")
    send(writer, "Hello")
    wait_for_text(last_reply_text(writer), 3)

    viewer = open_page()
    viewer.goto(f"/#/chat/{chat['id']}")
    expect(viewer.get_by_text("A reply is in progress")).to_be_visible()
    expect(viewer.get_by_role("button", name="Stop")).to_be_visible()
    expect(last_reply_text(viewer)).to_have_text(
        "A reply written while nobody watched the page at all, word after word after word.", timeout=15_000)
    expect(viewer.get_by_role("button", name="Send", exact=True)).to_be_enabled()
    expect(viewer.get_by_text("A reply is in progress")).to_be_hidden()
    assert_clean(page_log)


def test_card_file_and_regenerate_refusal(page: Page, page_log: PageLog, app_url: str) -> None:
    page.goto("/#/chat")
    page.get_by_role("button", name="New chat").click()
    dialog = page.get_by_role("dialog", name="New chat")
    quiet = {"name": "Quiet", "description": "Says nothing first."}
    dialog.get_by_label("Card file").set_input_files(
        files=[{"name": "quiet.json", "mimeType": "application/json", "buffer": json.dumps(quiet).encode()}])
    expect(dialog.get_by_label("Card JSON")).to_have_value(json.dumps(quiet))
    dialog.get_by_role("button", name="Start chat").click()
    expect(page.get_by_role("heading", level=1, name="Quiet")).to_be_visible()
    expect(page.get_by_text("No messages yet. Say hello.")).to_be_visible()

    page.get_by_role("button", name="Regenerate").click()  # nothing to regenerate: the API's 409 sentence
    expect(page.locator(".composer-notice")).to_contain_text("send a message first")
    expect(page.locator(".composer-notice")).to_have_attribute("role", "alert")
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_enabled()
    assert_clean(page_log)


def with_llm(report: dict[str, Any], **llm: Any) -> dict[str, Any]:
    """The status report with backends.llm changed."""
    changed = json.loads(json.dumps(report))
    changed["backends"]["llm"].update(llm)
    return changed


def test_demo_model_label_and_unreachable_llm_notice(page: Page, page_log: PageLog, app_url: str) -> None:
    chat = new_chat(app_url)
    report = httpx.get(f"{app_url}/api/system/status", timeout=10).json()
    demo = with_llm(report, built_in={"built_in": True, "demo": True, "label": "Built-in demo (SmolLM2 135M)"})
    page.route("**/api/system/status", lambda route: route.fulfill(json=demo))
    page.goto(f"/#/chat/{chat['id']}")
    label = page.locator(".composer").get_by_text("Demo model")
    expect(label).to_be_visible()
    expect(page.locator(".demo-label")).to_have_attribute("title", "Built-in demo (SmolLM2 135M)")
    expect(page.locator(".composer-notice")).to_be_hidden()

    down = with_llm(report, configured=False, reachable=None, detail="No LLM server is configured",
                    hint="set llm.base_url in config.yaml or the Settings page")
    page.unroute("**/api/system/status")
    page.route("**/api/system/status", lambda route: route.fulfill(json=down))
    page.reload()
    notice = page.locator(".composer-notice")
    expect(notice).to_contain_text("No LLM server is configured")
    expect(notice).to_contain_text("Settings page")
    expect(page.locator(".demo-label")).to_be_hidden()
    assert_clean(page_log)


def test_untrusted_text_is_never_html(page: Page, page_log: PageLog, fake: FakeLLM, app_url: str) -> None:
    chat = new_chat(app_url, name='<img src=x onerror="window.__pwned=1">')
    fake.enqueue('<b id="bold">hi</b> *<script>window.__pwned=2</script>*')
    page.goto(f"/#/chat/{chat['id']}")
    send(page, "<i id=ital>me</i>")
    expect(last_reply_text(page)).to_have_text('<b id="bold">hi</b> <script>window.__pwned=2</script>')
    expect(page.locator(".msg[data-role=user] .msg-text")).to_have_text("<i id=ital>me</i>")
    assert page.locator("#bold, #ital, img[src=x]").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert_clean(page_log)


def test_sse_parser_handles_crlf_and_split_chunks(page: Page, page_log: PageLog) -> None:
    page.goto("/#/chat")
    events = page.evaluate(
        """async () => {
            const { sseParser } = await import('/js/chat/stream.js');
            const out = [];
            const parser = sseParser((data) => out.push(data));
            const stream = 'event: token\\r\\ndata: {"a":1}\\r\\n\\r\\n: ping\\r\\n\\r\\n'
                + 'data: {"b":\\r\\ndata: 2}\\n\\n' + 'data:{"c":3}\\r\\rdata: {"d":4}';
            for (const piece of stream.split(/(?<=\\r)|(?=\\n)/)) parser.push(piece);  // split inside CRLF
            parser.end();
            return out;
        }"""
    )
    assert events == ['{"a":1}', '{"b":\n2}', '{"c":3}', '{"d":4}']
    assert_clean(page_log)


def test_screenshots(open_page: Callable[..., Page], page_log: PageLog, fake: FakeLLM, app_url: str,
                     screenshot_dir: Path) -> None:
    chat = new_chat(app_url, name="Mira")
    fake.enqueue(
        '*Mira tilts her head, the lantern light catching in her silver hair.* "A traveller, this late? '
        'The road past the ridge is no place to be after dark."\n\n*She sets a cup of tea on the table.* '
        "**Sit.** Tell me where you are headed.",
        "First version.", "Second version of the reply.")
    writer = open_page()
    writer.goto(f"/#/chat/{chat['id']}")
    send(writer, "I knock on the door of the little cabin and ask if I can rest by the fire for a while.")
    expect(writer.get_by_role("button", name="Send", exact=True)).to_be_enabled(timeout=20_000)
    send(writer, "Thank you. Who are you?")
    expect(writer.get_by_role("button", name="Send", exact=True)).to_be_enabled(timeout=20_000)
    writer.get_by_role("button", name="Regenerate").click()
    expect(writer.locator(".swipe-count")).to_have_text("2/2", timeout=20_000)

    shots = []
    for label, viewport, options in (("desktop", DESKTOP, {}),
                                     ("phone", PHONE, {"is_mobile": True, "has_touch": True,
                                                       "device_scale_factor": 2})):
        page = open_page(viewport, **options)
        page.goto(f"/#/chat/{chat['id']}")
        expect(page.locator(".swipe-count")).to_have_text("2/2")
        path = screenshot_dir / f"chat-{label}.png"
        page.screenshot(path=str(path), animations="disabled")
        shots.append(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], f"{label} overflows"
        composer = page.get_by_role("button", name="Send", exact=True).bounding_box()
        assert composer is not None and composer["y"] + composer["height"] <= viewport["height"]
        page.goto("/#/chat")
        expect(page.locator(".chat-item").first).to_be_visible()
        path = screenshot_dir / f"chat-list-{label}.png"
        page.screenshot(path=str(path), animations="disabled")
        shots.append(path)
        page.get_by_role("button", name="New chat").click()
        dialog = page.get_by_role("dialog", name="New chat")
        dialog.get_by_label("Card JSON").fill("{}")
        dialog.get_by_role("button", name="Start chat").click()
        expect(dialog.get_by_role("alert")).to_be_visible()
        path = screenshot_dir / f"chat-dialog-{label}.png"
        page.screenshot(path=str(path), animations="disabled")
        shots.append(path)
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        if label == "phone":
            top_bar = page.locator(".sidebar").bounding_box()
            layout = page.locator(".chat-layout").bounding_box()
            nav = page.get_by_role("navigation", name="Main").bounding_box()
            assert top_bar and layout and nav
            assert layout["y"] == pytest.approx(top_bar["y"] + top_bar["height"], abs=1)
            assert layout["y"] + layout["height"] == pytest.approx(nav["y"], abs=1), "fills the space between the bars"
            page.locator(".chat-item").first.tap()
            expect(page.get_by_role("link", name="All chats")).to_be_visible()
    assert all(p.stat().st_size > 5_000 for p in shots)
    assert_clean(page_log)
