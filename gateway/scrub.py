"""Scrubbing: what a delete removed leaves every file of a SQLite deployment within seconds.

Where SQLite keeps the bytes of a deleted row, and what removes them:

* **live cells, free blocks and free pages of the database file**: every
  gateway connection runs `secure_delete=ON` (`gateway.db`), so the deleting
  transaction overwrites the freed cell with zeros, and a page that falls
  onto the freelist is zeroed whole (`fristed check` looks for free pages
  and free blocks that still hold data).
* **the unallocated gap inside b-tree pages**: when SQLite rebalances a
  page it rewrites its cells but leaves the old bytes between the cell
  pointers and the cell content, so a copy of a row that lived there once
  can outlive its deletion, `secure_delete` or not (measured here: 5 to 10
  of 5,000 deleted rows). `VACUUM` rebuilds every page from the live rows
  only; it runs after each delete or purge (a burst of deletes shares one:
  at most one per `VACUUM_MIN_SECONDS` per process, the one put off is owed
  and the `Scrubber` runs it), with `temp_store=MEMORY` so no copy spills into a
  temporary file. Its cost grows with the live data, not with the file
  (about 0.1 s for 13 MB here), and it holds the write lock meanwhile.
* **the write-ahead log (`-wal`)**: the older frames still hold the pages as
  they were until overwritten. `PRAGMA wal_checkpoint(TRUNCATE)` copies the
  newest pages into the database file and cuts the WAL to 0 bytes.
* **the shared-memory index (`-shm`)**: page numbers, frame numbers and
  checksums only, never content.
* **a rollback journal (`-journal`)**: not used in WAL mode; a copy made with
  another journal mode deletes its journal at each commit.

`scrub_sync(conn, vacuum=True)` does the VACUUM and the checkpoint on a
connection the caller owns (the SQLite writer thread's, or a private one).
`Scrubber` runs it off the request path: VACUUM and checkpoint soon after
`soon()`; otherwise, every `SCRUB_SECONDS` (30), a checkpoint alone whenever
another connection committed since the last one (so every UPDATE's old
page images leave the WAL too). A scrub gives up after `WAIT_SECONDS` if
another writer or a reader is in the way; the next round tries again.

What a file system or disk does with truncated blocks is below SQLite:
SECURITY.md asks for an encrypted disk. PostgreSQL has no equivalent:
`gateway.services.purge` runs `VACUUM` there and SECURITY.md says what else
an operator must do.
"""

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

if TYPE_CHECKING:  # `fristed purge` scrubs without the web server: aiohttp only for scrubber_ctx
    from aiohttp import web

log = logging.getLogger("fristed.scrub")

# A checkpoint alone after other commits: rare, so a steady write load hardly notices it.
SCRUB_SECONDS = 30.0
RETRY_SECONDS = 0.25
WAIT_SECONDS = 0.2
VACUUM_WAIT_SECONDS = 2.0
VACUUM_MIN_SECONDS = 1.0
POLL_SECONDS = 0.5  # how often the Scrubber looks whether a VACUUM is owed


class _Ledger:
    """When each database file was last VACUUMed in this process, and which one a VACUUM is owed.

    Process-wide on purpose: the group writer's thread (`gateway.db.scrub_sync`)
    and the `Scrubber` share one file, and a burst of deletes must share one
    VACUUM (at most one per `VACUUM_MIN_SECONDS`); the one put off is owed, and
    the Scrubber pays it within a second.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._owed: set[str] = set()

    def may_vacuum(self, path: str) -> bool:
        with self._lock:
            if time.monotonic() - self._last.get(path, -VACUUM_MIN_SECONDS) < VACUUM_MIN_SECONDS:
                self._owed.add(path)
                return False
            return True

    def owe(self, path: str) -> None:
        with self._lock:
            self._owed.add(path)

    def vacuumed(self, path: str) -> None:
        with self._lock:
            self._last[path] = time.monotonic()
            self._owed.discard(path)

    def owes(self, path: str) -> bool:
        with self._lock:
            return path in self._owed


LEDGER = _Ledger()


def _main_file(raw: sqlite3.Connection) -> str:
    for _seq, name, file in raw.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return os.path.realpath(file) if file else ""
    return ""


@dataclass(frozen=True)
class ScrubResult:
    """Whether the WAL was emptied (`done`), how many frames it held before, whether VACUUM ran."""

    done: bool
    frames: int
    vacuumed: bool = False


def sqlite_connection(conn: Any) -> sqlite3.Connection:
    """The `sqlite3.Connection` under a sync SQLAlchemy `Connection` (pysqlite), or `conn` itself."""
    if isinstance(conn, sqlite3.Connection):
        return conn
    raw = getattr(getattr(conn, "connection", None), "driver_connection", None)
    if isinstance(raw, sqlite3.Connection):
        return raw
    raise TypeError(f"scrub_sync needs a sqlite3 connection or a sync SQLAlchemy one over pysqlite, not {type(conn)!r}")


def scrub_sync(conn: Any, wait: float = WAIT_SECONDS, vacuum: bool = True) -> ScrubResult:
    """VACUUM (unless `vacuum=False`) and empty the WAL (checkpoint TRUNCATE): what a delete needs.

    `conn` must be outside a transaction (neither can run inside one). Waits
    at most `wait` seconds for the write lock and for readers to leave the
    WAL; `done=False` means try again shortly. Its pragmas are restored.
    """
    raw = sqlite_connection(conn)
    if raw.in_transaction:
        raise RuntimeError("scrub_sync runs between transactions, not inside one")
    wal = str(raw.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"
    previous = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
    temp_store = int(raw.execute("PRAGMA temp_store").fetchone()[0])
    vacuumed = False
    path = _main_file(raw)
    vacuum = vacuum and LEDGER.may_vacuum(path)  # else owed: the Scrubber runs it within a second
    try:
        if vacuum:
            raw.execute(f"PRAGMA busy_timeout={max(1, int(wait * 1000))}")
            raw.execute("PRAGMA temp_store=MEMORY")
            try:
                raw.execute("VACUUM")
                vacuumed = True
                LEDGER.vacuumed(path)
            except sqlite3.OperationalError:  # busy (another writer): owed, tried again
                LEDGER.owe(path)
                return ScrubResult(False, -1)
        if not wal:
            return ScrubResult(True, 0, vacuumed)  # no WAL: the transaction itself overwrote the rows
        # A truncating checkpoint holds writers off while it waits for readers: never for long.
        raw.execute(f"PRAGMA busy_timeout={max(1, int(min(wait, WAIT_SECONDS) * 1000))}")
        busy, frames, _copied = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        raw.execute(f"PRAGMA busy_timeout={previous}")
        raw.execute(f"PRAGMA temp_store={temp_store}")
    return ScrubResult(busy == 0, max(0, int(frames)), vacuumed)


def open_private(path: str | Path) -> sqlite3.Connection:
    """A connection of its own for scrubbing, usable from any one thread at a time."""
    # mode=rw: never create a database file that is not there.
    uri = f"{Path(path).absolute().as_uri()}?mode=rw"
    connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=WAIT_SECONDS)
    connection.execute("PRAGMA secure_delete=ON")
    return connection


def scrub_path(path: str | Path, deadline: float = 10.0, vacuum: bool = True) -> bool:
    """Scrub a database file from a private connection, retrying until `deadline` seconds passed."""
    connection = open_private(path)
    try:
        waited = 0.0
        while True:
            result = scrub_sync(connection, VACUUM_WAIT_SECONDS, vacuum=vacuum)
            if result.done:
                return True
            vacuum = vacuum and not result.vacuumed
            if waited >= deadline:
                return False
            # A reader still uses the WAL, or a writer the lock; both let go within milliseconds.
            time.sleep(RETRY_SECONDS)
            waited += RETRY_SECONDS + VACUUM_WAIT_SECONDS
    finally:
        connection.close()


def sqlite_path(database_url: str) -> str | None:
    """The file of a SQLite URL, or None (PostgreSQL, in-memory)."""
    if not database_url.startswith("sqlite"):
        return None
    path = make_url(database_url).database
    return path if path and path != ":memory:" else None


class Scrubber:
    """Scrubs one SQLite file in a worker thread: soon after `soon()`, and whenever it changed."""

    def __init__(self, path: str, interval: float = SCRUB_SECONDS):
        self.path = os.path.realpath(path)
        self.interval = interval
        self._wake = asyncio.Event()
        self._connection: sqlite3.Connection | None = None
        self._seen_version: int | None = None
        self.rounds = 0

    def soon(self) -> None:
        """Ask for a scrub now (a delete just committed)."""
        self._wake.set()

    def _round(self, wanted: bool) -> ScrubResult:
        """One scrub: VACUUM and checkpoint if `wanted`, else a checkpoint if anything changed."""
        if self._connection is None:
            self._connection = open_private(self.path)
        version = int(self._connection.execute("PRAGMA data_version").fetchone()[0])
        wal = Path(f"{self.path}-wal")
        empty = not wal.exists() or wal.stat().st_size == 0
        if not wanted and version == self._seen_version and empty:
            return ScrubResult(True, 0)
        wait = VACUUM_WAIT_SECONDS if wanted else WAIT_SECONDS
        result = scrub_sync(self._connection, wait, vacuum=wanted)
        if result.done:
            self._seen_version = int(self._connection.execute("PRAGMA data_version").fetchone()[0])
            self.rounds += 1
        return result

    async def run(self, stop: asyncio.Event) -> None:
        retry = False
        last_check = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RETRY_SECONDS if retry else POLL_SECONDS)
            if stop.is_set():
                break
            wanted = self._wake.is_set() or LEDGER.owes(self.path)
            self._wake.clear()
            if not (wanted or retry or time.monotonic() - last_check >= self.interval):
                continue
            try:
                result = await asyncio.to_thread(self._round, wanted)
            except sqlite3.Error as exc:
                log.warning("scrubbing the database failed (%s); the next round tries again", exc)
                result = ScrubResult(False, -1)
            if not wanted:
                last_check = time.monotonic()
            retry = not result.done or LEDGER.owes(self.path)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


async def scrubber_ctx(app: "web.Application") -> AsyncIterator[None]:
    """cleanup_ctx: a Scrubber for a SQLite deployment (nothing on PostgreSQL)."""
    from gateway.appkeys import SETTINGS

    path = sqlite_path(app[SETTINGS].database_url)
    if path is None:
        yield
        return
    scrubber = Scrubber(path)
    stop = asyncio.Event()
    task = asyncio.create_task(scrubber.run(stop), name="fristed-scrub")
    yield
    stop.set()
    scrubber.soon()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    scrubber.close()
