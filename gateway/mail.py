"""Content-free e-mail: the outbox worker (`Mailer`), one per gateway process.

It claims due `outbox` rows with one conditional UPDATE (`claimed_until`), so
two processes never send the same row; it sends one neutral e-mail per
consultant with aiosmtplib and retries failures with backoff. At most one
e-mail per consultant per `smtp.coalesce_minutes` (a hold in `meta`, taken in
the claiming transaction). Requests never wait for it. Without an SMTP host,
or for a consultant without an address, rows are left to the purge.
"""

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import secrets
import time
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib
from sqlalchemy import delete, or_, select, text, update

from gateway.db import Database, utcnow
from gateway.models import Consultant, Meta, Outbox
from gateway.settings import Settings, SmtpSettings

log = logging.getLogger("fristed.notify")

# The e-mail is the same every time: no content, team, thread id or link
# (a shoulder-surfer learns only that something waits).
MAIL_SUBJECT = "New activity"
MAIL_BODY = "Something is waiting for you in the inbox.\n"
MAIL_POLL_SECONDS = 1.0
MAIL_BATCH = 20
CLAIM_SECONDS = 120
SEND_TIMEOUT = 15
MAX_ATTEMPTS = 12
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 3600
HOLD_PREFIX = "mail_hold:"
# Serialises claims across processes on PostgreSQL, so a consultant's hold is seen by the next claim.
CLAIM_LOCK = 4207170662



def retry_delay(attempts: int) -> int:
    """Seconds before the next try after `attempts` failed ones: 30 s doubling, at most an hour."""
    return min(RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1), RETRY_MAX_SECONDS)


def notification(smtp: SmtpSettings, to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = to
    message["Subject"] = MAIL_SUBJECT
    # The minute only: the mail must not date the citizen's message that caused it (issue 10).
    now = time.time()
    message["Date"] = formatdate(now - now % 60, usegmt=True)
    # The sender's domain, not this machine's name.
    # Random only: make_msgid() would embed the exact time and the process id.
    message["Message-ID"] = f"<{secrets.token_hex(16)}@{smtp.sender.rpartition('@')[2] or 'localhost'}>"
    message.set_content(MAIL_BODY)
    return message


class Mailer:
    """Delivers the outbox: claim, send, delete; or back off and retry."""

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.smtp = settings.smtp

    async def claim(self) -> list[tuple[int, str, int]]:
        """Due rows, claimed for this process with one conditional UPDATE: (id, username, attempts).

        Every due row of a consultant is claimed together (one e-mail tells of all of them), and a
        consultant mailed less than `coalesce_minutes` ago is skipped until the hold ends."""
        if not self.smtp.enabled:
            return []
        now = utcnow()
        # Only rows for someone with an address; the others wait for the purge (a day).
        reachable = select(Consultant.username).where(
            Consultant.status == "active", Consultant.email.is_not(None), Consultant.email != ""
        )
        free = (
            (Outbox.due <= now)
            & or_(Outbox.claimed_until.is_(None), Outbox.claimed_until < now)
            & Outbox.username.in_(reachable.scalar_subquery())
        )
        async with self.db.read() as session:
            if await session.scalar(select(Outbox.id).where(free).limit(1)) is None:
                return []
        async with self.db.write() as session:
            if self.db.engine.dialect.name == "postgresql":
                await session.execute(text(f"SELECT pg_advisory_xact_lock({CLAIM_LOCK})"))
            users = list(await session.scalars(select(Outbox.username).where(free).distinct().limit(MAIL_BATCH)))
            users = await self._take_holds(session, users, now)
            if not users:
                return []
            rows = await session.execute(
                update(Outbox)
                .where(Outbox.username.in_(users), free)
                .values(claimed_until=later(now, CLAIM_SECONDS), attempts=Outbox.attempts + 1)
                .returning(Outbox.id, Outbox.username, Outbox.attempts)
                .execution_options(synchronize_session=False)
            )
            return [(i, u, a) for i, u, a in rows]

    async def _take_holds(self, session: Any, users: list[str], now: dt.datetime) -> list[str]:
        """The users not on hold; each gets a hold until now + coalesce_minutes (same transaction)."""
        minutes = self.smtp.coalesce_minutes
        if not minutes or not users:
            return users
        keys = {hold_key(u): u for u in users}
        held = dict((await session.execute(select(Meta.key, Meta.value).where(Meta.key.in_(keys)))).all())
        free = [u for key, u in keys.items() if held.get(key, "") <= stamp(now)]
        if free:
            until = stamp(later(now, minutes * 60))
            await session.execute(delete(Meta).where(Meta.key.in_([hold_key(u) for u in free])))
            session.add_all([Meta(key=hold_key(u), value=until) for u in free])
        return free

    async def deliver_due(self) -> int:
        claimed = await self.claim()
        if not claimed:
            return 0
        by_user: dict[str, list[tuple[int, int]]] = {}
        for row_id, username, attempts in claimed:
            by_user.setdefault(username, []).append((row_id, attempts))
        async with self.db.read() as session:
            rows = await session.execute(
                select(Consultant.username, Consultant.email).where(Consultant.username.in_(by_user), Consultant.status == "active")
            )
            emails = {username: email for username, email in rows}
        await asyncio.gather(*(self._deliver(username, rows, emails.get(username)) for username, rows in by_user.items()))
        return len(claimed)

    async def _deliver(self, username: str, rows: list[tuple[int, int]], email: str | None) -> None:
        ids = [row_id for row_id, _ in rows]
        if email:
            try:
                await aiosmtplib.send(
                    notification(self.smtp, email),
                    hostname=self.smtp.host,
                    port=self.smtp.port,
                    username=self.smtp.username or None,
                    password=self.smtp.password or None,
                    use_tls=self.smtp.tls,
                    start_tls=self.smtp.starttls,
                    timeout=SEND_TIMEOUT,
                )
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                attempts = max(a for _, a in rows)
                if attempts < MAX_ATTEMPTS:
                    log.warning("notification e-mail failed (%s); retrying in %ss", type(exc).__name__, retry_delay(attempts))
                    async with self.db.write() as session:
                        # Nothing was sent: the retry follows the backoff, not the hold.
                        await session.execute(delete(Meta).where(Meta.key == hold_key(username)))
                        await session.execute(
                            update(Outbox)
                            .where(Outbox.id.in_(ids))
                            .values(due=later(utcnow(), retry_delay(attempts)), claimed_until=None)
                            .execution_options(synchronize_session=False)
                        )
                    return
                log.error("notification e-mail failed %s times; giving up on it", attempts)
        async with self.db.write() as session:
            await session.execute(delete(Outbox).where(Outbox.id.in_(ids)).execution_options(synchronize_session=False))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sent = await self.deliver_due()
            except Exception:
                log.exception("outbox delivery failed; retrying")
                sent = 0
            if not sent:
                await pause(stop, MAIL_POLL_SECONDS)


def hold_key(username: str) -> str:
    """The `meta` key of a consultant's e-mail hold (hashed: fits the 64-character key for any username)."""
    return HOLD_PREFIX + hashlib.blake2b(username.encode(), digest_size=16).hexdigest()


def stamp(moment: dt.datetime) -> str:
    """A fixed-width UTC time that sorts as text, to the minute."""
    return moment.strftime("%Y-%m-%dT%H:%M")


def later(moment: dt.datetime, seconds: float) -> dt.datetime:
    """`seconds` after `moment`, rounded up to a whole minute: a time stored because a citizen wrote
    must not date that message finer than a minute (PRODUCT.md promise 3, issue 10)."""
    end = moment + dt.timedelta(seconds=seconds)
    whole = end.replace(second=0, microsecond=0)
    return whole if whole == end else whole + dt.timedelta(minutes=1)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when the gateway stops."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def wait_any(events: Sequence[asyncio.Event], seconds: float) -> None:
    """Until one of `events` is set, or `seconds` pass."""
    if any(e.is_set() for e in events):
        return
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
