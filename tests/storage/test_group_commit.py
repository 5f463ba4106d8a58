"""Group commit (gateway/writer.py): shared transactions, isolated failures, answers after COMMIT."""

import asyncio
import sqlite3

import pytest
from sqlalchemy import insert, select

from gateway.db import Database
from gateway.errors import Conflict
from gateway.migrate import upgrade
from gateway.models import Meta
from gateway.writer import Tx


@pytest.fixture
async def db(tmp_path):
    database = Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    await upgrade(database)
    yield database
    await database.close()


def put(key: str, fail: bool = False):
    def unit(tx: Tx) -> str:
        tx.conn.execute(insert(Meta).values(key=key, value="v"))
        if fail:
            raise Conflict("refused", "this one is refused after writing")
        return key

    return unit


async def test_a_failing_write_is_undone_alone_and_its_neighbours_commit(db, tmp_path):
    outcomes = await asyncio.gather(
        *(db.transact(put(f"k{i}", fail=i % 3 == 1)) for i in range(30)), return_exceptions=True
    )
    failed = [i for i, o in enumerate(outcomes) if isinstance(o, Conflict)]
    assert failed == [i for i in range(30) if i % 3 == 1]
    # Read with a separate plain sqlite3 connection: what is committed is on disk.
    with sqlite3.connect(tmp_path / "g.db") as raw:
        keys = {row[0] for row in raw.execute("SELECT key FROM meta WHERE key LIKE 'k%'")}
    assert keys == {f"k{i}" for i in range(30) if i % 3 != 1}


async def test_concurrent_writes_share_batches(db):
    batches: list[int] = []

    def unit(tx: Tx) -> int:
        # Every unit of one batch sees the same memo: count batches through it.
        memo = tx.remember("batch", lambda: batches.append(0) or len(batches))
        return memo

    seen = await asyncio.gather(*(db.transact(unit) for _ in range(200)))
    assert len(set(seen)) == len(batches) < 200


async def test_an_answer_comes_only_after_the_commit(db, tmp_path):
    def unit(tx: Tx) -> None:
        tx.conn.execute(insert(Meta).values(key="durable", value="yes"))

    await db.transact(unit)
    with sqlite3.connect(tmp_path / "g.db") as raw:
        assert raw.execute("SELECT value FROM meta WHERE key = 'durable'").fetchone() == ("yes",)


async def test_a_unique_violation_inside_a_unit_is_its_own_failure(db):
    await db.transact(put("same"))
    results = await asyncio.gather(db.transact(put("same")), db.transact(put("other")), return_exceptions=True)
    assert results[1] == "other" and isinstance(results[0], Exception)
    value = await db.read_core(lambda conn: conn.scalar(select(Meta.value).where(Meta.key == "other")))
    assert value == "v"


async def test_counters_add_up_across_a_batch(db):
    def unit(tx: Tx) -> None:
        tx.count("test-counter", 2, window_start=60)

    await asyncio.gather(*(db.transact(unit) for _ in range(25)))
    from gateway.db import counter

    assert await db.read_core(lambda conn: counter(conn, "test-counter")) == 50


async def _ticks_while(awaitable) -> tuple[object, int]:
    """Await `awaitable` while counting how often a 10 ms ticker ran on the same event loop."""
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        return await awaitable, ticks
    finally:
        done.set()
        await task


async def test_another_process_holding_the_write_lock_is_waited_for_off_the_event_loop(db, tmp_path):
    await db.transact(put("warm"))  # the writer's connection exists
    other = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO meta (key, value) VALUES ('theirs', 'v')")
    loop = asyncio.get_running_loop()
    loop.call_later(0.4, other.execute, "COMMIT")
    key, ticks = await _ticks_while(db.transact(put("ours")))
    other.close()
    assert key == "ours"
    assert ticks >= 20  # the loop kept serving for the 0.4 s the lock was held
    with sqlite3.connect(tmp_path / "g.db") as raw:
        assert {r[0] for r in raw.execute("SELECT key FROM meta")} >= {"theirs", "ours"}


async def test_a_heavy_unit_runs_off_the_event_loop(db):
    import time

    def slow(tx: Tx) -> str:
        time.sleep(0.3)  # a purge chunk's worth of SQLite work
        tx.conn.execute(insert(Meta).values(key="heavy", value="v"))
        return "done"

    result, ticks = await _ticks_while(db.transact(slow, heavy=True))
    assert result == "done" and ticks >= 15
    assert await db.read_core(lambda conn: conn.scalar(select(Meta.value).where(Meta.key == "heavy"))) == "v"


async def test_every_caller_hears_back_when_the_writer_cannot_open_the_database(tmp_path):
    # A directory that does not exist: SQLite cannot create the file, so nothing can be written.
    broken = Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'g.db'}")
    try:
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(broken.transact(put(f"k{i}")) for i in range(5)), return_exceptions=True), 10)
        assert all(isinstance(outcome, Exception) for outcome in outcomes)
    finally:
        await broken.close()
