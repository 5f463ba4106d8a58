"""Group commit on SQLite: one writer connection per process, one fsync per batch.

SQLite lets one transaction write at a time, and with `synchronous=FULL`
each COMMIT costs an fsync. Fifteen pooled connections queueing for the
write lock (the old design) spent their time in the busy handler, not on
the disk. Here every hot write of this process is a small synchronous
function `fn(tx)` handed to one writer that owns one connection:

* requests that arrive together share one `BEGIN IMMEDIATE … COMMIT`;
* each runs inside its own SAVEPOINT, so one request's failure (a 409,
  a 400) is rolled back alone and its neighbours still commit;
* each caller is answered only after the batch's COMMIT returned, so a 201
  still means the write survives a power loss (issue 9);
* work that must be read once per batch (team keys, the duty roster)
  is memoised in `Tx.memo` for the length of one batch.

Where the work runs (`GroupWriter`): a batch's statements on the event loop,
its COMMIT and anything that may wait on the writer's one thread. Other
processes and the rare non-hot writes (`Database.write()`) still take
SQLite's write lock in the ordinary way; the busy handler covers them.
"""

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from gateway.counts import merge

log = logging.getLogger("fristed.writer")

T = TypeVar("T")
# At most this many units share a transaction: a batch's statements hold the event loop meanwhile.
MAX_BATCH = 128


@dataclass
class Tx:
    """What a unit of work sees: the connection, a per-batch memo and end-of-batch counters."""

    conn: Connection
    memo: dict[Any, Any] = field(default_factory=dict)
    # Kept across batches by this process's writer (see `lasting`); a fresh dict elsewhere.
    kept: dict[Any, tuple[float, Any]] = field(default_factory=dict)
    # Counters added up over the batch and written once before COMMIT: bucket -> (window_start, n)
    # (on PostgreSQL a moment after COMMIT, `gateway.counts`).
    counters: dict[str, tuple[int, int]] = field(default_factory=dict)
    # What this process added to a shared counter that is not in the database yet (PostgreSQL).
    unwritten: Callable[[str], int] = field(default=lambda _bucket: 0)

    def remember(self, key: Any, load: Callable[[], T]) -> T:
        """`load()` once per batch for `key` (team keys, duty rosters)."""
        if key not in self.memo:
            self.memo[key] = load()
        return self.memo[key]  # type: ignore[no-any-return]

    def lasting(self, key: Any, seconds: float, load: Callable[[], T]) -> T:
        """`load()` at most once per `seconds` for `key`, across this writer's batches: for values
        that may be slightly stale but must not be read per request (the on-duty load)."""
        now = time.monotonic()
        found = self.kept.get(key)
        if found is None or now - found[0] > seconds:
            found = self.kept[key] = (now, load())
        return found[1]  # type: ignore[no-any-return]

    def count(self, bucket: str, n: int = 1, window_start: int = 0) -> None:
        """Add `n` to the shared counter `bucket` in `rate_limits` when the batch commits (a unit
        that fails takes its counts back with its savepoint)."""
        merge(self.counters, {bucket: (window_start, n)})

    def counted(self, bucket: str) -> int:
        """What this batch's units added to `bucket` so far (not in the database yet)."""
        return self.counters.get(bucket, (0, 0))[1]


Unit = Callable[[Tx], Any]

# How long BEGIN IMMEDIATE may wait for another process's write lock (off the event loop).
LOCK_WAIT_MS = 10000


@dataclass
class _Job:
    fn: Unit
    future: asyncio.Future
    heavy: bool


class GroupWriter:
    """This process's SQLite writer. `finish(tx)` runs at the end of each batch, before COMMIT.

    The statements of a batch of light units run on the event loop itself; only
    what waits runs on the writer's one thread: COMMIT (the fsync), taking the
    write lock when another process holds it, heavy units (purge chunks) and the
    scrub. A unit is a few indexed INSERTs (tens of microseconds of SQLite), so
    running it where the request already is costs less than handing it to a
    thread: two threads taking turns at the GIL once per statement cost more
    than the statements (issue 9, `docs/write-path.md`).
    """

    def __init__(self, engine: Engine, finish: Callable[[Tx], None], scrub: Callable[[Connection], None]) -> None:
        self._engine = engine
        self._finish = finish
        self._scrub = scrub
        self._conn: Connection | None = None
        self._pending: deque[_Job] = deque()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="fristed-writer")
        self._kept: dict[Any, tuple[float, Any]] = {}
        self._scrub_wanted = False
        self._drainer: asyncio.Task | None = None

    async def submit(self, fn: Unit, *, heavy: bool = False) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Job(fn, future, heavy))
        self._wake()
        return await future

    def scrub_soon(self) -> None:
        self._scrub_wanted = True
        with contextlib.suppress(RuntimeError):  # no running loop: the next write scrubs
            self._wake()

    def _wake(self) -> None:
        loop = asyncio.get_running_loop()
        # A drainer of a loop that is gone (a test's) will never run again: start one here.
        if self._drainer is None or self._drainer.done() or self._drainer.get_loop() is not loop:
            self._drainer = loop.create_task(self._drain(), name="fristed-writer")

    async def close(self) -> None:
        if self._drainer is not None and not self._drainer.done():
            await asyncio.wait([self._drainer])
        if self._conn is not None:
            await self._off_loop(self._conn.close)
        self._executor.shutdown(wait=True)
        self._engine.dispose()

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _drain(self) -> None:
        while self._pending or self._scrub_wanted:
            if self._conn is None:
                try:
                    self._conn = await self._off_loop(self._connect)
                except Exception as exc:  # no connection (the file is gone, a disk error): tell every caller
                    log.error("the writer cannot connect: %s", type(exc).__name__)
                    while self._pending:
                        _settle(self._pending.popleft().future, None, exc)
                    return
            if self._pending:
                batch = [self._pending.popleft() for _ in range(min(MAX_BATCH, len(self._pending)))]
                await self._commit(self._conn, batch)
            if self._scrub_wanted:  # after each batch, so a steady load cannot put it off
                self._scrub_wanted = False
                await self._off_loop(self._run_scrub, self._conn)

    def _connect(self) -> Connection:
        conn = self._engine.connect()
        # Never wait for a lock on the event loop: BEGIN IMMEDIATE fails at once instead, and waits
        # on the writer's thread (`_lock_blocking`).
        raw: Any = conn.connection.driver_connection
        raw.execute("PRAGMA busy_timeout=0")
        return conn

    async def _commit(self, conn: Connection, batch: list[_Job]) -> None:
        raw: Any = conn.connection.driver_connection
        heavy = any(job.heavy for job in batch)
        transaction = None
        try:
            if heavy or not _lock_now(raw):
                await self._off_loop(_lock_blocking, raw)
            # The write lock is held; SQLAlchemy's transaction is bookkeeping only (the writer
            # engine emits no BEGIN of its own).
            transaction = conn.begin()
            tx = Tx(conn, kept=self._kept)
            if heavy:
                outcomes = await self._off_loop(self._run_units, tx, raw, batch)
            else:
                outcomes = self._run_units(tx, raw, batch)
            await self._off_loop(transaction.commit)
        except Exception as exc:  # no lock within LOCK_WAIT_MS, or COMMIT failed: nothing of it is durable
            log.error("a write batch of %d failed: %s", len(batch), type(exc).__name__)
            await self._off_loop(_abandon, raw, transaction)
            outcomes = [(job, None, exc) for job in batch]
        for job, result, error in outcomes:
            _settle(job.future, result, error)

    def _run_units(self, tx: Tx, raw: Any, batch: list[_Job]) -> list[tuple[_Job, Any, BaseException | None]]:
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        # Savepoints straight through the driver: SQLAlchemy's bookkeeping for them cost more
        # than the statements they guard.
        for job in batch:
            raw.execute("SAVEPOINT unit")
            counted = dict(tx.counters)
            try:
                result = job.fn(tx)
                raw.execute("RELEASE unit")
                outcomes.append((job, result, None))
            except Exception as exc:  # the unit's own failure: undo it alone, its counts too
                raw.execute("ROLLBACK TO unit")
                raw.execute("RELEASE unit")
                tx.counters = counted
                outcomes.append((job, None, exc))
        self._finish(tx)
        return outcomes

    def _run_scrub(self, conn: Connection) -> None:
        try:
            self._scrub(conn)
        except Exception as exc:  # a scrub that could not run now is asked for again by the next delete
            log.warning("scrub after delete did not complete: %s", type(exc).__name__)


def _lock_now(raw: Any) -> bool:
    """BEGIN IMMEDIATE without waiting (busy_timeout is 0 on this connection): False if another
    process holds the write lock."""
    try:
        raw.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return False
    return True


def _lock_blocking(raw: Any) -> None:
    """BEGIN IMMEDIATE, waiting up to LOCK_WAIT_MS for another process's write lock (writer thread)."""
    raw.execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")
    try:
        raw.execute("BEGIN IMMEDIATE")
    finally:
        raw.execute("PRAGMA busy_timeout=0")


def _abandon(raw: Any, transaction: Any) -> None:
    """Undo a batch that failed, whatever state it left: the next batch starts clean."""
    with contextlib.suppress(Exception):
        if transaction is not None and transaction.is_active:
            transaction.rollback()
    with contextlib.suppress(Exception):
        if raw.in_transaction:
            raw.execute("ROLLBACK")


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
