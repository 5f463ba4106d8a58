"""The staff pages as served: contract ids, no inline script, the inbox only with a session."""

import re

import pytest

from tests.api.staff_client import login, staff_client

INBOX_IDS = ["threads", "thread", "reply", "send-reply", "status", "risk", "duty-toggle", "logout"]


@pytest.fixture
async def staff(aiohttp_client, world):
    return await staff_client(aiohttp_client, world)


def ids(html: str) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', html))


def assert_strict(response, html: str) -> None:
    assert "script-src 'self' 'wasm-unsafe-eval'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'type="module"' in tag and 'src="/static/' in tag, tag
    assert "style=" not in html and "<style" not in html


async def test_the_inbox_without_a_session_sends_you_to_the_login_page(staff):
    response = await staff.get("/staff", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/staff/login"


async def test_the_login_page_has_its_contract_ids_and_nothing_can_be_typed_without_scripts(staff):
    response = await staff.get("/staff/login?lang=en")
    html = await response.text()
    assert response.status == 200
    assert {"username", "passphrase", "totp", "login", *INBOX_IDS} <= ids(html)
    assert re.search(r'<fieldset id="login-fields"[^>]*\bdisabled\b', html)
    assert 'data-mode="login"' in html and 'id="quick-exit"' not in html
    assert_strict(response, html)


async def test_a_reload_with_a_session_asks_only_for_the_passphrase(staff, world):
    alice = await login(staff, world, world.members["alice"])
    response = await staff.get("/staff?lang=en", headers=alice.headers(csrf=False))
    html = await response.text()
    assert response.status == 200 and 'data-mode="unlock"' in html and 'data-username="alice"' in html
    assert {"passphrase", "login", *INBOX_IDS} <= ids(html) and "totp" not in ids(html)
    assert re.search(r'id="username"[^>]*value="alice"[^>]*readonly', html)
    assert alice.csrf not in html


async def test_the_enrolment_page_has_its_contract_ids(staff):
    response = await staff.get("/staff/enroll?lang=en")
    html = await response.text()
    assert response.status == 200
    assert {"passphrase", "passphrase2", "totp-qr", "totp", "enroll", "totp-secret", "strength"} <= ids(html)
    assert_strict(response, html)


@pytest.mark.parametrize(("lang", "words"), [
    ("da", ["Afslut min vagt", "Mangler svar", "Tastaturgenveje", "Svarskabeloner", "Overdrag"]),
    ("en", ["End my shift", "Needs a reply", "Keyboard shortcuts", "Reply templates", "Hand over"]),
])
async def test_the_inbox_speaks_danish_and_english_with_landmarks_views_and_shortcuts(staff, world, lang, words):
    alice = await login(staff, world, world.members["alice"])
    response = await staff.get(f"/staff?lang={lang}&view=needs_reply", headers=alice.headers(csrf=False))
    html = await response.text()
    assert response.status == 200 and f'<html lang="{lang}"' in html
    for word in words:
        assert word in html, word
    assert html.count("<main") == 1 and "<header" in html and 'aria-labelledby="threads-title"' in html
    assert {"views", "live-status", "connection", "key-wait", "end-shift", "help-button", "shortcuts", "template-pick",
            "handover-to", "handover-note", "handover", "templates", "notify-desktop", "notify-sound", *INBOX_IDS} <= ids(html)
    # The views are plain links; the one in the address is marked current (no device storage involved).
    assert re.search(r'<a class="view" href="/staff\?view=needs_reply" data-view="needs_reply" aria-current="page">', html)
    assert len(re.findall(r'<a class="view" href="/staff\?view=\w+"', html)) == 6
    assert_strict(response, html)
