"""Discreet on a watched device: quick exit, no re-submission, no traces, no CSP
violations, the team key rotating while someone types, accessibility."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.citizen import Backend, CitizenPages
from tests.browser.conftest import RequestRecorder, storage_is_empty
from tests.support import Demo, LiveServer, run_fristed

NEUTRAL = "https://www.dr.dk/"
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def neutral_site(page: Page) -> None:
    """The quick-exit target, answered locally (the tests have no Internet)."""

    def fulfil(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body="<title>Nyheder</title><h1>Nyheder</h1>")

    page.route(re.compile(r"^https://www\.dr\.dk/.*"), fulfil)


def test_quick_exit_leaves_without_a_history_entry_by_click_and_by_escape_twice(page: Page, live_server: LiveServer) -> None:
    neutral_site(page)
    for path in ("/", "/write", "/pickup"):
        page.goto(f"{live_server.url}/?lang=en")
        page.click("#write-link")
        page.goto(f"{live_server.url}{path}?lang=en")
        length = page.evaluate("history.length")
        page.click("#quick-exit")
        expect(page).to_have_url(NEUTRAL)
        assert page.evaluate("history.length") == length  # location.replace, not a new entry
    page.goto(f"{live_server.url}/pickup?lang=en")
    page.fill("#code", "1234")
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    expect(page).to_have_url(NEUTRAL)
    page.go_back()
    assert "/pickup" not in page.url


def test_quick_exit_is_a_plain_link_without_scripts(browser: Browser, live_server: LiveServer) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    neutral_site(page)
    page.goto(f"{live_server.url}/write?lang=en")
    expect(page.locator("body > :first-child")).to_have_id("quick-exit")
    page.click("#quick-exit")
    expect(page).to_have_url(NEUTRAL)
    context.close()


@pytest.mark.parametrize("lang", ["en", "da", "ar"])
def test_citizen_pages_load_under_the_csp_without_errors(page: Page, live_server: LiveServer, lang: str) -> None:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    for path in ("/", "/write", "/pickup"):
        response = page.goto(f"{live_server.url}{path}?lang={lang}")
        assert response is not None and response.ok
        assert "set-cookie" not in response.headers
        expect(page.locator("#quick-exit")).to_be_visible()
        assert page.evaluate("document.documentElement.lang") == lang
        assert page.evaluate("document.documentElement.dir") == ("rtl" if lang == "ar" else "ltr")
        assert page.title() == {"en": "Notes", "da": "Noter", "ar": "ملاحظات"}[lang]
    page.wait_for_load_state("networkidle")
    assert problems == []
    storage_is_empty(page, page.context)


def test_a_key_rotated_while_typing_is_resealed_without_bothering_the_person(
    page: Page, live_server: LiveServer, demo: Demo, recorder: RequestRecorder
) -> None:
    backend = Backend(demo, live_server)
    recorder.attach(page)
    citizen = CitizenPages(page, live_server.url)
    citizen.open_start()
    page.click("#write-link")
    page.wait_for_load_state("networkidle")  # /config read, the code's keys derived
    run_fristed("keys", "rotate", "--team", "demo", data_dir=demo.data_dir)
    page.fill("#message", "skrevet under en nøgleskift")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/threads") and r.status == 409):
        page.click("#send")
    code = page.locator("#pickup-code")
    expect(code).to_be_visible()
    expect(page.locator("#error")).to_be_hidden()
    posts = [r for r in recorder.requests if r.method == "POST"]
    assert len(posts) == 2
    thread, messages = backend.thread_for(code.inner_text())
    assert thread is not None and backend.team_reads(messages[0].envelope) == "skrevet under en nøgleskift"


def test_without_scripts_a_resubmitted_answer_shows_nothing_again(browser: Browser, live_server: LiveServer, demo: Demo) -> None:
    backend = Backend(demo, live_server)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    citizen = CitizenPages(page, live_server.url)
    citizen.open_start()
    code = citizen.write_message("kun én gang")
    # Reloading the POST answer re-submits the form: refused, no code, no second thread.
    response = page.reload()
    assert response is not None and response.status == 409
    expect(page.locator("#pickup-code")).to_be_hidden()
    assert code not in page.content()
    expect(page.locator("#error")).to_be_visible()
    citizen.pick_up(code)
    assert len(citizen.messages()) == 1
    response = page.reload()
    assert response is not None and response.status == 409
    expect(page.locator("#thread .message")).to_have_count(0)
    assert "kun én gang" not in page.content()
    thread, messages = backend.thread_for(code)
    assert thread is not None and len(messages) == 1
    storage_is_empty(page, context)
    context.close()


@pytest.mark.parametrize("scripts", [True, False], ids=["scripts-on", "scripts-off"])
def test_a_too_long_message_gets_a_clear_error_and_is_kept(browser: Browser, live_server: LiveServer, scripts: bool) -> None:
    context = browser.new_context(java_script_enabled=scripts)
    page = context.new_page()
    page.goto(f"{live_server.url}/write?lang=en")
    text = "å" * 10_001
    page.fill("#message", text)
    page.click("#send")
    expect(page.locator("#error")).to_contain_text("at most 10000 characters")
    expect(page.locator("#message")).to_have_value(text)
    expect(page.locator("#pickup-code")).to_be_hidden()
    context.close()


def test_citizen_pages_have_no_serious_accessibility_violations(page: Page, live_server: LiveServer) -> None:
    for path in ("/?lang=da", "/write?lang=ar", "/pickup?lang=en"):
        page.goto(f"{live_server.url}{path}")
        page.evaluate(AXE.read_text(encoding="utf-8"))  # add_script_tag is blocked by the CSP
        violations = page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                .map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', '))"""
        )
        assert violations == [], (path, violations)
