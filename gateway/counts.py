"""Shared counters on PostgreSQL, written a moment after the transactions that add to them.

A shared counter in `rate_limits` (the team's new threads this hour, the
paid writes of a proof-of-work window) is one row that every creation adds
to. On SQLite the group writer adds a whole batch in one upsert. On
PostgreSQL each creation is its own transaction, and an upsert inside it
holds the row's lock until that transaction's COMMIT and fsync: every
creation of the deployment queued behind that one row (issue 9 measured
155 creations/s, with two processes no faster than one).

So on PostgreSQL a transaction hands its counts here once it committed,
and one short transaction per `FLUSH_SECONDS` adds all of them, with
`synchronous_commit = off`: a counter is a limit, not data, and the few
counts a crash could lose only loosen a limit for a moment. Readers in
this process add `unwritten(bucket)`; other processes see the counts at
most `FLUSH_SECONDS` late, which lets a cap be passed by that many
creations at most (SECURITY.md).
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("fristed.counts")

FLUSH_SECONDS = 0.1
# bucket -> (window_start, n), as `Tx.counters`.
Counts = dict[str, tuple[int, int]]


def merge(into: Counts, counts: Counts) -> None:
    for bucket, (window_start, n) in counts.items():
        into[bucket] = (window_start, into.get(bucket, (window_start, 0))[1] + n)


class DeferredCounts:
    def __init__(self, engine: AsyncEngine, write: Callable[[Connection, Counts], None]):
        self._engine = engine
        self._write = write
        self._pending: Counts = {}
        self._in_flight: Counts = {}
        self._flusher: asyncio.Task | None = None

    def add(self, counts: Counts) -> None:
        """Counts of a transaction that committed."""
        if not counts:
            return
        merge(self._pending, counts)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later(), name="fristed-counts")

    def unwritten(self, bucket: str) -> int:
        """What this process added to `bucket` that is not in the database yet."""
        return self._pending.get(bucket, (0, 0))[1] + self._in_flight.get(bucket, (0, 0))[1]

    async def _flush_later(self) -> None:
        await asyncio.sleep(FLUSH_SECONDS)
        await self.flush()

    async def flush(self) -> None:
        while self._pending:
            self._in_flight, self._pending = self._pending, {}
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(text("SET LOCAL synchronous_commit = off"))
                    await conn.run_sync(self._write, self._in_flight)
            except Exception as exc:  # kept for the next round: a limit is loose meanwhile, never lost
                log.warning("shared counters not written yet: %s", type(exc).__name__)
                merge(self._pending, self._in_flight)
                self._in_flight = {}
                await asyncio.sleep(1)
            else:
                self._in_flight = {}

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), 5)
