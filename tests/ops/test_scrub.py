"""Deleted means gone from every file (issue 10): the database, its WAL, its shared memory.

Real SQLite files, the real delete path, and a search of every byte under the data dir.
"""

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from crypto import lookup_for
from gateway import scrub
from gateway.services import threads
from tests.factories import envelope_for, make_settings, make_world, new_citizen


def files_under(data_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}


def needles_of(thread_id: str, access_token: bytes, citizen_pk: bytes, envelope: dict) -> list[bytes]:
    """What a forensic examiner would look for: the id, lookup, citizen_pk and the ciphertext (as stored)."""
    return [thread_id.encode(), lookup_for(access_token), citizen_pk, envelope["ct"][:64].encode()]


def found(data_dir: Path, needles: list[bytes]) -> list[tuple[str, bytes]]:
    return [(name, needle[:16]) for name, data in files_under(data_dir).items() for needle in needles if needle in data]


@pytest.fixture
async def world(tmp_path):
    world = await make_world(make_settings(tmp_path))
    yield world
    await world.db.close()


async def _write(world, text: str):
    citizen = new_citizen(world)
    _, team_pk, _ = await world.team_key("north")
    envelope = envelope_for(text, team_pk, citizen.pk)
    limits = threads.Limits.of(world.settings)
    created = await threads.create_thread(
        world.db, limits, team_id="north", citizen_pk=citizen.pk, access_token=citizen.access_token,
        parsed=threads.parse(envelope, limits), sealed_by="browser")
    return created.id, citizen, envelope


async def test_a_deleted_thread_leaves_no_byte_in_any_file_within_seconds(world):
    written = [await _write(world, f"message {i} " + "x" * (i * 37 % 900)) for i in range(60)]
    gone, kept = written[::3], written[1::3]
    # The gateway runs a Scrubber beside the writer (gateway.app): it pays the VACUUM a burst put off.
    scrubber = scrub.Scrubber(str(world.settings.data_dir / "fristed.db"))
    stop = asyncio.Event()
    task = asyncio.create_task(scrubber.run(stop))
    try:
        for _, citizen, _ in gone:
            await threads.delete_thread(world.db, citizen.access_token)
        deleted_at = time.monotonic()
        needles = [n for tid, c, env in gone for n in needles_of(tid, c.access_token, c.pk, env)]
        while found(world.settings.data_dir, needles) and time.monotonic() - deleted_at < 10:
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        scrubber.soon()
        await task
        scrubber.close()
    assert found(world.settings.data_dir, needles) == [], "a deleted thread's bytes are still in a file 10 s later"
    # The search can find things: what was not deleted is there.
    everything = b"".join(files_under(world.settings.data_dir).values())
    assert all(tid.encode() in everything and lookup_for(c.access_token) in everything for tid, c, _ in kept)


def test_vacuum_and_the_checkpoint_leave_no_deleted_row_in_the_file(tmp_path):
    """Why `scrub_sync` VACUUMs: SQLite's rebalancing leaves old cells in pages' unallocated gaps."""
    path = tmp_path / "f.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA secure_delete=ON")
    db.execute("PRAGMA synchronous=OFF")  # this test is about bytes, not durability
    db.execute("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT)")
    rows = [(f"ID{i:08d}Z", f"BODY{i:08d}" + "b" * (i * 53 % 700)) for i in range(6000)]
    for start in range(0, len(rows), 50):
        db.executemany("INSERT INTO t VALUES (?, ?)", rows[start : start + 50])
    for start in range(0, len(rows), 100):
        db.executemany("DELETE FROM t WHERE id = ?", [(row_id,) for row_id, _ in rows[start : start + 100 : 2]])
    result = scrub.scrub_sync(db, vacuum=True)
    assert result.done and result.vacuumed
    data = path.read_bytes() + (tmp_path / "f.db-wal").read_bytes()
    assert not [row_id for row_id, _ in rows[::2] if row_id.encode() in data]
    assert all(row_id.encode() in data for row_id, _ in rows[1::2])
    assert (tmp_path / "f.db-wal").stat().st_size == 0
    db.close()


def test_scrub_sync_refuses_to_run_inside_a_transaction(tmp_path):
    db = sqlite3.connect(tmp_path / "f.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("BEGIN IMMEDIATE")
    with pytest.raises(RuntimeError):
        scrub.scrub_sync(db)
    db.execute("ROLLBACK")
    db.close()


async def test_the_scrubber_empties_the_wal_after_any_commit(world):
    path = str(world.settings.data_dir / "fristed.db")
    scrubber = scrub.Scrubber(path, interval=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(scrubber.run(stop))
    try:
        await _write(world, json.dumps({"any": "write"}))
        wal = Path(f"{path}-wal")
        for _ in range(50):
            if wal.exists() and wal.stat().st_size == 0 and scrubber.rounds:
                break
            await asyncio.sleep(0.1)
        assert wal.stat().st_size == 0 and scrubber.rounds >= 1
    finally:
        stop.set()
        scrubber.soon()
        await task
        scrubber.close()
