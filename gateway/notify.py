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
* `Mailer` (`gateway.mail`): the outbox worker, one per process, sending
  one neutral e-mail per consultant; started here with the event poller.
"""

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import bindparam, func, or_, select

from gateway.appkeys import DB, SETTINGS
from gateway.db import Database, is_sqlite, run
from gateway.mail import Mailer, pause, wait_any
from gateway.middlewares import SECURITY_HEADERS
from gateway.models import Event
from gateway.services import sessions
from gateway.services.sessions import Identity

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

STOP_SECONDS = 5.0


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
                    await pause(stop, 2)
                await asyncio.sleep(MIN_POLL_SPACING)
                await wait_any((stop, self.wake), LISTENING_POLL_SECONDS if self.listening else POLL_SECONDS)
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
                    await wait_any((stop, self.outgoing), LISTEN_PING_SECONDS)
                    if self.outgoing.is_set():
                        self.outgoing.clear()
                        await asyncio.wait_for(connection.execute(f"NOTIFY {CHANNEL}"), 10)
                        # The writes of the next moment share one NOTIFY (and one read by each listener).
                        await pause(stop, NOTIFY_SPACING)
                    elif not stop.is_set():
                        await asyncio.wait_for(connection.execute("SELECT 1"), 10)  # notice a dead connection
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("event listener lost its connection (%s); polling meanwhile", type(exc).__name__)
            finally:
                self.listening = False
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.close(), 2)
            await pause(stop, 2)


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
