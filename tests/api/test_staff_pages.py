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
