"""A citizen with scripts on writes while the server demands proof of work, and does not wait for it:
the page solved it in the worker while the person typed (issue 8, INTERFACES.md 1.1)."""

import json
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Request, expect

from tests.browser.citizen import Backend, CitizenPages
from tests.support import Demo, LiveServer, set_option

TEXT = "Jeg tør ikke tage hjem i aften. Hvem kan jeg tale med?"


@pytest.fixture
def demanding_server(demo: Demo) -> Iterator[LiveServer]:
    set_option(demo.data_dir, "pow", "floor_bits", "6")
    with LiveServer(demo.data_dir, demo.env) as server:
        yield server


def test_a_citizen_typing_for_a_few_seconds_sends_without_waiting_for_the_proof_of_work(
    browser: Browser, demanding_server: LiveServer, demo: Demo
) -> None:
    context = browser.new_context()
    page = context.new_page()
    sent: list[dict] = []

    def keep(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/api/v1/threads"):
            sent.append(json.loads(request.post_data or "{}"))

    page.on("request", keep)
    citizen = CitizenPages(page, demanding_server.url)
    citizen.open_start()
    assert page.evaluate("fetch('/api/v1/config').then(r => r.json()).then(c => c.pow.bits)") >= 6
    page.click("#write-link")
    # A person typing a first sentence: a few seconds, during which the worker solves.
    page.locator("#message").press_sequentially(TEXT, delay=90)
    started = time.monotonic()
    page.click("#send")
    code = page.locator("#pickup-code")
    expect(code).to_be_visible(timeout=15_000)
    waited = time.monotonic() - started
    print(f"click #send to #pickup-code with proof of work: {waited * 1000:.0f} ms")
    assert len(sent) == 1 and set(sent[0]["pow"]) == {"challenge", "nonce"}
    # Sealing and one POST: no proof of work left to do after the click.
    assert waited < 2.0, waited
    typed = code.inner_text().strip()
    thread, messages = Backend(demo, demanding_server).thread_for(typed)
    assert thread is not None and len(messages) == 1

    # Coming back to answer: the reply pays its own proof of work, solved while the page was open.
    replies: list[dict] = []
    page.on("request", lambda r: replies.append(json.loads(r.post_data or "{}"))
            if r.method == "POST" and r.url.endswith("/api/v1/threads/reply") else None)
    citizen.pick_up(typed)
    citizen.reply("Tak. Jeg skriver igen i morgen.")
    assert citizen.messages()[-1] == ("citizen", "Tak. Jeg skriver igen i morgen.")
    assert replies and all(set(r["pow"]) == {"challenge", "nonce"} for r in replies)
    context.close()
