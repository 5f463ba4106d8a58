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
