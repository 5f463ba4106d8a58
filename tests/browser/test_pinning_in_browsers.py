"""Issue 11, pinning across rotation, in headless Chromium against the real `fristed serve`: a
citizen writes, the operator runs `fristed keys rotate`, the consultant answers from the inbox
(with the retired key the thread is pinned to) and the citizen verifies the answer, scripts on
and off; a new thread after the rotation is pinned to the new key."""

import json

import pyotp
from playwright.sync_api import Browser, expect

from tests.browser.citizen import Backend, CitizenPages
from tests.browser.staff import StaffPages
from tests.support import Demo, LiveServer, run_fristed

ANSWER = "Vi læser med, også efter nøgleskiftet."


def test_a_reply_after_a_rotation_is_made_with_the_pinned_key_and_verifies(
    browser: Browser, demo: Demo, live_server: LiveServer
) -> None:
    backend = Backend(demo, live_server)
    context = browser.new_context()
    citizen = CitizenPages(context.new_page(), live_server.url)
    citizen.open_start()
    code = citizen.write_message("Skrevet før nøgleskiftet")
    thread, rows = backend.thread_for(code)
    assert thread is not None
    pinned = json.loads(rows[0].envelope)["team"]
    run_fristed("keys", "rotate", "--team", "demo", data_dir=demo.data_dir)
    current = next(t for t in backend.get_json("/api/v1/config")["teams"] if t["id"] == "demo")["pk"]
    assert current != pinned

    staff_context = browser.new_context()
    staff = StaffPages(staff_context, live_server.url)
    staff.log_in("demo", demo.passphrase, pyotp.TOTP(demo.totp_secret).now())
    staff.open_thread(thread.id)
    expect(staff.page.locator('#thread .message[data-verified="false"]')).to_have_count(0)
    staff.reply(ANSWER)
    _thread, rows = backend.thread_for(code)
    assert json.loads(rows[1].envelope)["team"] == pinned  # the retired key the thread is pinned to
    expect(staff.page.locator('#thread .message[data-verified="false"]')).to_have_count(0)

    citizen.pick_up(code)
    assert citizen.messages() == [("citizen", "Skrevet før nøgleskiftet"), ("consultant", ANSWER)]
    expect(citizen.page.locator('#thread .message[data-verified="false"]')).to_have_count(0)
    off_context = browser.new_context(java_script_enabled=False)
    off = CitizenPages(off_context.new_page(), live_server.url)
    off.pick_up(code)
    assert off.messages() == [("citizen", "Skrevet før nøgleskiftet"), ("consultant", ANSWER)]
    expect(off.page.locator('#thread .message[data-verified="false"]')).to_have_count(0)

    citizen.open_start()
    new_code = citizen.write_message("En ny samtale")
    _new, new_rows = backend.thread_for(new_code)
    assert json.loads(new_rows[0].envelope)["team"] == current
    assert staff.problems == []
    for c in (context, staff_context, off_context):
        c.close()
