"""Issue 11 "done when", in headless Chromium against the real `fristed serve` of a fresh demo:
after a real consultant reply (sent from the inbox), rows are forged straight into the SQLite
file as someone with the `sqlite3` shell would (the real reply's row copied, its envelope
replaced by one sealed to the same public keys, the next seq; and a forged citizen row).
The citizen's page with scripts on and off, and the consultant's inbox, show none as authentic."""

import json
import sqlite3

import pyotp
from playwright.sync_api import Browser, expect

from crypto import b64, kid, seal_envelope, unb64
from tests.browser.citizen import Backend, CitizenPages
from tests.browser.staff import StaffPages
from tests.support import Demo, LiveServer

REAL = "Vi er her. Skriv igen når du vil."
FORGED = "Mød mig ved stationen kl. 22, kom alene"
FORGED_CITIZEN = "Jeg har løjet om det hele"


def forge(db_file, thread_id: str, citizen_pk: bytes, team_pk: bytes) -> None:
    with sqlite3.connect(db_file) as conn:
        _seq, sender, at, _envelope = conn.execute(
            "SELECT seq, sender, at, envelope FROM messages WHERE thread_id = ? AND sender = 'consultant'"
            " ORDER BY seq DESC LIMIT 1", (thread_id,)).fetchone()
        assert sender == "consultant"
        last = conn.execute("SELECT max(seq) FROM messages WHERE thread_id = ?", (thread_id,)).fetchone()[0]
        for offset, who, text in ((1, "consultant", FORGED), (2, "citizen", FORGED_CITIZEN)):
            envelope = seal_envelope({"text": text}, [team_pk, citizen_pk])
            conn.execute("INSERT INTO messages (thread_id, seq, sender, at, envelope) VALUES (?, ?, ?, ?, ?)",
                         (thread_id, last + offset, who, at, json.dumps(envelope, separators=(",", ":"), sort_keys=True)))
        conn.execute("UPDATE threads SET last_seq = ? WHERE id = ?", (last + 2, thread_id))


def test_forged_rows_are_never_shown_as_authentic_scripts_on_off_and_in_the_inbox(
    browser: Browser, demo: Demo, live_server: LiveServer
) -> None:
    backend = Backend(demo, live_server)
    citizen_context = browser.new_context()
    citizen = CitizenPages(citizen_context.new_page(), live_server.url)
    citizen.open_start()
    code = citizen.write_message("Jeg er bange for at tage hjem")
    thread, _rows = backend.thread_for(code)
    assert thread is not None

    staff_context = browser.new_context()
    staff = StaffPages(staff_context, live_server.url)
    staff.log_in("demo", demo.passphrase, pyotp.TOTP(demo.totp_secret).now())
    staff.open_thread(thread.id)
    staff.reply(REAL)

    team = next(t for t in backend.get_json("/api/v1/config")["teams"] if t["id"] == "demo")
    assert kid(unb64(team["pk"])) == team["kid"]
    forge(demo.data_dir / "fristed.db", thread.id, thread.citizen_pk, unb64(team["pk"]))

    # The citizen, scripts on.
    citizen.pick_up(code)
    items = citizen.page.locator("#thread .message")
    expect(items).to_have_count(4)
    assert citizen.messages()[:2] == [("citizen", "Jeg er bange for at tage hjem"), ("consultant", REAL)]
    expect(citizen.page.locator('#thread .message[data-verified="false"]')).to_have_count(2)
    assert FORGED not in citizen.page.content() and FORGED_CITIZEN not in citizen.page.content()

    # The citizen, scripts off (the server's reader, the same rule).
    off_context = browser.new_context(java_script_enabled=False)
    off = CitizenPages(off_context.new_page(), live_server.url)
    off.pick_up(code)
    expect(off.page.locator("#thread .message")).to_have_count(4)
    assert off.messages()[:2] == [("citizen", "Jeg er bange for at tage hjem"), ("consultant", REAL)]
    expect(off.page.locator('#thread .message[data-verified="false"]')).to_have_count(2)
    assert FORGED not in off.page.content() and FORGED_CITIZEN not in off.page.content()

    # The inbox: the forged citizen row is not the citizen's, the forged reply not the team's.
    staff.page.reload()
    staff.page.fill("#passphrase", demo.passphrase)
    staff.page.click("#login")
    staff.open_thread(thread.id)
    expect(staff.page.locator("#thread .message")).to_have_count(4)
    assert staff.messages()[:2] == [("citizen", "Jeg er bange for at tage hjem"), ("consultant", REAL)]
    expect(staff.page.locator('#thread .message[data-verified="false"]')).to_have_count(2)
    assert FORGED not in staff.page.content() and FORGED_CITIZEN not in staff.page.content()
    assert b64(thread.citizen_pk)
    for context in (citizen_context, staff_context, off_context):
        context.close()
