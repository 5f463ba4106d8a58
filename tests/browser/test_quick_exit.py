"""Quick exit without a trail (issue 12): with scripts on, the history holds at most one
Fristed entry at any moment and none after the quick exit; Shift pressed three times
leaves (typing capitals does not); the keyboard hint shows only where scripts run; the
button stays on screen while scrolling and covers nothing, LTR and RTL."""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.support import LiveServer, init_demo

NEUTRAL = "https://www.dr.dk/"
BEFORE = "https://search.example/"
VIEWPORT = {"width": 320, "height": 640}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    demo = init_demo(tmp_path_factory.mktemp("exit") / "data")
    with LiveServer(demo.data_dir, demo.env) as server:
        yield server


def outside_world(context: BrowserContext) -> None:
    """The page the person came from and the quick-exit target, answered locally (no Internet here)."""

    def fulfil(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body="<title>Elsewhere</title><h1>Elsewhere</h1>")

    context.route(re.compile(r"^https://(www\.dr\.dk|search\.example)/.*"), fulfil)


def entries(page: Page) -> int:
    return page.evaluate("history.length")


def test_after_write_code_pickup_reply_and_quick_exit_back_shows_no_fristed_page(browser: Browser, site: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    outside_world(context)
    page = context.new_page()
    page.goto(BEFORE)
    before = entries(page)
    page.goto(f"{site.url}/?lang=da")
    assert entries(page) == before + 1  # one Fristed page

    page.click("#write-link")
    expect(page).to_have_url(re.compile(r"/write\?lang=da$"))
    page.wait_for_load_state()  # the page's scripts are in charge (else the forms post as without scripts)
    assert entries(page) == before + 1
    page.fill("#message", "Jeg er bange derhjemme.")
    page.click("#send")
    code = page.locator("#pickup-code")
    expect(code).to_be_visible()  # the code page is built in place
    typed = code.inner_text()
    assert entries(page) == before + 1
    page.click("#done a.button")  # "Read an answer"
    expect(page).to_have_url(re.compile(r"/pickup\?lang=da$"))
    page.wait_for_load_state()
    assert entries(page) == before + 1
    page.fill("#code", typed)
    page.click("#open")
    expect(page.locator("#thread .message")).to_have_count(1)
    page.fill("#reply", "Er der nogen?")
    page.click("#send-reply")
    expect(page.locator("#thread .message")).to_have_count(2)
    page.click("nav.language-bar a[lang=en]")
    expect(page).to_have_url(re.compile(r"\?lang=en$"))
    page.wait_for_load_state()
    assert entries(page) == before + 1

    page.click("#quick-exit")
    expect(page).to_have_url(NEUTRAL)
    assert entries(page) == before + 1  # the Fristed entry was replaced, not added to
    page.go_back()
    expect(page).to_have_url(BEFORE)
    # Walk the whole history back and forth: no Fristed page anywhere in it.
    seen = [page.url]
    while page.go_back() is not None:
        seen.append(page.url)
    while page.go_forward() is not None:
        seen.append(page.url)
    assert not [url for url in seen if url.startswith(site.url)], seen
    expect(page).to_have_url(NEUTRAL)
    context.close()


def test_shift_three_times_leaves_but_typing_capitals_does_not(browser: Browser, site: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    outside_world(context)
    page = context.new_page()
    page.goto(f"{site.url}/write?lang=en")
    page.wait_for_load_state()
    page.click("#message")
    for key in ("Shift+H", "e", "j", "Shift+M", "Shift+O", "Shift+R", "Shift+A"):
        page.keyboard.press(key)
    page.keyboard.press("Shift")
    page.keyboard.press("Shift")
    page.keyboard.press("a")  # anything between the presses starts the count again
    page.keyboard.press("Shift")
    expect(page.locator("#message")).to_have_value("HejMORAa")
    assert page.url.startswith(site.url)
    length = entries(page)
    for _ in range(3):
        page.keyboard.press("Shift")
    expect(page).to_have_url(NEUTRAL)
    assert entries(page) == length
    context.close()


@pytest.mark.parametrize("scripts", [True, False], ids=["scripts-on", "scripts-off"])
def test_the_keyboard_hint_and_the_history_advice_are_true_for_this_browser(browser: Browser, site: LiveServer, scripts: bool) -> None:
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=scripts)
    page = context.new_page()
    page.goto(f"{site.url}/?lang=en")
    hint = page.locator("#quick-exit-hint")
    (expect(hint).to_be_visible if scripts else expect(hint).to_be_hidden)()
    (expect(page.locator("#history-scripts")).to_be_visible if scripts else expect(page.locator("#history-scripts")).to_be_hidden)()
    shown = page.locator("#history-advice").inner_text()  # what is rendered (<noscript> included when scripts are off)
    # Honest: without scripts every page stays in the history, and how to clear it; with scripts, at most one.
    assert ("stays in its history" in shown) is (not scripts)
    assert ("delete this site from the history" in shown) is (not scripts)
    assert ("at most one page" in shown) is scripts
    assert "private window" in shown
    context.close()


@pytest.mark.parametrize("lang", ["da", "ar"])
def test_the_button_covers_nothing_and_stays_on_screen_while_scrolling(browser: Browser, site: LiveServer, lang: str) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{site.url}/write?lang={lang}")
    exit_box = page.locator("#quick-exit").bounding_box()
    assert exit_box is not None
    # Nothing else starts beside or under it at rest: it has its own line at the top.
    covered = page.evaluate(
        """(box) => [...document.querySelectorAll('body *')].filter((el) => {
            if (el.id === 'quick-exit' || el.closest('#quick-exit') || !el.getClientRects().length) return false;
            if (['SCRIPT', 'TEMPLATE'].includes(el.tagName) || el.contains(document.getElementById('quick-exit'))) return false;
            const r = el.getBoundingClientRect();
            return r.width > 0 && r.height > 0 && r.left < box.x + box.width && box.x < r.right && r.top < box.y + box.height && box.y < r.bottom;
        }).map((el) => el.tagName + '#' + el.id)""",
        exit_box,
    )
    assert covered == [], covered
    # At the inline end: right in LTR, left in RTL.
    assert (exit_box["x"] < 160) == (lang == "ar")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function("window.scrollY > 0")
    scrolled = page.locator("#quick-exit").bounding_box()
    assert scrolled is not None and 0 <= scrolled["y"] and scrolled["y"] + scrolled["height"] <= VIEWPORT["height"]
    page.close()
