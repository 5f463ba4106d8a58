"""Strangers cannot lock a consultant out of their own browser (issue 8 item 4, OWASP device cookies)."""

import pytest
from sqlalchemy import select

from crypto import b64
from gateway.models import Consultant
from tests.api.staff_client import WORLD_TOTP, code_for, enrol, fresh_totp, staff_client


@pytest.fixture
async def staff(aiohttp_client, world):
    return await staff_client(aiohttp_client, world)


async def attempt(staff, world, username: str, *, right: bool, device: str | None = None):
    member = world.members.get(username)
    auth_key = member.auth_key if (member and right) else bytes(32)
    await fresh_totp(world, username, None)
    headers = {"Cookie": f"fristed_device={device}"} if device else {}
    body = {"username": username, "auth_key": b64(auth_key), "totp": code_for(WORLD_TOTP)}
    return await staff.post("/api/v1/staff/login", json=body, headers=headers)


def device_of(response) -> str:
    morsel = response.cookies["fristed_device"]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/api/v1/staff/login"
    assert not morsel["secure"]  # plain HTTP on loopback, like the session cookie
    assert int(morsel["max-age"]) > 30 * 86400
    return morsel.value


async def test_five_failed_logins_from_a_stranger_do_not_stop_the_consultant_on_their_own_browser(staff, world):
    device = device_of(await attempt(staff, world, "alice", right=True))
    statuses = [(await attempt(staff, world, "alice", right=False)).status for _ in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    stranger = await attempt(staff, world, "alice", right=True)  # even the right passphrase, from elsewhere
    assert stranger.status == 429 and int(stranger.headers["Retry-After"]) >= 1
    own = await attempt(staff, world, "alice", right=True, device=device)
    assert own.status == 200 and "csrf" in await own.json()
    # The block made by strangers still stands for strangers.
    assert (await attempt(staff, world, "alice", right=True)).status == 429


async def test_a_device_cookie_for_one_consultant_is_worth_nothing_for_another(staff, world):
    await enrol(staff, world, "bob", ["north"])
    await fresh_totp(world, "bob")
    alice_device = device_of(await attempt(staff, world, "alice", right=True))
    for _ in range(6):
        await attempt(staff, world, "bob", right=False)
    assert (await attempt(staff, world, "bob", right=True, device=alice_device)).status == 429
    forged = alice_device[:-2] + ("AA" if not alice_device.endswith("AA") else "BA")
    assert (await attempt(staff, world, "alice", right=True, device=forged)).status == 200  # untrusted, but alice is not blocked


async def test_failures_on_a_trusted_device_are_bounded_per_device_and_do_not_block_the_account(staff, world):
    device = device_of(await attempt(staff, world, "alice", right=True))
    statuses = [(await attempt(staff, world, "alice", right=False, device=device)).status for _ in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    blocked = await attempt(staff, world, "alice", right=True, device=device)
    assert blocked.status == 429 and int(blocked.headers["Retry-After"]) >= 1
    async with world.db.read() as session:
        alice = await session.scalar(select(Consultant).where(Consultant.username == "alice"))
        assert alice is not None and alice.failed_logins == 0 and alice.login_blocked_until is None
    # Another browser (no device cookie) is not held back by that device's failures.
    assert (await attempt(staff, world, "alice", right=True)).status == 200
