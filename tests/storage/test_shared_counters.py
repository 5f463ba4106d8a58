"""Shared counters (`rate_limits`): exact in the process that adds, visible to the others within
`gateway.counts.FLUSH_SECONDS`, and never counting a write that did not commit. On SQLite a batch
writes its counts itself; on PostgreSQL they are written a moment after COMMIT (no hot row lock)."""

import asyncio
import time

from gateway.counts import FLUSH_SECONDS
from gateway.db import Database, counter
from gateway.errors import Conflict
from gateway.migrate import upgrade
from gateway.writer import Tx


def adding(n: int, fail: bool = False):
    def unit(tx: Tx) -> None:
        tx.count("test-bucket", n, window_start=60)
        if fail:
            raise Conflict("refused", "this write does not commit")

    return unit


async def seen(db: Database) -> int:
    return await db.read_core(lambda conn: counter(conn, "test-bucket"))


async def test_counts_are_exact_here_and_reach_another_process_soon(database_url):
    first, second = Database.connect(database_url), Database.connect(database_url)
    try:
        await upgrade(first)
        outcomes = await asyncio.gather(*(first.transact(adding(1, fail=i % 5 == 0)) for i in range(40)),
                                        return_exceptions=True)
        committed = sum(1 for outcome in outcomes if outcome is None)
        assert committed == 32
        # This process: what is written plus what it has not written yet, at once.
        assert await seen(first) + first.unwritten("test-bucket") == committed
        deadline = time.monotonic() + FLUSH_SECONDS + 2
        while await seen(second) != committed and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert await seen(second) == committed
        assert first.unwritten("test-bucket") == 0
    finally:
        await first.close()
        await second.close()


async def test_counts_not_yet_written_are_written_at_close(database_url):
    db = Database.connect(database_url)
    await upgrade(db)
    await db.transact(adding(7))
    await db.close()
    again = Database.connect(database_url)
    try:
        assert await seen(again) == 7
    finally:
        await again.close()
