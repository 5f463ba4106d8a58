"""Proof-of-work challenges (gateway/pow.py) and per-client limits (gateway/limits.py)."""

import time
from types import SimpleNamespace

import pytest

from crypto import b64, unb64
from crypto import pow as work
from gateway import pow as gpow
from gateway.errors import ApiError, RateLimited
from gateway.limits import ClientLimits
from gateway.settings import PowSettings
from tests.factories import make_settings

KEY = bytes(range(32))
CHEAP = PowSettings(ops=1, mem=8192)


def test_a_challenge_carries_its_parameters_under_a_mac():
    issued = gpow.issue(KEY, 5, CHEAP, now=1_800_000_000)
    read = gpow.read(KEY, b64(issued.challenge))
    assert (read.bits, read.ops, read.mem, read.expires) == (5, 1, 8192, issued.expires)
    assert issued.expires % 60 == 0 and issued.expires >= 1_800_000_000 + CHEAP.challenge_seconds
    assert issued.json()["expires"].endswith("Z") and len(issued.challenge) == 32


@pytest.mark.parametrize("index", [0, 8, 12, 15, 16, 31])
def test_a_challenge_with_any_byte_changed_is_bad_pow(index):
    raw = bytearray(gpow.issue(KEY, 5, CHEAP).challenge)
    raw[index] ^= 1
    with pytest.raises(ApiError) as caught:
        gpow.read(KEY, b64(bytes(raw)))
    assert caught.value.code == "bad_pow"


def test_another_deployments_challenge_is_bad_pow():
    issued = gpow.issue(bytes(32), 5, CHEAP)
    with pytest.raises(ApiError) as caught:
        gpow.read(KEY, b64(issued.challenge))
    assert (caught.value.status, caught.value.code) == (400, "bad_pow")


def test_a_solved_nonce_meets_its_bits_and_a_wrong_one_does_not():
    issued = gpow.issue(KEY, 6, CHEAP)
    nonce = work.solve(issued.challenge, 6, 1, 8192)
    assert work.zero_bits(work.digest(nonce, issued.challenge, 1, 8192)) >= 6
    assert work.meets(nonce, issued.challenge, 6, 1, 8192)
    assert not work.meets(nonce[:7], issued.challenge, 0, 1, 8192)  # too short, whatever the bits


def test_bits_rise_with_the_excess_and_stay_within_the_settings():
    control = gpow.PowControl(None, PowSettings(floor_bits=1, flood_bits=8, max_bits=12, writes_per_minute=60), KEY)  # type: ignore[arg-type]
    assert [control.target(r) for r in (0, 60, 61, 120, 240, 10_000)] == [1, 1, 8, 10, 12, 12]


def request(address: str, header_value: str | None = None):
    headers = {"X-Real-IP": header_value} if header_value is not None else {}
    return SimpleNamespace(remote=address, headers=headers)


def limits(tmp_path, **rate):
    return ClientLimits(make_settings(tmp_path, rate=rate, proxy={"client_address_header": "X-Real-IP"}))


def test_a_client_past_its_burst_gets_an_honest_retry_after(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    guard = limits(tmp_path, failed_open_burst=3, failed_open_per_minute=2)
    client = request("127.0.0.1", "203.0.113.9")
    for _ in range(3):
        guard.take(client, "failed_open")
    with pytest.raises(RateLimited) as caught:
        guard.take(client, "failed_open")
    assert caught.value.retry_after == 30
    clock[0] += 29
    with pytest.raises(RateLimited):
        guard.check(client, "failed_open")
    clock[0] += 1  # once Retry-After has passed, the same client is not refused by the same limit
    guard.take(client, "failed_open")


def test_clients_are_told_apart_by_the_proxy_header_and_never_kept_in_clear(tmp_path):
    guard = limits(tmp_path, create_burst=1, create_per_minute=1)
    guard.take(request("127.0.0.1", "198.51.100.1"), "create")
    guard.take(request("127.0.0.1", "198.51.100.2"), "create")
    with pytest.raises(RateLimited):
        guard.take(request("127.0.0.1", "10.0.0.1, 198.51.100.1"), "create")  # the proxy's own element counts
    state = repr(guard._state)
    assert "198.51.100" not in state and "127.0.0.1" not in state


def test_per_client_limits_switch_off(tmp_path):
    guard = limits(tmp_path, per_client=False, create_burst=1, create_per_minute=1)
    for _ in range(5):
        guard.take(request("127.0.0.1"), "create")
    assert len(guard) == 0


def test_the_key_is_replaced_hourly_and_forgets_every_client(tmp_path, monkeypatch):
    clock = [5000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    guard = limits(tmp_path, create_burst=1, create_per_minute=1)
    guard.take(request("192.0.2.7"), "create")
    old_key = guard._key
    clock[0] += 3600
    guard.take(request("192.0.2.7"), "create")
    assert guard._key != old_key and len(guard) == 1
    # What is kept is a 16-byte keyed digest per client, never the address in any form.
    assert all(len(slot) == 16 and b"192.0.2.7" not in slot and b"\xc0\x00\x02\x07" not in slot for slot in guard._state)


def test_a_b64_challenge_of_the_wrong_length_is_bad_pow():
    with pytest.raises(ApiError) as caught:
        gpow.read(KEY, b64(b"x" * 31))
    assert caught.value.code == "bad_pow"
    assert unb64(b64(gpow.issue(KEY, 0, CHEAP).challenge), length=32)
