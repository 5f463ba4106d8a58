"""The consultant's whole story in headless Chromium against the real `fristed serve`:
enrol from a `fristed consultant invite` URL, get the team key from a teammate's
login, log in with passphrase + TOTP, see a citizen's new thread live, read it,
reply, write a note, triage; the citizen reads the reply and never the note."""

import re
import time
from collections.abc import Iterator

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from gateway.db import Database
from gateway.models import StaffSession, Thread
from gateway.settings import load_settings
from tests.browser.citizen import CitizenPages, run_async
from tests.browser.conftest import RequestRecorder
from tests.browser.staff import StaffPages, invite_url
from tests.support import Demo, LiveServer, set_option

ALICE_PASSPHRASE = "lange vinterdage ved havet 7"


@pytest.fixture
def staff_server(demo: Demo, smtp_server) -> Iterator[LiveServer]:
    """`fristed serve` with [smtp] pointing at the test's SMTP server and public_url at itself."""
    controller, _inbox = smtp_server
    server = LiveServer(demo.data_dir, demo.env)
    set_option(demo.data_dir, None, "public_url", f'"{server.url}"')
    set_option(demo.data_dir, "smtp", "host", '"127.0.0.1"')
    set_option(demo.data_dir, "smtp", "port", str(controller.port))
    with server:
        yield server


def sessions_of(demo: Demo, username: str) -> int:
    async def count() -> int:
        db = Database.connect(load_settings(demo.data_dir, {}).database_url)
        try:
            async with db.read() as session:
                return len((await session.scalars(select(StaffSession).where(StaffSession.username == username))).all())
        finally:
            await db.close()

    return run_async(count)


def thread_ids_in_db(demo: Demo) -> list[str]:
    async def ids() -> list[str]:
        db = Database.connect(load_settings(demo.data_dir, {}).database_url)
        try:
            async with db.read() as session:
                return list(await session.scalars(select(Thread.id).order_by(Thread.created, Thread.id)))
        finally:
            await db.close()

    return run_async(ids)


def test_a_consultant_enrols_logs_in_and_answers_a_citizen_who_never_sees_the_note(
    browser: Browser, demo: Demo, staff_server: LiveServer, smtp_server, recorder: RequestRecorder
) -> None:
    _controller, inbox = smtp_server
    citizen_context = browser.new_context()
    citizen = CitizenPages(citizen_context.new_page(), staff_server.url)
    citizen.open_start()
    citizen.write_message("Skrevet før alice kom")
    [old_thread] = thread_ids_in_db(demo)

    # Enrolment from the operator's invite URL.
    alice_context = browser.new_context()
    recorder.attach(alice_context)
    alice = StaffPages(alice_context, staff_server.url)
    secret = alice.enrol(invite_url(demo.data_dir, "alice", "alice@example.org"), ALICE_PASSPHRASE)

    # The demo consultant logs in; their browser shares the team key with alice.
    demo_context = browser.new_context()
    demo_staff = StaffPages(demo_context, staff_server.url)
    with demo_staff.page.expect_response(lambda r: r.url.endswith("/api/v1/staff/grants") and r.request.method == "POST") as shared:
        demo_staff.log_in("demo", demo.passphrase, pyotp.TOTP(demo.totp_secret).now())
    assert shared.value.status == 201
    expect(demo_staff.page.locator(f'#threads .thread[data-id="{old_thread}"]')).to_be_visible()

    # Alice logs in (the enrolment spent this step's code) and reads the thread from before she enrolled.
    alice.log_in("alice", ALICE_PASSPHRASE, pyotp.TOTP(secret).at(time.time() + 30))
    alice.open_thread(old_thread)
    assert alice.messages() == [("citizen", "Skrevet før alice kom")]
    expect(alice.page.locator("#team-panel .member")).to_have_count(2)

    # On duty: the next thread is hers (fewest open threads), announced live and by e-mail.
    alice.page.click("#duty-toggle")
    expect(alice.page.locator("#duty-toggle")).to_have_attribute("aria-pressed", "true")
    sent_at = time.monotonic()
    citizen.open_start()
    code = citizen.write_message("Min far har taget mit pas. Hvad gør jeg?")
    expect(alice.page.locator("#threads .thread")).to_have_count(2, timeout=3000)
    new_thread = next(t for t in thread_ids_in_db(demo) if t != old_thread)
    expect(alice.page.locator(f'#threads .thread[data-id="{new_thread}"] .assignee')).to_contain_text("alice")
    while not inbox.messages and time.monotonic() - sent_at < 6:
        time.sleep(0.05)
    assert inbox.messages, "no e-mail"
    arrived, recipients, mail = inbox.messages[0]
    assert recipients == ["alice@example.org"] and arrived - sent_at < 5
    body = mail.get_content()
    for leak in (new_thread, old_thread, "demo", "Demo", "pas", "far"):
        assert leak not in body and leak not in str(mail["Subject"]), leak

    # Read, reply, note, triage.
    alice.open_thread(new_thread)
    assert alice.messages() == [("citizen", "Min far har taget mit pas. Hvad gør jeg?")]
    alice.reply("Vi er her. Kan du ringe til os i morgen?")
    alice.note("Intern: familien kender adressen")
    alice.triage("open", "high")
    row = alice.page.locator(f'#threads .thread[data-id="{new_thread}"]')
    expect(row).to_have_attribute("data-status", "open")
    expect(row).to_have_attribute("data-risk", "high")
    expect(alice.page.locator("#notes .note .text")).to_have_text(["Intern: familien kender adressen"])

    # The citizen picks up the reply, and never the note.
    citizen.pick_up(code)
    assert citizen.messages() == [
        ("citizen", "Min far har taget mit pas. Hvad gør jeg?"),
        ("consultant", "Vi er her. Kan du ringe til os i morgen?"),
    ]
    assert "familien kender adressen" not in citizen.page.content()

    # A reload forgets the keys: the passphrase is asked for again; nothing key-like was stored.
    alice.page.reload()
    expect(alice.page.locator("#passphrase")).to_be_visible()
    expect(alice.page.locator("#inbox-view")).to_be_hidden()
    storage = alice.page.evaluate(
        "async () => ({local: localStorage.length, session: sessionStorage.length,"
        " idb: (await indexedDB.databases()).length, caches: (await caches.keys()).length, cookie: document.cookie})"
    )
    assert storage == {"local": 0, "session": 0, "idb": 0, "caches": 0, "cookie": ""}
    cookies = {c["name"]: c for c in alice_context.cookies()}
    assert set(cookies) <= {"fristed_staff", "fristed_device"}  # the session, and the login device cookie (SECURITY.md)
    cookie = cookies["fristed_staff"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    alice.page.fill("#passphrase", ALICE_PASSPHRASE)
    alice.page.click("#login")
    expect(alice.page.locator(f'#threads .thread[data-id="{new_thread}"]')).to_be_visible()
    alice.open_thread(new_thread)
    assert alice.messages()[-1] == ("consultant", "Vi er her. Kan du ringe til os i morgen?")

    # Logout ends the session on the server.
    alice.page.click("#logout")
    expect(alice.page).to_have_url(re.compile(r"/staff/login$"))
    assert sessions_of(demo, "alice") == 0
    recorder.assert_absent([ALICE_PASSPHRASE, secret])
    assert alice.problems == [] and demo_staff.problems == []
    for context in (citizen_context, alice_context, demo_context):
        context.close()


def test_a_wrong_passphrase_is_refused_and_the_staff_inbox_needs_a_session(browser: Browser, demo: Demo, live_server: LiveServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server.url}/staff")
    expect(page).to_have_url(re.compile(r"/staff/login$"))
    page.fill("#username", "demo")
    page.fill("#passphrase", "not the passphrase at all")
    page.fill("#totp", pyotp.TOTP(demo.totp_secret).now())
    page.click("#login")
    expect(page.locator("#login-error")).to_be_visible()
    expect(page.locator("#inbox-view")).to_be_hidden()
    assert context.cookies() == []
    context.close()


def test_the_enrolment_page_explains_a_missing_or_spent_link(browser: Browser, live_server: LiveServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server.url}/staff/enroll?lang=en")
    expect(page.locator("#enroll-error")).to_contain_text("the part after #")
    page.goto("about:blank")
    page.goto(f"{live_server.url}/staff/enroll?lang=en#not-a-real-token")
    expect(page.locator("#enroll-error")).to_contain_text("unknown, already used or expired")
    expect(page.locator("#enroll-form")).to_be_hidden()
    context.close()


def test_passphrase_rules_judge_length_and_refuse_common_ones(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/staff/login?lang=en")
    verdicts = page.evaluate(
        """async () => {
            const { assessPassphrase } = await import('/static/staff/passphrase.mjs');
            const cases = ['short one', 'password1234', 'Sommer2024!!!', 'aaaaaaaaaaaaaaa', '1234567890123',
                           'qwertyuiopasdf', 'alice alice 12', 'lange vinterdage ved havet 7',
                           'horse staple violet kettle mountain river'];
            return cases.map((c) => { const v = assessPassphrase(c, 'alice'); return [v.ok, v.problem, v.score]; });
        }"""
    )
    assert verdicts == [
        [False, "short", 0],
        [False, "common", 0],
        [False, "common", 0],
        [False, "repetitive", 0],
        [False, "common", 0],
        [False, "repetitive", 0],
        [False, "username", 0],
        [True, "", 4],
        [True, "", 4],
    ]

