"""Words for a frightened 14-year-old (issue 12), in a real browser at 320×640: what to do
in danger on every citizen page in all seven languages, who reads and when on /write and
the code page (from the real settings), no English on a page of another language, the
404 page in the page's language, and axe-core with zero violations of any impact."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from gateway.i18n import LANGUAGES, NATIVE_NAMES
from tests.support import LiveServer, init_demo, set_option

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORT = {"width": 320, "height": 640}
ORGANISATION = "Ungerådgivningen Nord"
# English words a page in another language must not show (the language menu and the
# helpline's own name are the only words not in the page's language).
ENGLISH = re.compile(r"\b(the|your|please|message|answer|conversation|write|delete|code|with|and|you|call|police|danger)\b", re.I)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One deployment for the module, with its own organisation name and retention."""
    demo = init_demo(tmp_path_factory.mktemp("words") / "data")
    set_option(demo.data_dir, None, "retention_days", "21")
    set_option(demo.data_dir, None, "organisation_name", f'"{ORGANISATION}"')
    # The operator's own words for Danish only: the other languages keep the translated default.
    set_option(demo.data_dir, None, "reply_promise", '{ da = "Vi svarer inden for 12 timer." }')
    set_option(demo.data_dir, None, "duty_hours", '{ da = "Vi er her på hverdage kl. 9-21." }')
    with LiveServer(demo.data_dir, demo.env) as server:
        yield server


def visible_text_without_names(page: Page) -> str:
    text = page.evaluate("document.body.innerText")
    for name in [*NATIVE_NAMES.values(), "Lev Uden Vold", ORGANISATION, "Shift"]:
        text = text.replace(name, "")
    return text


def test_every_citizen_page_says_what_to_do_in_danger_in_its_language(browser: Browser, site: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    for lang in LANGUAGES:
        for path in ("/", "/write", "/pickup", "/no-such-page"):
            page.goto(f"{site.url}{path}?lang={lang}")
            emergency = page.locator("#emergency")
            expect(emergency).to_be_visible()
            expect(emergency).to_contain_text("112")
            expect(emergency).to_contain_text("114")
            expect(emergency).to_contain_text("1888")
            if path == "/":
                box = emergency.bounding_box()
                assert box is not None and box["y"] + box["height"] <= VIEWPORT["height"], (lang, box)
                # The language links: at the top of the page, targets of at least 24 px.
                for link in page.locator("nav.language-bar a").all():
                    target = link.bounding_box()
                    assert target is not None and target["y"] < 200, (lang, target)
                    assert target["height"] >= 24 and target["width"] >= 24, (lang, link.inner_text(), target)
            if lang != "en":
                english = ENGLISH.findall(visible_text_without_names(page))
                assert english == [], (lang, path, english)
        # The 404 page speaks the page's language, not the browser's or HTTP's.
        response = page.goto(f"{site.url}/no-such-page?lang={lang}")
        assert response is not None and response.status == 404
        assert "Not Found" not in page.content()
        assert page.evaluate("document.documentElement.lang") == lang
    context.close()


@pytest.mark.parametrize("scripts", [True, False], ids=["scripts-on", "scripts-off"])
def test_write_and_the_code_page_say_who_reads_when_and_how_long(browser: Browser, site: LiveServer, scripts: bool) -> None:
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=scripts)
    page = context.new_page()
    promises = {
        "da": "Vi svarer inden for 12 timer. Vi er her på hverdage kl. 9-21.",
        "en": "We answer within 24 hours, usually sooner.",
        "so": "Waxaan kuugu jawaabnaa 24 saacadood gudahood",
    }
    for lang, days in (("da", "21 dage"), ("en", "21 days"), ("so", "21 maalmood")):
        page.goto(f"{site.url}/write?lang={lang}")
        about = page.locator("#about-reply")
        expect(about).to_contain_text(ORGANISATION)
        expect(about).to_contain_text(days)
        expect(about).to_contain_text(promises[lang])
        if lang != "da":
            expect(about).not_to_contain_text("hverdage")
        page.fill("#message", "Hvem læser det her?")
        page.click("#send")
        expect(page.locator("#pickup-code")).to_be_visible()
        expect(page.locator("#about-reply")).to_be_visible()
        expect(page.locator("#about-reply")).to_contain_text(days)
    context.close()


def test_an_empty_message_is_refused_in_the_pages_language_not_the_browsers(browser: Browser, site: LiveServer) -> None:
    for scripts in (True, False):
        context = browser.new_context(viewport=VIEWPORT, java_script_enabled=scripts, locale="en-US")
        page = context.new_page()
        page.goto(f"{site.url}/write?lang=da")
        page.click("#send")
        expect(page.locator("#error")).to_have_text("Skriv noget først.")
        # No browser bubble: the form is not left to the browser's own (English) validation.
        assert page.evaluate("document.getElementById('write-form').noValidate")
        context.close()


def test_a_counter_appears_before_the_limit(browser: Browser, site: LiveServer) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{site.url}/write?lang=da")
    counter = page.locator("#message-counter")
    page.fill("#message", "a" * 100)
    expect(counter).to_be_hidden()
    page.fill("#message", "a" * 9_990)
    expect(counter).to_have_text("10 tegn tilbage.")
    page.fill("#message", "a" * 10_003)
    expect(counter).to_have_text("3 tegn for mange.")
    page.close()


def axe_violations(page: Page) -> list[str]:
    page.evaluate(AXE.read_text(encoding="utf-8"))  # add_script_tag is blocked by the CSP
    return page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map((v) => `${v.id} [${v.impact}]: ` + v.nodes.map((n) => n.target.join(' ')).join(', '))"""
    )


def test_axe_finds_nothing_on_any_citizen_page_in_danish_and_arabic(browser: Browser, site: LiveServer) -> None:
    """Every rule, every impact (moderate `region` included), scripts on; and the staff pages have one main."""
    for width in (320,):  # the layout at 1280 px is checked by test_citizen_screenshots.py
        page = browser.new_page(viewport={"width": width, "height": 640})
        for lang in ("da", "ar"):
            for path in ("/", "/write", "/pickup", "/no-such-page"):
                page.goto(f"{site.url}{path}?lang={lang}")
                page.wait_for_load_state("networkidle")
                assert axe_violations(page) == [], (lang, path, width)
            page.goto(f"{site.url}/write?lang={lang}")
            page.fill("#message", "tjek")
            page.click("#send")
            code = page.locator("#pickup-code")
            expect(code).to_be_visible()
            assert axe_violations(page) == [], (lang, "code page", width)
            typed = code.inner_text()
            page.goto(f"{site.url}/pickup?lang={lang}")
            page.fill("#code", typed)
            page.click("#open")
            expect(page.locator("#thread .message")).to_have_count(1)
            assert axe_violations(page) == [], (lang, "thread", width)
            page.click("#delete-thread")
            assert axe_violations(page) == [], (lang, "delete question", width)
        page.close()
    page = browser.new_page()
    for path in ("/staff", "/staff/enroll"):
        page.goto(f"{site.url}{path}")
        page.evaluate(AXE.read_text(encoding="utf-8"))
        assert page.evaluate("async () => (await axe.run(document, {runOnly: ['landmark-one-main']})).violations.length") == 0, path
    page.close()
