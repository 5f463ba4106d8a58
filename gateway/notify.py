"""Notifications: live events for open inboxes (server-sent events) and content-free e-mail.

Both go through the database, so they work across every gateway process
(PRODUCT.md "Where users outgrow one machine"):

* `EventHub`: one poller per process reads `events` with an id above what it
  has seen (every 0.25 s) and fans each row out to the streams of that team
  open in this process. On PostgreSQL ids can commit out of order, so ids
  below the highest one seen are looked for again for `GAP_GRACE` seconds;
  on SQLite ids are never reused (AUTOINCREMENT, migration 0002). Old events
  are deleted by the purge (`gateway.services.purge`).
* `Mailer`: a worker per process claims due `outbox` rows with one
  conditional UPDATE (`claimed_until`), so two processes never send the same
  row; it sends one neutral e-mail per consultant with aiosmtplib and
  retries failures with backoff. Requests never wait for it. Without an SMTP
  host, or for a consultant without an address, rows are left to the purge.
"""

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib
from aiohttp import web
from sqlalchemy import delete, func, or_, select, update

from gateway.appkeys import DB, SETTINGS
from gateway.db import Database, utcnow
from gateway.middlewares import SECURITY_HEADERS
from gateway.models import Consultant, Event, Outbox
from gateway.services import sessions
from gateway.services.sessions import Identity
from gateway.settings import Settings, SmtpSettings

log = logging.getLogger("fristed.notify")

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
GAP_GRACE = 10.0
BATCH = 500
QUEUE_LIMIT = 1000

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
STOP_SECONDS = 5.0


@dataclass(frozen=True)
class LiveEvent:
    id: int
    team: str
    kind: str
    thread: str


@dataclass(eq=False)
class Subscription:
    """One open event stream: the teams it may hear about and the session it belongs to."""

    teams: frozenset[str]
    session_hash: bytes
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    closed: bool = False

    def offer(self, event: LiveEvent | None) -> None:
        if self.closed:
            return
        if event is None or self.queue.qsize() >= QUEUE_LIMIT:
            # A reader that stopped reading is cut off; its browser reconnects with Last-Event-ID.
            self.closed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


class EventHub:
    """Fans `events` rows out to the open streams of this process."""

    def __init__(self, db: Database):
        self.db = db
        self.subscriptions: set[Subscription] = set()
        self.floor = 0  # every id at or below has been dealt with
        self.high = 0  # the highest id seen
        self.seen: dict[int, float] = {}

    async def start(self) -> None:
        async with self.db.read() as session:
            self.floor = self.high = int(await session.scalar(select(func.max(Event.id))) or 0)

    def subscribe(self, teams: list[str], session_hash: bytes) -> Subscription:
        subscription = Subscription(frozenset(teams), session_hash)
        self.subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)

    def end_session(self, session_hash: bytes) -> None:
        """Logout in this process closes that session's streams at once (others check every few seconds)."""
        for subscription in list(self.subscriptions):
            if subscription.session_hash == session_hash:
                subscription.offer(None)

    def close_all(self) -> None:
        for subscription in list(self.subscriptions):
            subscription.offer(None)

    async def poll(self) -> int:
        now = time.monotonic()
        gaps = [i for i in range(max(self.floor + 1, self.high - BATCH), self.high) if i not in self.seen]
        condition = Event.id > self.high
        if gaps:
            condition = or_(condition, Event.id.in_(gaps))
        async with self.db.read() as session:
            rows = (await session.scalars(select(Event).where(condition).order_by(Event.id).limit(BATCH))).all()
        for row in rows:
            self.seen[row.id] = now
            self.high = max(self.high, row.id)
            event = LiveEvent(row.id, row.team_id, row.kind, row.thread_id)
            for subscription in list(self.subscriptions):
                if event.team in subscription.teams:
                    subscription.offer(event)
        # A gap below an id seen GAP_GRACE ago has been open at least that long: stop looking.
        settled = [i for i, at in self.seen.items() if now - at > GAP_GRACE]
        if settled:
            self.floor = max(self.floor, *settled)
            self.seen = {i: at for i, at in self.seen.items() if i > self.floor}
        if not self.seen and not gaps:
            self.floor = self.high
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        started = False
        while not stop.is_set():
            try:
                if not started:
                    await self.start()
                    started = True
                await self.poll()
            except Exception:
                log.exception("event poll failed; retrying")
                await _pause(stop, 2)
            await _pause(stop, POLL_SECONDS)


async def replay(db: Database, teams: list[str], after: int) -> list[LiveEvent]:
    """Events a reconnecting stream missed (`Last-Event-ID`), for its teams only."""
    async with db.read() as session:
        rows = await session.scalars(
            select(Event).where(Event.id > after, Event.team_id.in_(teams)).order_by(Event.id).limit(BATCH)
        )
        return [LiveEvent(r.id, r.team_id, r.kind, r.thread_id) for r in rows]


async def stream_events(request: web.Request, me: Identity, teams: list[str]) -> web.StreamResponse:
    """The SSE answer for one inbox: `id:`/`event:`/`data: {"thread": id}` per event of `teams`,
    a comment every KEEPALIVE_SECONDS, resumption from Last-Event-ID; it ends with the session."""
    db, settings, hub = request.app[DB], request.app[SETTINGS], request.app[HUB]
    response = web.StreamResponse(headers={**SECURITY_HEADERS, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    subscription = hub.subscribe(teams, me.id_hash)
    sent: set[int] = set()
    try:
        await response.write(b"retry: 3000\n\n")
        last = request.headers.get("Last-Event-ID", "")
        if last.isascii() and last.isdigit() and len(last) < 19:
            for missed in await replay(db, teams, int(last)):
                await _send(response, missed, sent)
        check_at = time.monotonic() + KEEPALIVE_SECONDS
        while not subscription.closed:
            event: LiveEvent | bool | None
            try:
                event = await asyncio.wait_for(subscription.queue.get(), max(0.0, check_at - time.monotonic()))
            except TimeoutError:
                event = False
            if event is None:
                break
            if isinstance(event, LiveEvent):
                await _send(response, event, sent)
            if time.monotonic() >= check_at:
                # Logout in another process, expiry, removal: the stream ends with the session.
                if not await sessions.still_alive(db, settings, me.id_hash):
                    break
                await response.write(b": keep-alive\n\n")
                check_at = time.monotonic() + KEEPALIVE_SECONDS
        await response.write_eof()
    except ConnectionError:
        pass  # the browser went away
    finally:
        hub.unsubscribe(subscription)
    return response


async def _send(response: web.StreamResponse, event: LiveEvent, sent: set[int]) -> None:
    if event.id in sent:
        return
    sent.add(event.id)
    await response.write(f'id: {event.id}\nevent: {event.kind}\ndata: {{"thread": "{event.thread}"}}\n\n'.encode())


def retry_delay(attempts: int) -> int:
    """Seconds before the next try after `attempts` failed ones: 30 s doubling, at most an hour."""
    return min(RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1), RETRY_MAX_SECONDS)


def notification(smtp: SmtpSettings, to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = to
    message["Subject"] = MAIL_SUBJECT
    message["Date"] = formatdate(usegmt=True)
    # The sender's domain, not this machine's name.
    message["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or "localhost")
    message.set_content(MAIL_BODY)
    return message


class Mailer:
    """Delivers the outbox: claim, send, delete; or back off and retry."""

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.smtp = settings.smtp

    async def claim(self) -> list[tuple[int, str, int]]:
        """Due rows, claimed for this process with one conditional UPDATE: (id, username, attempts)."""
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
            candidates = select(Outbox.id).where(free).order_by(Outbox.due, Outbox.id).limit(MAIL_BATCH)
            rows = await session.execute(
                update(Outbox)
                .where(Outbox.id.in_(candidates.scalar_subquery()), free)
                .values(claimed_until=now + dt.timedelta(seconds=CLAIM_SECONDS), attempts=Outbox.attempts + 1)
                .returning(Outbox.id, Outbox.username, Outbox.attempts)
                .execution_options(synchronize_session=False)
            )
            return [(i, u, a) for i, u, a in rows]

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
                        await session.execute(
                            update(Outbox)
                            .where(Outbox.id.in_(ids))
                            .values(due=utcnow() + dt.timedelta(seconds=retry_delay(attempts)), claimed_until=None)
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
                await _pause(stop, MAIL_POLL_SECONDS)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when the gateway stops."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


HUB = web.AppKey("event_hub", EventHub)
MAILER = web.AppKey("mailer", Mailer)


async def _background(loop: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    """Run `loop` until cleanup. It is asked to stop between rounds rather than cancelled,
    so no database call is left in flight when the engine is disposed."""
    stop = asyncio.Event()
    task = asyncio.create_task(loop(stop))
    yield
    stop.set()
    try:
        await asyncio.wait_for(asyncio.shield(task), STOP_SECONDS)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def events_ctx(app: web.Application) -> AsyncIterator[None]:
    hub = EventHub(app[DB])
    app[HUB] = hub
    async for _ in _background(hub.run):
        yield


async def outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    mailer = Mailer(app[DB], app[SETTINGS])
    app[MAILER] = mailer
    async for _ in _background(mailer.run):
        yield


async def _close_streams(app: web.Application) -> None:
    if HUB in app:
        app[HUB].close_all()


def setup(app: web.Application) -> None:
    """Register the event poller, the outbox worker and stream shutdown (after the database context)."""
    app.cleanup_ctx.append(events_ctx)
    app.cleanup_ctx.append(outbox_ctx)
    app.on_shutdown.append(_close_streams)
