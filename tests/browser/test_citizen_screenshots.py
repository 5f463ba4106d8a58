"""Screenshots as test artefacts (issue 12): `/`, `/write`, the code page and `/pickup`
with a thread, in Danish and Arabic, at 320 px and 1280 px, scripts on and off, written
to `test-artifacts/screenshots/` (git-ignored, named in the README). Each one is also
checked: no horizontal overflow, and the quick-exit button does not cover the first
heading. One browser, one server, one context per script setting."""

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, Page, expect

from tests.support import LiveServer

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WIDTHS = (320, 1280)
HEIGHT = 640

LAYOUT = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}; };
  const exit = document.getElementById('quick-exit');
  const heading = [...document.querySelectorAll('main h1, main h2')].find((h) => h.getClientRects().length);
  return {
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    exit: box(exit), heading: heading ? box(heading) : null,
    emergency: box(document.getElementById('emergency')),
  };
}"""


def overlaps(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]


def check_and_shoot(page: Page, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": HEIGHT})
        page.evaluate("window.scrollTo(0, 0)")
        layout = page.evaluate(LAYOUT)
        assert layout["overflow"] <= 0, f"{name} at {width}px overflows sideways by {layout['overflow']}px"
        assert layout["heading"] is not None, name
        assert not overlaps(layout["exit"], layout["heading"]), f"{name} at {width}px: quick exit covers the heading"
        # What to do in danger is on every page and starts within the first screen.
        assert layout["emergency"]["y"] < HEIGHT, f"{name} at {width}px: #emergency starts below the first screen"
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)


def test_citizen_pages_fit_320_and_1280_px_in_danish_and_arabic_with_and_without_scripts(
    browser: Browser, live_server: LiveServer
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    for scripts in (True, False):
        context = browser.new_context(java_script_enabled=scripts, viewport={"width": 320, "height": HEIGHT})
        page = context.new_page()
        for lang in ("da", "ar"):
            tag = f"{lang}-scripts-{'on' if scripts else 'off'}"
            page.goto(f"{base}/?lang={lang}")
            # The emergency numbers are whole on the first screen of the home page at 320×640.
            page.set_viewport_size({"width": 320, "height": HEIGHT})
            emergency = page.locator("#emergency")
            assert emergency.bounding_box()["y"] + emergency.bounding_box()["height"] <= HEIGHT  # type: ignore[index]
            check_and_shoot(page, f"{tag}-home")
            page.goto(f"{base}/write?lang={lang}")
            check_and_shoot(page, f"{tag}-write")
            page.fill("#message", "Min bror læser min telefon.")
            page.click("#send")
            code = page.locator("#pickup-code")
            expect(code).to_have_text(re.compile(r"^\d{4} \d{4} \d{4} \d{4}$"))
            # The code never wraps: one line, as tall as one line of its font.
            assert page.evaluate("(() => { const c = document.getElementById('pickup-code'); return c.getClientRects().length === 1 && c.scrollWidth <= c.clientWidth; })()")
            check_and_shoot(page, f"{tag}-code")
            typed = code.inner_text().strip()
            page.goto(f"{base}/pickup?lang={lang}")
            page.fill("#code", typed)
            page.click("#open")
            expect(page.locator("#thread .message")).to_have_count(1)
            page.fill("#reply", "Og en ting mere.")
            page.click("#send-reply")
            expect(page.locator("#thread .message")).to_have_count(2)
            # Message times in the deployment's time zone (default Europe/Copenhagen), not UTC.
            shown = page.locator("#thread .message time").last.inner_text()
            now = dt.datetime.now(ZoneInfo("Europe/Copenhagen"))
            recent = {(now - dt.timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M") for m in range(3)}
            assert shown in recent, (shown, recent)
            check_and_shoot(page, f"{tag}-pickup-thread")
        context.close()
    assert len(list(SHOTS.glob("*-scripts-*.png"))) >= 2 * 2 * 4 * 2


def test_without_scripts_the_delete_question_is_in_the_first_screen(browser: Browser, live_server: LiveServer) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 320, "height": HEIGHT})
    page = context.new_page()
    for lang in ("da", "ar"):
        ask_to_delete_and_delete(page, live_server, lang)
    context.close()


def ask_to_delete_and_delete(page: Page, live_server: LiveServer, lang: str) -> None:
    page.goto(f"{live_server.url}/write?lang={lang}")
    page.fill("#message", "slet mig")
    page.click("#send")
    typed = page.locator("#pickup-code").inner_text().strip()
    page.goto(f"{live_server.url}/pickup?lang={lang}")
    page.fill("#code", typed)
    page.click("#open")
    page.click("#delete-thread")
    for selector in ("#confirm-question", "#confirm-delete", "#cancel-delete"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["y"] + box["height"] <= HEIGHT, (selector, box)
    page.click("#confirm-delete")
    expect(page.locator("h1#deleted")).to_be_visible()
