"""Staff login: prelogin (salt and Argon2id cost), then auth_key + TOTP (CRYPTO.md "Consultant passphrase").

Every failure is the same 401 `bad_login`, for known and unknown usernames
alike. Guessing is slowed per account: after `FREE_FAILURES` failures each
further failure blocks the account for `block_seconds(n)` (30 s doubling,
at most 15 minutes), answered with 429 and an honest Retry-After; a success
resets the count, and a count whose last block ended a day ago is forgotten,
so the real user is never locked out for longer than the cap. Unknown
usernames get the same schedule in `rate_limits`, keyed by a keyed hash of
the name, so the answers do not reveal who exists. No address is used.

Strangers cannot lock a consultant out of their own browser (OWASP "device
cookies"): a successful login sets `fristed_device`, a random device id with a
MAC over the username (HttpOnly, SameSite=Strict, sent only to the login
call). A login attempt that brings a valid device cookie for that username is
a trusted one: the account's block (made by untrusted failures) does not apply
to it and its failures do not count towards it; instead its own failures are
counted per device cookie, on the same schedule, so a stolen cookie gives no
unbounded guessing either. A cookie made for one username is worth nothing
for another.
"""

import datetime as dt
import hmac
import math
import secrets
import time
from dataclasses import dataclass

import pyotp
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crypto import CryptoError, b64, unb64
from crypto.encoding import blake2b
from gateway import secretbox
from gateway.db import Database, utcnow
from gateway.errors import ApiError, RateLimited, Unauthorized
from gateway.models import Consultant, Grant, Membership, RateLimit, StaffSession, TeamKey
from gateway.services import audit, sessions
from gateway.services.consultants import teams_of, totp_secret_of
from gateway.settings import Settings

FREE_FAILURES = 5
BASE_BLOCK_SECONDS = 30
MAX_BLOCK_SECONDS = 15 * 60
FORGET_AFTER = dt.timedelta(days=1)
TOTP_INTERVAL = 30
BUCKET_PREFIX = "login:"
DEVICE_PREFIX = "device:"


def block_seconds(failures: int) -> int:
    """How long an account is blocked after its `failures`-th failure in a row (0: not blocked)."""
    if failures < FREE_FAILURES:
        return 0
    return min(BASE_BLOCK_SECONDS * 2 ** (failures - FREE_FAILURES), MAX_BLOCK_SECONDS)


def bad_login() -> Unauthorized:
    return Unauthorized("bad_login", "the username, passphrase or code is not right")


def totp_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step `code` belongs to, within one step either side of now, or None."""
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    try:
        totp = pyotp.TOTP(secret, interval=TOTP_INTERVAL)
    except ValueError:  # a secret pyotp refuses (shorter than 112 bits) never matches
        return None
    current = int((time.time() if now is None else now) // TOTP_INTERVAL)
    found = None
    for step in (current - 1, current, current + 1):
        # Compare all three, so timing does not tell which step matched.
        if hmac.compare_digest(totp.at(step * TOTP_INTERVAL), code):
            found = step
    return found


@dataclass(frozen=True)
class Prelogin:
    salt: bytes
    ops: int
    mem: int


def fake_salt(settings: Settings, username: str) -> bytes:
    """A stable salt for a username that has none, so prelogin does not reveal who exists."""
    return secretbox.keyed_hash(settings.secret_key, "fake salt", username.encode("utf-8"))[:16]


async def prelogin(db: Database, settings: Settings, username: str) -> Prelogin:
    async with db.read() as session:
        consultant = await session.get(Consultant, username)
    if consultant is None or consultant.status != "active" or consultant.salt is None:
        return Prelogin(fake_salt(settings, username), settings.kdf_ops, settings.kdf_mem)
    return Prelogin(consultant.salt, consultant.kdf_ops, consultant.kdf_mem)


@dataclass(frozen=True)
class LoginResult:
    token: str
    answer: dict
    device_cookie: str = ""


def _device_mac(settings: Settings, username: str, device_id: bytes) -> bytes:
    return secretbox.keyed_hash(settings.secret_key, "device cookie", username.encode("utf-8") + b"\0" + device_id)


def make_device_cookie(settings: Settings, username: str, device_id: bytes | None = None) -> str:
    """`b64(device id).b64(MAC(username, device id))`: the username itself is not in the cookie."""
    device_id = device_id or secrets.token_bytes(16)
    return f"{b64(device_id)}.{b64(_device_mac(settings, username, device_id))}"


def trusted_device(settings: Settings, username: str, cookie: str | None) -> bytes | None:
    """The device id of a device cookie that is valid for `username`, or None."""
    if not cookie or len(cookie) > 100:
        return None
    device, _, mac = cookie.partition(".")
    try:
        device_id, given = unb64(device, length=16), unb64(mac, length=32)
    except CryptoError:
        return None
    return device_id if hmac.compare_digest(given, _device_mac(settings, username, device_id)) else None


async def grants_of(session: AsyncSession, username: str) -> list[dict]:
    """Every grant the consultant holds for their teams, retired keys included (`current: false`)."""
    rows = await session.execute(
        select(Grant, TeamKey)
        .join(TeamKey, TeamKey.kid == Grant.kid)
        .join(Membership, (Membership.team_id == TeamKey.team_id) & (Membership.username == Grant.username))
        .where(Grant.username == username)
        .order_by(TeamKey.team_id, TeamKey.created, TeamKey.kid)
    )
    return [
        {"team": key.team_id, "kid": key.kid, "box": b64(grant.box), "current": bool(key.current)}
        for grant, key in rows
    ]


async def keys_answer(session: AsyncSession, consultant: Consultant) -> dict:
    """What a browser needs to unlock: its key_blob and the grants to open with it."""
    assert consultant.pk is not None and consultant.key_blob is not None
    return {
        "consultant": {"username": consultant.username, "teams": await teams_of(session, consultant.username)},
        "pk": b64(consultant.pk),
        "key_blob": b64(consultant.key_blob),
        "grants": await grants_of(session, consultant.username),
    }


async def login(
    db: Database, settings: Settings, username: str, auth_key: bytes, code: str, device_cookie: str | None = None
) -> LoginResult:
    """Log in; `device_cookie` is the request's `fristed_device` cookie, if any."""
    device_id = trusted_device(settings, username, device_cookie)
    try:
        return await _login(db, settings, username, auth_key, code, device_id)
    except IntegrityError:
        # Two first failures for the same unknown name at once (PostgreSQL): one counter row wins.
        raise bad_login() from None


async def _login(
    db: Database, settings: Settings, username: str, auth_key: bytes, code: str, device_id: bytes | None
) -> LoginResult:
    now = utcnow()
    failure: ApiError
    async with db.write() as session:
        consultant = await session.scalar(select(Consultant).where(Consultant.username == username).with_for_update())
        if consultant is None or consultant.status != "active" or consultant.auth_hash is None:
            failure = await _fail_unknown(session, settings, username, now)
        else:
            # A trusted device answers to its own counter, never to the account's block.
            bucket = _device_bucket(settings, device_id) if device_id else None
            wait = await _bucket_wait(session, bucket, now) if bucket else _blocked_for(consultant, now)
            if wait:
                failure = RateLimited(wait, "too many failed logins; try again later")
            else:
                step = _verify(settings, consultant, auth_key, code)
                if step is not None:
                    consultant.totp_last_step = step
                    if bucket:
                        await session.execute(delete(RateLimit).where(RateLimit.bucket == bucket))
                    else:
                        consultant.failed_logins = 0
                        consultant.login_blocked_until = None
                    token, csrf = await sessions.create(session, settings, username)
                    audit.record(session, username, "staff.login")
                    answer = {"csrf": csrf, **await keys_answer(session, consultant)}
                    return LoginResult(token, answer, make_device_cookie(settings, username, device_id))
                if bucket:
                    failure = await _fail_bucket(session, bucket, username, now)
                else:
                    failure = _fail_known(session, consultant, now)
    # Outside the transaction: the failure count is committed, then the caller hears about it.
    raise failure


def _verify(settings: Settings, consultant: Consultant, auth_key: bytes, code: str) -> int | None:
    """The TOTP step of a correct login, or None. A step already used is refused (replay)."""
    assert consultant.auth_hash is not None
    key_ok = hmac.compare_digest(blake2b(32, auth_key), consultant.auth_hash)
    step = totp_step(totp_secret_of(settings.secret_key, consultant), code)
    if not key_ok or step is None or step <= consultant.totp_last_step:
        return None
    return step


def _blocked_for(consultant: Consultant, now: dt.datetime) -> int:
    until = consultant.login_blocked_until
    if until is None:
        return 0
    if until <= now - FORGET_AFTER:
        consultant.failed_logins = 0
        consultant.login_blocked_until = None
        return 0
    return max(0, math.ceil((until - now).total_seconds()))


def _fail_known(session: AsyncSession, consultant: Consultant, now: dt.datetime) -> ApiError:
    consultant.failed_logins += 1
    seconds = block_seconds(consultant.failed_logins)
    if seconds:
        consultant.login_blocked_until = now + dt.timedelta(seconds=seconds)
        audit.record(session, consultant.username, "staff.login_blocked", f"failures={consultant.failed_logins} seconds={seconds}")
    return bad_login()


def _device_bucket(settings: Settings, device_id: bytes) -> str:
    return DEVICE_PREFIX + b64(secretbox.keyed_hash(settings.secret_key, "device bucket", device_id))


def _seconds(now: dt.datetime) -> int:
    return int(now.replace(tzinfo=dt.UTC).timestamp())


async def _bucket_wait(session: AsyncSession, bucket: str, now: dt.datetime) -> int:
    """Seconds a counter in `rate_limits` still blocks (0: not blocked)."""
    row = await session.scalar(select(RateLimit).where(RateLimit.bucket == bucket))
    if row is None or _seconds(now) - row.window_start > FORGET_AFTER.total_seconds() + MAX_BLOCK_SECONDS:
        return 0
    return max(0, row.window_start + block_seconds(row.count) - _seconds(now))


async def _fail_unknown(session: AsyncSession, settings: Settings, username: str, now: dt.datetime) -> ApiError:
    """The same schedule as a real account, counted in `rate_limits` (count, time of the last failure)."""
    bucket = BUCKET_PREFIX + b64(secretbox.keyed_hash(settings.secret_key, "login bucket", username.encode("utf-8")))
    return await _fail_bucket(session, bucket, username, now)


async def _fail_bucket(session: AsyncSession, bucket: str, username: str, now: dt.datetime) -> ApiError:
    """Count a failure in `rate_limits` (an unknown name's or a trusted device's counter)."""
    now_s = _seconds(now)
    row = await session.scalar(select(RateLimit).where(RateLimit.bucket == bucket).with_for_update())
    if row is not None and now_s - row.window_start > FORGET_AFTER.total_seconds() + MAX_BLOCK_SECONDS:
        row.count = 0
    if row is not None:
        wait = row.window_start + block_seconds(row.count) - now_s
        if wait > 0:
            return RateLimited(wait, "too many failed logins; try again later")
    if row is None:
        # Forget stale counters now and then, so unknown names and old devices do not pile up.
        horizon = now_s - int(FORGET_AFTER.total_seconds()) - MAX_BLOCK_SECONDS
        await session.execute(
            delete(RateLimit).where(
                RateLimit.bucket.startswith(BUCKET_PREFIX) | RateLimit.bucket.startswith(DEVICE_PREFIX),
                RateLimit.window_start < horizon,
            )
        )
        row = RateLimit(bucket=bucket, window_start=now_s, count=0)
        session.add(row)
    row.count += 1
    row.window_start = now_s
    if block_seconds(row.count):
        audit.record(session, username[:80], "staff.login_blocked", f"failures={row.count} seconds={block_seconds(row.count)}")
    return bad_login()


async def logout(db: Database, username: str, id_hash: bytes) -> None:
    """End the session on the server (the row is deleted) and audit it."""
    async with db.write() as session:
        await session.execute(delete(StaffSession).where(StaffSession.id_hash == id_hash))
        audit.record(session, username, "staff.logout")
