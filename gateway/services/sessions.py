"""Staff sessions: a random cookie value, stored only as a keyed hash (INTERFACES.md "Staff").

A session ends when it has been idle for `session_idle_minutes`, at the
latest `session_max_hours` after login, at logout (the row is deleted), or
when the consultant is removed. The CSRF token of the login answer belongs
to the session and must come back as `X-CSRF-Token` on every state-changing call.
"""

import datetime as dt
import secrets
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crypto import CryptoError, b64, unb64
from gateway import secretbox
from gateway.db import Database, utcnow
from gateway.models import Consultant, StaffSession
from gateway.settings import Settings

COOKIE = "fristed_staff"
# OWASP device cookie (gateway.services.login): only the login call ever sees it.
DEVICE_COOKIE = "fristed_device"
DEVICE_COOKIE_PATH = "/api/v1/staff/login"
DEVICE_COOKIE_DAYS = 180
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
# last_seen is written at most once a minute per session, not on every call.
TOUCH_EVERY = dt.timedelta(seconds=60)
# Automatic refreshes (live inbox updates) send this header and do not count as activity,
# so an unattended inbox still locks after the idle timeout.
BACKGROUND_HEADER = "X-Fristed-Background"


@dataclass(frozen=True)
class Identity:
    """The consultant behind a request's session."""

    username: str
    csrf: str
    id_hash: bytes


def _id_hash(settings: Settings, token: str) -> bytes:
    return secretbox.keyed_hash(settings.secret_key, "staff session", token.encode("ascii"))


def _expired(settings: Settings, now: dt.datetime):  # type: ignore[no-untyped-def]
    return or_(
        StaffSession.last_seen < now - dt.timedelta(minutes=settings.session_idle_minutes),
        StaffSession.created < now - dt.timedelta(hours=settings.session_max_hours),
    )


def alive(settings: Settings, row: StaffSession, now: dt.datetime) -> bool:
    return (
        row.last_seen >= now - dt.timedelta(minutes=settings.session_idle_minutes)
        and row.created >= now - dt.timedelta(hours=settings.session_max_hours)
    )


async def create(session: AsyncSession, settings: Settings, username: str) -> tuple[str, str]:
    """A new session for `username`: (cookie value, csrf token). Expired sessions are swept."""
    now = utcnow()
    await session.execute(delete(StaffSession).where(_expired(settings, now)))
    token = b64(secrets.token_bytes(32))
    csrf = b64(secrets.token_bytes(32))
    session.add(StaffSession(id_hash=_id_hash(settings, token), username=username, csrf=csrf, created=now, last_seen=now))
    return token, csrf


async def authenticate(db: Database, settings: Settings, token: str | None, *, touch: bool = True) -> Identity | None:
    """The live session for a cookie value, or None. `touch` refreshes the idle timer."""
    if not token:
        return None
    try:
        unb64(token, length=32)
    except CryptoError:
        return None
    id_hash = _id_hash(settings, token)
    now = utcnow()
    async with db.read() as session:
        row = (
            await session.execute(
                select(StaffSession, Consultant.status)
                .join(Consultant, Consultant.username == StaffSession.username)
                .where(StaffSession.id_hash == id_hash)
            )
        ).first()
    if row is None:
        return None
    staff_session, status = row
    if status != "active" or not alive(settings, staff_session, now):
        await end(db, id_hash)
        return None
    if touch and now - staff_session.last_seen >= TOUCH_EVERY:
        async with db.write() as session:
            await session.execute(update(StaffSession).where(StaffSession.id_hash == id_hash).values(last_seen=now))
    return Identity(staff_session.username, staff_session.csrf, id_hash)


async def still_alive(db: Database, settings: Settings, id_hash: bytes) -> bool:
    """For long-lived streams: is the session still there and within its limits (no touch)?"""
    async with db.read() as session:
        row = await session.get(StaffSession, id_hash)
        return row is not None and alive(settings, row, utcnow())


async def end(db: Database, id_hash: bytes) -> None:
    async with db.write() as session:
        await session.execute(delete(StaffSession).where(StaffSession.id_hash == id_hash))


def cookie_secure(request: web.Request) -> bool:
    """`Secure` unless the request is plain HTTP to a loopback address (INTERFACES.md)."""
    return not (request.scheme == "http" and (request.url.host or "").strip("[]") in LOOPBACK)


def set_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    # No Max-Age: a browser session cookie; the server enforces the idle and absolute limits.
    response.set_cookie(COOKIE, token, path="/", httponly=True, samesite="Strict", secure=cookie_secure(request))


def set_device_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    """The login's device cookie (`gateway.services.login`): sent back only to the login call."""
    response.set_cookie(DEVICE_COOKIE, value, path=DEVICE_COOKIE_PATH, max_age=DEVICE_COOKIE_DAYS * 86400,
                        httponly=True, samesite="Strict", secure=cookie_secure(request))


def clear_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=cookie_secure(request))
