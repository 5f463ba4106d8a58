"""The citizen's whole story in headless Chromium against the real `fristed serve`,
once with scripts on (encrypted in the page) and once with scripts off (plain forms)."""

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.citizen import Backend, CitizenPages
from tests.browser.conftest import RequestRecorder, code_pattern, storage_is_empty
from tests.support import Demo, LiveServer

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize("scripts", [True, False], ids=["scripts-on", "scripts-off"])
def test_citizen_writes_reads_a_reply_answers_and_deletes(
    browser: Browser, live_server: LiveServer, demo: Demo, recorder: RequestRecorder, scripts: bool
) -> None:
    backend = Backend(demo, live_server)
    context = browser.new_context(java_script_enabled=scripts)
    recorder.attach(context)
    page = context.new_page()
    citizen = CitizenPages(page, live_server.url)

    citizen.open_start()
    code = citizen.write_message("Min bror læser min telefon. Hvad gør jeg?")
    digits = re.sub(r"\D", "", code)
    thread, messages = backend.thread_for(code)
    assert thread is not None and thread.sealed_by == ("browser" if scripts else "server")
    assert backend.team_reads(messages[0].envelope) == "Min bror læser min telefon. Hvad gør jeg?"

    backend.consultant_replies(code, "Tak for din besked. Vi kan mødes i morgen.")
    # Typed with dashes and Arabic-Indic digits: both are accepted.
    citizen.pick_up(f"{digits[:8]}-{digits[8:]}".translate(ARABIC_INDIC))
    assert citizen.messages() == [
        ("citizen", "Min bror læser min telefon. Hvad gør jeg?"),
        ("consultant", "Tak for din besked. Vi kan mødes i morgen."),
    ]

    citizen.reply("Ja, klokken 15 passer.")
    assert citizen.messages()[-1] == ("citizen", "Ja, klokken 15 passer.")
    thread, messages = backend.thread_for(code)
    assert thread is not None and len(messages) == 3
    assert backend.team_reads(messages[2].envelope) == "Ja, klokken 15 passer."

    citizen.delete_conversation()
    assert backend.thread_for(code) == (None, [])

    # No code in any URL, ever; with scripts on, in no request at all.
    pattern = code_pattern(digits)
    assert not any(pattern.search(r.url) for r in recorder.requests)
    if scripts:
        recorder.assert_no_match(pattern)
    assert all(r.method in ("GET", "POST") for r in recorder.requests)
    storage_is_empty(page, context)
    context.close()


def test_nothing_secret_leaves_the_page_during_write_and_pickup(
    browser: Browser, live_server: LiveServer, demo: Demo, recorder: RequestRecorder
) -> None:
    backend = Backend(demo, live_server)
    context = browser.new_context()
    recorder.attach(context)
    page = context.new_page()
    citizen = CitizenPages(page, live_server.url)
    citizen.open_start()
    code = citizen.write_message("hemmelig besked")
    citizen.pick_up(code)
    digits = re.sub(r"\D", "", code)
    keys = backend.citizen_keys(code)

    posts = [r for r in recorder.requests if r.method == "POST"]
    assert [r.url.removeprefix(live_server.url) for r in posts] == ["/api/v1/threads", "/api/v1/threads/open"]
    # The code, in any grouping, and what only the code holds (master, Z.sk) are in no request;
    # neither is the plaintext.
    recorder.assert_no_match(code_pattern(digits))
    recorder.assert_absent([code, digits, "hemmelig besked"])
    from crypto import b64

    recorder.assert_absent([b64(keys.master), b64(keys.sk)])
    assert b64(keys.access_token) in posts[1].body
    storage_is_empty(page, context)
    context.close()


def test_a_mistyped_code_is_caught_before_any_work(browser: Browser, live_server: LiveServer, recorder: RequestRecorder) -> None:
    context = browser.new_context()
    recorder.attach(context)
    page = context.new_page()
    page.goto(f"{live_server.url}/pickup?lang=en")
    page.fill("#code", "4821 0937 5562 1188")
    page.click("#open")
    expect(page.locator("#error")).to_contain_text("typing error")
    page.fill("#code", "4821 0937")
    page.click("#open")
    expect(page.locator("#error")).to_contain_text("16 digits")
    assert not [r for r in recorder.requests if r.method == "POST"]
    context.close()


@pytest.mark.parametrize("scripts", [True, False], ids=["scripts-on", "scripts-off"])
def test_a_mistyped_code_is_refused_with_a_clear_message(browser: Browser, live_server: LiveServer, scripts: bool) -> None:
    context = browser.new_context(java_script_enabled=scripts)
    page = context.new_page()
    page.goto(f"{live_server.url}/pickup?lang=en")
    page.fill("#code", "0000 0000 0000 0001")
    page.click("#open")
    expect(page.locator("#error")).to_contain_text("typing error")
    # With scripts the typed code stays to be corrected; without, a POST answer never echoes it.
    expect(page.locator("#code")).to_have_value("0000 0000 0000 0001" if scripts else "")
    context.close()
