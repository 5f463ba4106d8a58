"""Notifications: live events for open inboxes (server-sent events) and content-free e-mail.

Both go through the database, so they work across every gateway process
(PRODUCT.md "Where users outgrow one machine"):

* `EventHub`: one poller per process reads `events` with an id above what it
  has seen and fans each row out to the streams of that team open in this
  process. It reads at once when woken (`poke()`: every successful write
  request of this process pokes it, see `poke_after_writes`; on PostgreSQL the
  poke is also sent to every other process with `NOTIFY`, and each process
  `LISTEN`s), and otherwise every 0.25 s (SQLite, or PostgreSQL while the
  listening connection is down) or every 2 s (PostgreSQL, a safety net). On PostgreSQL ids can commit out of order, so ids
  below the highest one seen are looked for again for `GAP_GRACE` seconds;
  on SQLite ids are never reused (AUTOINCREMENT, migration 0002). Old events
  are deleted by the purge (`gateway.services.purge`).
* `Mailer`: a worker per process claims due `outbox` rows with one
  conditional UPDATE (`claimed_until`), so two processes never send the same
  row; it sends one neutral e-mail per consultant with aiosmtplib and
  retries failures with backoff. At most one e-mail per consultant per
  `smtp.coalesce_minutes` (a hold in `meta`, taken in the claiming transaction). Requests never wait for it. Without an SMTP
  host, or for a consultant without an address, rows are left to the purge.
"""

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib
from aiohttp import web
from sqlalchemy import bindparam, delete, func, or_, select, text, update

from gateway.appkeys import DB, SETTINGS
from gateway.db import Database, is_sqlite, run, utcnow
from gateway.middlewares import SECURITY_HEADERS
from gateway.models import Consultant, Event, Meta, Outbox
from gateway.services import sessions
from gateway.services.sessions import Identity
from gateway.settings import Settings, SmtpSettings

log = logging.getLogger("fristed.notify")

POLL_SECONDS = 0.25
# With LISTEN/NOTIFY working, polling is only a safety net (a NOTIFY lost with a dropped connection).
LISTENING_POLL_SECONDS = 2.0
# Many pokes close together become one read every this often at most.
MIN_POLL_SPACING = 0.005
# Many writes close together become one NOTIFY to the other processes every this often at most.
NOTIFY_SPACING = 0.02
CHANNEL = "fristed_events"
LISTEN_PING_SECONDS = 5.0
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
HOLD_PREFIX = "mail_hold:"
# Serialises claims across processes on PostgreSQL, so a consultant's hold is seen by the next claim.
CLAIM_LOCK = 4207170662


NEWER_EVENTS = (
    select(Event.id, Event.team_id, Event.kind, Event.thread_id)
    .where(Event.id > bindparam("high"))
    .order_by(Event.id)
    .limit(BATCH)
)


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
        self.high = 0  # the highest id read
        self.missing: dict[int, float] = {}  # ids below `high` not read yet -> when first skipped
        self.behind = False  # polls were skipped (no stream here): `join` reads the newest id first
        self.wake = asyncio.Event()  # read now: something was written
        self.outgoing = asyncio.Event()  # tell the other processes (PostgreSQL NOTIFY)
        self.listening = False  # a LISTEN connection is up (PostgreSQL)
        self.own_pid = 0  # its server process id
        self.loop: asyncio.AbstractEventLoop | None = None

    def poke(self) -> None:
        """Something that may have added events has committed: read now, and on PostgreSQL tell the
        other processes. Cheap, idempotent and safe from any thread (e.g. a writer thread after COMMIT)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == getattr(self, "_thread", None):
            self._poke()
        else:
            loop.call_soon_threadsafe(self._poke)

    def _poke(self) -> None:
        self.wake.set()
        self.outgoing.set()

    def heard(self, _connection: object, pid: int, *_args: object) -> None:
        """A NOTIFY (asyncpg listener callback); our own come back too and are ignored (already read)."""
        if pid != self.own_pid:
            self.wake.set()

    async def start(self) -> None:
        async with self.db.read() as session:
            self.high = int(await session.scalar(select(func.max(Event.id))) or 0)

    def subscribe(self, teams: list[str], session_hash: bytes) -> Subscription:
        subscription = Subscription(frozenset(teams), session_hash)
        self.subscriptions.add(subscription)
        return subscription

    async def join(self, teams: list[str], session_hash: bytes) -> Subscription:
        """`subscribe`, first catching up if nobody listened here meanwhile: the polls skipped then
        left `high` behind, and a new stream hears what is written from now on, not from then."""
        if self.behind and not self.subscriptions:
            newest = await self.db.read_core(lambda conn: conn.scalar(select(func.max(Event.id))))
            self.high, self.missing, self.behind = max(self.high, int(newest or 0)), {}, False
        return self.subscribe(teams, session_hash)

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
        """Read the events after `high`, and those of the gaps below it that may still commit.

        On PostgreSQL ids are handed out before COMMIT, so a lower id can become visible after a
        higher one: an id skipped over is looked for again for `GAP_GRACE` seconds. The cost of a
        poll follows the open gaps (few: ids skipped by transactions still in flight, or rolled
        back), not the events of the last seconds; SQLite, with one writer, never leaves one.
        """
        if not self.subscriptions:
            # Nobody listens in this process: reading events would be work for no one (under a
            # write load, a read after every batch). `join` catches up when a stream opens.
            self.behind = True
            return 0
        now = time.monotonic()
        if self.missing:
            self.missing = {i: at for i, at in self.missing.items() if now - at <= GAP_GRACE}
        rows: list[Any]
        high = self.high
        if self.missing:
            condition = or_(Event.id > high, Event.id.in_(list(self.missing)))
            query = select(Event.id, Event.team_id, Event.kind, Event.thread_id).where(condition).order_by(Event.id).limit(BATCH)
            rows = await self.db.read_core(lambda conn: [tuple(row) for row in conn.execute(query)])
        else:
            # Core on the loop's own SQLite reader (`Database.read_core`): this runs after every write
            # batch, so the common case is a statement built once.
            rows = await self.db.read_core(lambda conn: run(conn, NEWER_EVENTS, {"high": high}))
        for event_id, team_id, kind, thread_id in rows:
            if self.missing.pop(event_id, None) is None:
                if event_id <= self.high:
                    continue  # read already
                for skipped in range(max(self.high + 1, event_id - BATCH), event_id):
                    self.missing[skipped] = now
                self.high = event_id
            event = LiveEvent(event_id, team_id, kind, thread_id)
            for subscription in list(self.subscriptions):
                if event.team in subscription.teams:
                    subscription.offer(event)
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        self.loop, self._thread = asyncio.get_running_loop(), threading.get_ident()
        listener = None
        if not is_sqlite(str(self.db.engine.url)):
            listener = asyncio.create_task(self.listen(stop), name="fristed-events-listen")
        started = False
        try:
            while not stop.is_set():
                self.wake.clear()
                try:
                    if not started:
                        await self.start()
                        started = True
                    await self.poll()
                except Exception:
                    log.exception("event poll failed; retrying")
                    await _pause(stop, 2)
                await asyncio.sleep(MIN_POLL_SPACING)
                await _wait_any((stop, self.wake), LISTENING_POLL_SECONDS if self.listening else POLL_SECONDS)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def listen(self, stop: asyncio.Event) -> None:
        """PostgreSQL: LISTEN for other processes' writes and NOTIFY them of ours, on one connection of
        its own (outside the pool). Reconnects after a failure; polling covers the gap meanwhile."""
        import asyncpg  # only needed on PostgreSQL

        engine = self.db.engine
        _args, params = engine.dialect.create_connect_args(engine.url)
        while not stop.is_set():
            connection = None
            try:
                connection = await asyncio.wait_for(asyncpg.connect(**params), 10)
                self.own_pid = connection.get_server_pid()
                await connection.add_listener(CHANNEL, self.heard)
                self.listening = True
                self.wake.set()  # catch up on whatever was written while nobody listened
                while not stop.is_set() and not connection.is_closed():
                    await _wait_any((stop, self.outgoing), LISTEN_PING_SECONDS)
                    if self.outgoing.is_set():
                        self.outgoing.clear()
                        await asyncio.wait_for(connection.execute(f"NOTIFY {CHANNEL}"), 10)
                        # The writes of the next moment share one NOTIFY (and one read by each listener).
                        await _pause(stop, NOTIFY_SPACING)
                    elif not stop.is_set():
                        await asyncio.wait_for(connection.execute("SELECT 1"), 10)  # notice a dead connection
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("event listener lost its connection (%s); polling meanwhile", type(exc).__name__)
            finally:
                self.listening = False
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.close(), 2)
            await _pause(stop, 2)


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
    subscription = await hub.join(teams, me.id_hash)
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
                await _pause(stop, MAIL_POLL_SECONDS)


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


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when the gateway stops."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _wait_any(events: Sequence[asyncio.Event], seconds: float) -> None:
    """Until one of `events` is set, or `seconds` pass."""
    if any(e.is_set() for e in events):
        return
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


HUB = web.AppKey("event_hub", EventHub)
MAILER = web.AppKey("mailer", Mailer)
# The background loops of this process by name, for /healthz (the purge loop is found by its task name).
class Loops(dict[str, "asyncio.Task[None]"]):
    """name → task of each background loop of this process."""


LOOPS = web.AppKey("loops", Loops)


# POSTs that only read (their secrets travel in the body): no event can follow them, so they wake
# nobody. /threads/open is the hot one: a poke after each would make a read after each (issue 9).
READING_POSTS = frozenset({"/api/v1/threads/open", "/api/v1/challenge", "/api/v1/staff/prelogin"})


@web.middleware
async def poke_after_writes(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """A successful write request has committed by the time it is answered: wake this process's
    event reader now (and, on PostgreSQL, the other processes'), instead of at the next poll."""
    if request.method in ("GET", "HEAD", "OPTIONS") or request.path in READING_POSTS:
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # a 303 after a no-script write is a success too
        if exc.status < 400 and HUB in request.app:
            request.app[HUB].poke()
        raise
    if response.status < 400 and HUB in request.app:
        request.app[HUB].poke()
    return response


async def _background(app: web.Application, name: str,
                      loop: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    """Run `loop` until cleanup. It is asked to stop between rounds rather than cancelled,
    so no database call is left in flight when the engine is disposed."""
    stop = asyncio.Event()
    task = asyncio.create_task(loop(stop), name=f"fristed-{name}")
    app[LOOPS][name] = task
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
    async for _ in _background(app, "events", hub.run):
        yield


async def outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    mailer = Mailer(app[DB], app[SETTINGS])
    app[MAILER] = mailer
    async for _ in _background(app, "mailer", mailer.run):
        yield


async def _close_streams(app: web.Application) -> None:
    if HUB in app:
        app[HUB].close_all()


def setup(app: web.Application) -> None:
    """Register the event poller, the outbox worker and stream shutdown (after the database context)."""
    app[LOOPS] = Loops()
    app.middlewares.append(poke_after_writes)
    app.cleanup_ctx.append(events_ctx)
    app.cleanup_ctx.append(outbox_ctx)
    app.on_shutdown.append(_close_streams)
