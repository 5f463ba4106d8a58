"""Scrubbing: what a delete removed leaves every file of a SQLite deployment within seconds.

Where SQLite keeps the bytes of a deleted row, and what removes them:

* **the database file**: every gateway connection runs `secure_delete=ON`
  (`gateway.db`), so the deleting transaction itself overwrites the freed
  cells with zeros, and every page that falls onto the freelist is zeroed
  whole. Nothing waits for a VACUUM (`fristed check` looks for free pages
  that still hold data).
* **the write-ahead log (`-wal`)**: the deleting transaction appends the
  zeroed pages, but the older frames still hold the row as it was until they
  are overwritten. `PRAGMA wal_checkpoint(TRUNCATE)` copies the newest pages
  into the database file and cuts the WAL to 0 bytes.
* **the shared-memory index (`-shm`)**: page numbers, frame numbers and
  checksums only, never content.
* **a rollback journal (`-journal`)**: not used in WAL mode; a copy made with
  another journal mode deletes its journal at each commit.
* **free pages at the end of the file**: with `auto_vacuum=INCREMENTAL`
  `PRAGMA incremental_vacuum` hands them back to the file system; the
  default (`auto_vacuum=NONE`) keeps them in the file, zeroed.

`scrub_sync(conn)` does the WAL and vacuum part on a connection the caller
owns (the SQLite writer thread's, or a private one). `Scrubber` runs it off
the request path: soon after `soon()`, and otherwise every `SCRUB_SECONDS`
whenever another connection committed since the last scrub, so a delete from
any path (citizen, consultant, purge) is gone from every file within a few
seconds without its caller doing anything. A checkpoint holds the write lock
only while it copies (milliseconds) and gives up after `WAIT_SECONDS` if a
reader pins the WAL; the next round tries again.

What a file system or disk does with truncated blocks is below SQLite:
SECURITY.md asks for an encrypted disk. PostgreSQL has no equivalent:
`gateway.services.purge` runs `VACUUM` there and SECURITY.md says what else
an operator must do.
"""

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy.engine import make_url

log = logging.getLogger("fristed.scrub")

SCRUB_SECONDS = 2.0
RETRY_SECONDS = 0.25
WAIT_SECONDS = 0.2


@dataclass(frozen=True)
class ScrubResult:
    """Whether the WAL was emptied (`done`), and how many frames it held before."""

    done: bool
    frames: int


def sqlite_connection(conn: Any) -> sqlite3.Connection:
    """The `sqlite3.Connection` under a sync SQLAlchemy `Connection` (pysqlite), or `conn` itself."""
    if isinstance(conn, sqlite3.Connection):
        return conn
    raw = getattr(getattr(conn, "connection", None), "driver_connection", None)
    if isinstance(raw, sqlite3.Connection):
        return raw
    raise TypeError(f"scrub_sync needs a sqlite3 connection or a sync SQLAlchemy one over pysqlite, not {type(conn)!r}")


def scrub_sync(conn: Any, wait: float = WAIT_SECONDS) -> ScrubResult:
    """Empty the WAL (checkpoint TRUNCATE) and hand back free pages if the file vacuums incrementally.

    `conn` must be outside a transaction (a checkpoint cannot run inside one).
    Waits at most `wait` seconds for the write lock and for readers to leave
    the WAL; `done=False` means try again shortly. Its busy timeout is restored.
    """
    raw = sqlite_connection(conn)
    if raw.in_transaction:
        raise RuntimeError("scrub_sync runs between transactions, not inside one")
    if str(raw.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        return ScrubResult(True, 0)  # no WAL: the deleting transaction has already overwritten the rows
    previous = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
    raw.execute(f"PRAGMA busy_timeout={max(1, int(wait * 1000))}")
    try:
        if int(raw.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2:
            with contextlib.suppress(sqlite3.OperationalError):  # busy: the next round does it
                raw.execute("PRAGMA incremental_vacuum").fetchall()
        busy, frames, _copied = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        raw.execute(f"PRAGMA busy_timeout={previous}")
    return ScrubResult(busy == 0, max(0, int(frames)))


def open_private(path: str | Path) -> sqlite3.Connection:
    """A connection of its own for scrubbing, usable from any one thread at a time."""
    # mode=rw: never create a database file that is not there.
    uri = f"{Path(path).absolute().as_uri()}?mode=rw"
    connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=WAIT_SECONDS)
    connection.execute("PRAGMA secure_delete=ON")
    return connection


def scrub_path(path: str | Path, deadline: float = 10.0) -> bool:
    """Scrub a database file from a private connection, retrying until `deadline` seconds passed."""
    connection = open_private(path)
    try:
        waited = 0.0
        while True:
            if scrub_sync(connection).done:
                return True
            if waited >= deadline:
                return False
            # A reader still uses the WAL; it lets go within milliseconds.
            time.sleep(RETRY_SECONDS)
            waited += RETRY_SECONDS + WAIT_SECONDS
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
        self.path = path
        self.interval = interval
        self._wake = asyncio.Event()
        self._connection: sqlite3.Connection | None = None
        self._seen_version: int | None = None
        self.rounds = 0

    def soon(self) -> None:
        """Ask for a scrub now (a delete just committed)."""
        self._wake.set()

    def _round(self, forced: bool) -> bool:
        """One scrub if anything changed since the last complete one; False if it must be retried."""
        if self._connection is None:
            self._connection = open_private(self.path)
        version = int(self._connection.execute("PRAGMA data_version").fetchone()[0])
        wal = Path(f"{self.path}-wal")
        empty = not wal.exists() or wal.stat().st_size == 0
        if not forced and version == self._seen_version and empty:
            return True
        result = scrub_sync(self._connection)
        if result.done:
            self._seen_version = version
            self.rounds += 1
        return result.done

    async def run(self, stop: asyncio.Event) -> None:
        pending = False
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RETRY_SECONDS if pending else self.interval)
            forced = self._wake.is_set() or pending
            self._wake.clear()
            if stop.is_set():
                break
            try:
                pending = not await asyncio.to_thread(self._round, forced)
            except sqlite3.Error as exc:
                log.warning("scrubbing the database failed (%s); the next round tries again", exc)
                pending = True

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


SCRUBBER = web.AppKey("scrubber", Scrubber)


async def scrubber_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: a Scrubber for a SQLite deployment (nothing on PostgreSQL)."""
    from gateway.appkeys import SETTINGS

    path = sqlite_path(app[SETTINGS].database_url)
    if path is None:
        yield
        return
    scrubber = Scrubber(path)
    app[SCRUBBER] = scrubber
    stop = asyncio.Event()
    task = asyncio.create_task(scrubber.run(stop), name="fristed-scrub")
    yield
    stop.set()
    scrubber.soon()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    scrubber.close()


def scrub_soon(app: web.Application) -> None:
    """Ask the app's scrubber for a scrub now, if it has one (SQLite)."""
    if SCRUBBER in app:
        app[SCRUBBER].soon()
