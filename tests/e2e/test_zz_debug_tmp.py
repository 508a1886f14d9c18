from tests.e2e.test_inspector_ui import app_url, fake, library, open_chat_page, _fresh_fake, new_chat, inspector, expect, PHONE  # noqa

def test_debug(open_chat_page, app_url, library):
    chat = new_chat(app_url, [library["Seraphina"], library["Borin"]], title="Glade at dusk")
    page = open_chat_page(PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page.goto(f"/#/chat/{chat['id']}")
    page.get_by_role("button", name="Prompt").click()
    panel = inspector(page)
    expect(panel.locator(".insp-item").first).to_be_visible()
    print(panel.evaluate("e => { const s = getComputedStyle(e); return [s.backgroundColor, s.opacity, s.animationName, s.zIndex, s.position] }"))
    page.wait_for_timeout(800)
    print(panel.evaluate("e => { const s = getComputedStyle(e); return [s.backgroundColor, s.opacity, s.animationName, getComputedStyle(document.body).opacity] }"))
    print(page.evaluate("matchMedia(\"(prefers-reduced-motion: reduce)\").matches"))
    page.screenshot(path="/tmp/scratch/shots/debug.png", animations="disabled")
