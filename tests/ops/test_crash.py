"""A crash loses nothing acknowledged (issue 10, and issue 9's group commit must keep it so).

The real `fristed serve` is killed with SIGKILL again and again in the middle
of concurrent creations and replies through the real API. Afterwards every
thread and message that got a 201 is stored exactly once, the database passes
`PRAGMA integrity_check`, the gateway starts again each time without help, and
a backup taken during the load restores to a consistent database.
"""

import asyncio
import json
import os
import random
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import nacl.utils
from nacl.public import PrivateKey

from crypto import b64, lookup_for, seal_envelope, unb64
from tests.support import FRISTED, LiveServer, free_port, init_demo, run_fristed, set_option

KILLS = 12
KILLS_POSTGRES = 6  # the engine is PostgreSQL's; this checks the gateway's side of it
WORKERS = 8
LOAD_SECONDS = (0.3, 1.2)  # each round: load for a random time in this range, then SIGKILL


@dataclass
class Citizen:
    token: bytes
    pk: bytes
    acked: list[str] = field(default_factory=list)  # the `ct` of every envelope answered 201
    created: bool = False


@dataclass
class Tally:
    citizens: list[Citizen] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0  # connections cut by the kill: outcome unknown, so never counted as acknowledged


async def one_write(http: aiohttp.ClientSession, url: str, team_pk: bytes, tally: Tally, rng: random.Random) -> None:
    open_ones = [c for c in tally.citizens if c.created]
    if open_ones and rng.random() < 0.6:
        citizen = rng.choice(open_ones)
        path, body = "/api/v1/threads/reply", {"access_token": b64(citizen.token)}
    else:
        citizen = Citizen(nacl.utils.random(32), bytes(PrivateKey.generate().public_key))
        tally.citizens.append(citizen)
        path, body = "/api/v1/threads", {"team": "demo", "citizen_pk": b64(citizen.pk), "access_token": b64(citizen.token)}
    envelope = seal_envelope({"text": f"n{len(citizen.acked)}"}, [team_pk, citizen.pk])
    async with http.post(url + path, json={**body, "envelope": envelope}) as answer:
        status = answer.status
        await answer.read()
    tally.statuses[status] = tally.statuses.get(status, 0) + 1
    if status == 201:  # recorded only once the 201 is in hand
        citizen.created = True
        citizen.acked.append(envelope["ct"])


async def load(url: str, team_pk: bytes, tally: Tally, seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds + 5

    async def worker() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            while time.monotonic() < deadline:
                try:
                    await one_write(http, url, team_pk, tally, rng)
                except (TimeoutError, aiohttp.ClientError):
                    tally.failures += 1
                    return  # the server is gone: this round is over

    await asyncio.gather(*(worker() for _ in range(WORKERS)))


def backup_during_load(data_dir: Path, target: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([FRISTED, "backup", str(target), "--data-dir", str(data_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})


def stored(path: Path) -> tuple[dict[bytes, list[str]], list[tuple]]:
    """Each thread's stored envelopes' `ct` by lookup, and the integrity check's answer."""
    db = sqlite3.connect(path)
    try:
        check = db.execute("PRAGMA integrity_check").fetchall()
        threads: dict[bytes, list[str]] = {}
        for lookup, envelope in db.execute(
                "SELECT t.lookup, m.envelope FROM threads t JOIN messages m ON m.thread_id = t.id ORDER BY m.seq"):
            threads.setdefault(bytes(lookup), []).append(json.loads(envelope)["ct"])
        return threads, check
    finally:
        db.close()


async def stored_pg(url: str) -> tuple[dict[bytes, list[str]], list]:
    """The same read on PostgreSQL (its own consistency is the engine's), with threads whose
    `last_seq` promises messages that are not there."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        threads: dict[bytes, list[str]] = {}
        for record in await connection.fetch(
                "SELECT t.lookup, m.envelope FROM threads t JOIN messages m ON m.thread_id = t.id ORDER BY m.seq"):
            threads.setdefault(bytes(record["lookup"]), []).append(json.loads(record["envelope"])["ct"])
        gaps = await connection.fetch("SELECT t.id FROM threads t WHERE t.last_seq != "
                                      "(SELECT count(*) FROM messages m WHERE m.thread_id = t.id)")
        return threads, list(gaps)
    finally:
        await connection.close()


async def kill_again_and_again(tmp_path: Path, kills: int, env: dict[str, str]) -> tuple[Tally, Path, Path]:
    """`kills` rounds of load then SIGKILL, a backup during the middle one; (tally, data dir, backup)."""
    demo = init_demo(tmp_path / "data", env=env)
    # Keep every write at the gateway: no per-client or per-team caps, no proof of work at this pace.
    set_option(demo.data_dir, "rate", "per_client", "false")
    set_option(demo.data_dir, "limits", "max_new_threads_per_team_per_hour", "0")
    set_option(demo.data_dir, "pow", "writes_per_minute", "1000000")
    port = free_port()
    tally = Tally()
    backup = tmp_path / "during-load.tar"
    backup_process = None
    rng = random.Random(1010)
    for round_ in range(kills):
        server = await asyncio.to_thread(LiveServer(demo.data_dir, env, port=port).start)  # starts unaided, every time
        async with aiohttp.ClientSession() as http, http.get(server.url + "/api/v1/config") as answer:
            team_pk = unb64((await answer.json())["teams"][0]["pk"])
        writes = asyncio.create_task(load(server.url, team_pk, tally, LOAD_SECONDS[1], round_))
        if round_ == kills // 2:
            await asyncio.sleep(0.2)
            backup_process = backup_during_load(demo.data_dir, backup, env)
            await asyncio.to_thread(backup_process.wait, 60)
        await asyncio.sleep(rng.uniform(*LOAD_SECONDS))
        assert server.process is not None
        server.process.kill()  # SIGKILL: no shutdown, no checkpoint, mid-transaction
        server.process.wait()
        server.stop()
        await writes

    acknowledged = sum(len(c.acked) for c in tally.citizens)
    assert acknowledged > kills * 5, f"too little load to mean anything: {tally.statuses}"
    assert set(tally.statuses) <= {201}, f"a write was refused rather than cut: {tally.statuses}"
    assert tally.failures >= kills // 2, "the kills did not land mid-write"
    # The gateway starts again without help.
    with LiveServer(demo.data_dir, env, port=port):
        pass
    assert backup_process is not None and backup_process.returncode == 0, backup_process.stderr.read()
    return tally, demo.data_dir, backup


def assert_all_acknowledged(tally: Tally, threads: dict[bytes, list[str]]) -> None:
    for citizen in tally.citizens:
        if not citizen.acked:
            continue
        kept = threads.get(lookup_for(citizen.token))
        assert kept is not None, "an acknowledged thread is gone"
        for ct in citizen.acked:
            assert kept.count(ct) == 1, "an acknowledged message is missing or stored twice"


async def test_sigkill_mid_write_loses_nothing_acknowledged(tmp_path):
    tally, data_dir, backup = await kill_again_and_again(tmp_path, KILLS, {})
    threads, check = stored(data_dir / "fristed.db")
    assert check == [("ok",)]
    assert_all_acknowledged(tally, threads)

    # The backup taken under load restores whole and consistent.
    restored = tmp_path / "restored"
    run_fristed("restore", str(backup), data_dir=restored)
    copy, check = stored(restored / "fristed.db")
    assert check == [("ok",)]
    db = sqlite3.connect(restored / "fristed.db")
    try:
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        gaps = db.execute("SELECT t.id FROM threads t WHERE t.last_seq != (SELECT count(*) FROM messages m "
                          "WHERE m.thread_id = t.id)").fetchall()
    finally:
        db.close()
    assert gaps == [], "a thread in the backup lacks messages its last_seq promises"
    assert copy and all(threads[lookup][: len(cts)] == cts for lookup, cts in copy.items())


async def test_the_same_holds_on_postgresql(tmp_path, postgres):
    url = postgres.create_database()
    tally, _, backup = await kill_again_and_again(tmp_path, KILLS_POSTGRES, {"FRISTED_DATABASE_URL": url})
    threads, gaps = await stored_pg(url)
    assert gaps == []
    assert_all_acknowledged(tally, threads)
    restored_url = postgres.create_database()
    run_fristed("restore", str(backup), data_dir=tmp_path / "restored", env={"FRISTED_DATABASE_URL": restored_url})
    copy, gaps = await stored_pg(restored_url)
    assert gaps == [], "a thread in the backup lacks messages its last_seq promises"
    assert copy and all(threads[lookup][: len(cts)] == cts for lookup, cts in copy.items())
