"""Group commit on SQLite: one writer thread per process, one fsync per batch.

SQLite lets one transaction write at a time, and with `synchronous=FULL`
each COMMIT costs an fsync. Fifteen pooled connections queueing for the
write lock (the old design) spent their time in the busy handler, not on
the disk. Here every hot write of this process is a small synchronous
function `fn(tx)` handed to one thread that owns one connection:

* requests that arrive together share one `BEGIN IMMEDIATE … COMMIT`;
* each runs inside its own SAVEPOINT, so one request's failure (a 409,
  a 400) is rolled back alone and its neighbours still commit;
* each caller is answered only after the batch's COMMIT returned, so a 201
  still means the write survives a power loss (issue 9);
* work that must be read once per batch (team keys, the duty roster)
  is memoised in `Tx.memo` for the length of one batch.

Other processes and the rare non-hot writes (`Database.write()`) still
take SQLite's write lock in the ordinary way; the busy handler covers them.
"""

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

log = logging.getLogger("fristed.writer")

T = TypeVar("T")
MAX_BATCH = 256
# How often an idle writer looks whether a scrub was asked for (seconds).
SCRUB_DELAY = 0.5


@dataclass
class Tx:
    """What a unit of work sees: the connection, a per-batch memo and end-of-batch counters."""

    conn: Connection
    memo: dict[Any, Any] = field(default_factory=dict)
    # Kept across batches by this process's writer (see `lasting`); a fresh dict elsewhere.
    kept: dict[Any, tuple[float, Any]] = field(default_factory=dict)
    # Counters added up over the batch and written once before COMMIT: bucket -> (window_start, n).
    counters: dict[str, tuple[int, int]] = field(default_factory=dict)

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
        """Add `n` to the shared counter `bucket` in `rate_limits` when the batch commits."""
        _start, before = self.counters.get(bucket, (window_start, 0))
        self.counters[bucket] = (window_start, before + n)


Unit = Callable[[Tx], Any]
_STOP = object()


@dataclass
class _Job:
    fn: Unit
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class GroupWriter:
    """The writer thread. `finish(tx)` runs at the end of each batch, before COMMIT."""

    def __init__(self, engine: Engine, finish: Callable[[Tx], None], scrub: Callable[[Connection], None]) -> None:
        self._engine = engine
        self._finish = finish
        self._scrub = scrub
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._scrub_wanted = threading.Event()
        self._kept: dict[Any, tuple[float, Any]] = {}
        self._thread = threading.Thread(target=self._run, name="fristed-writer", daemon=True)
        self._thread.start()

    async def submit(self, fn: Unit) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put(_Job(fn, future, loop))
        return await future

    def scrub_soon(self) -> None:
        self._scrub_wanted.set()
        self._jobs.put(None)  # wake an idle writer

    def stop(self) -> None:
        self._jobs.put(_STOP)
        self._thread.join(timeout=30)
        self._engine.dispose()

    def _run(self) -> None:
        with self._engine.connect() as conn:
            while True:
                try:
                    first = self._jobs.get(timeout=SCRUB_DELAY)
                except queue.Empty:
                    first = None
                if first is _STOP:
                    return
                batch = [first] if isinstance(first, _Job) else []
                stop = self._drain(batch)
                if batch:
                    self._commit(conn, batch)
                if self._scrub_wanted.is_set():
                    self._scrub_wanted.clear()
                    self._run_scrub(conn)
                if stop:
                    return

    def _drain(self, batch: list[_Job]) -> bool:
        while len(batch) < MAX_BATCH:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return False
            if job is _STOP:
                return True
            if isinstance(job, _Job):
                batch.append(job)
        return False

    def _commit(self, conn: Connection, batch: list[_Job]) -> None:
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            with conn.begin():
                tx = Tx(conn, kept=self._kept)
                # Savepoints straight through the driver: SQLAlchemy's bookkeeping for them cost
                # more than the statements they guard.
                raw: Any = conn.connection.driver_connection
                for job in batch:
                    raw.execute("SAVEPOINT unit")
                    try:
                        result = job.fn(tx)
                        raw.execute("RELEASE unit")
                        outcomes.append((job, result, None))
                    except Exception as exc:  # the unit's own failure: undo it alone
                        raw.execute("ROLLBACK TO unit")
                        raw.execute("RELEASE unit")
                        outcomes.append((job, None, exc))
                self._finish(tx)
        except Exception as exc:  # COMMIT (or the batch itself) failed: nothing of it is durable
            log.error("a write batch of %d failed: %s", len(batch), type(exc).__name__)
            outcomes = [(job, None, exc) for job in batch]
        for job, result, error in outcomes:
            job.loop.call_soon_threadsafe(_settle, job.future, result, error)

    def _run_scrub(self, conn: Connection) -> None:
        try:
            self._scrub(conn)
        except Exception as exc:  # a scrub that could not run now is asked for again by the next delete
            log.warning("scrub after delete did not complete: %s", type(exc).__name__)


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
