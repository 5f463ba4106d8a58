"""Issue 8 "done when", tried as an attacker would on a fresh demo: the real `fristed init --demo`
and `fristed serve`, plain HTTP from outside."""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from http.cookies import SimpleCookie

import pyotp
import pytest
from nacl.public import PrivateKey

from crypto import b64, derive_staff, seal_envelope, unb64
from tests.support import Demo, LiveServer, set_option


def call(base: str, path: str, body: object, headers: dict[str, str] | None = None) -> tuple[int, Message, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, response.headers, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


@pytest.fixture
def fresh_demo(demo: Demo) -> Iterator[tuple[Demo, LiveServer]]:
    set_option(demo.data_dir, "rate", "failed_open_per_minute", "30")  # a 2-second wait, so the test can honour it
    set_option(demo.data_dir, "limits", "max_messages_per_thread", "3")
    with LiveServer(demo.data_dir, demo.env) as server:
        yield demo, server


def test_the_attacks_of_issue_8_fail_on_a_fresh_demo(fresh_demo: tuple[Demo, LiveServer]) -> None:
    demo, server = fresh_demo
    base = server.url
    with urllib.request.urlopen(base + "/api/v1/config", timeout=10) as response:
        config = json.loads(response.read())

    # One token cannot append past the cap.
    team = config["teams"][0]
    z_sk = bytes(PrivateKey.generate())
    z_pk = bytes(PrivateKey(z_sk).public_key)
    token = b64(bytes(range(32)))
    envelope = seal_envelope({"text": "hjælp"}, [unb64(team["pk"]), z_pk])
    assert call(base, "/api/v1/threads", {"team": team["id"], "citizen_pk": b64(z_pk), "access_token": token,
                                         "envelope": envelope})[0] == 201
    replies = [call(base, "/api/v1/threads/reply", {"access_token": token, "envelope": envelope}) for _ in range(3)]
    assert [r[0] for r in replies] == [201, 201, 409] and replies[-1][2]["error"]["code"] == "thread_full"

    # 50 wrong access tokens in a row (after the cap: a client that guesses is held back on every
    # token-bearing call, its valid token included): 429 with a Retry-After that is honest.
    answers = [call(base, "/api/v1/threads/open", {"access_token": b64(bytes([i]) * 32)}) for i in range(50)]
    statuses = [status for status, _, _ in answers]
    assert statuses[:10] == [404] * 10 and set(statuses[10:]) == {429}
    wait = int(answers[-1][1]["Retry-After"])
    assert 1 <= wait <= 2 and answers[-1][2]["error"]["code"] == "rate_limited"
    time.sleep(wait)
    assert call(base, "/api/v1/threads/open", {"access_token": b64(bytes([99]) * 32)})[0] == 404

    # A deeply nested JSON body: 400, not a crash.
    status, _, body = call(base, "/api/v1/threads", b"[" * 40_000 + b"]" * 40_000)
    assert (status, body["error"]["code"]) == (400, "bad_json")

    # Five failed logins from a stranger do not stop the consultant on their own browser.
    _, _, pre = call(base, "/api/v1/staff/prelogin", {"username": "demo"})
    keys = derive_staff(demo.passphrase, unb64(pre["salt"]), pre["kdf"]["ops"], pre["kdf"]["mem"])
    totp = pyotp.TOTP(demo.totp_secret)
    status, headers, _ = call(base, "/api/v1/staff/login", {"username": "demo", "auth_key": b64(keys.auth_key), "totp": totp.now()})
    assert status == 200
    cookies: SimpleCookie = SimpleCookie()
    for line in headers.get_all("Set-Cookie") or []:
        cookies.load(line)
    own = cookies["fristed_device"].value
    for _ in range(6):
        status, _, _ = call(base, "/api/v1/staff/login", {"username": "demo", "auth_key": b64(bytes(32)), "totp": "000000"})
    assert status == 429
    next_code = totp.at(time.time() + 30)  # the current step was used above; the next one is within the window
    status, _, answer = call(base, "/api/v1/staff/login", {"username": "demo", "auth_key": b64(keys.auth_key), "totp": next_code},
                             {"Cookie": f"fristed_device={own}"})
    assert status == 200 and answer["csrf"]

