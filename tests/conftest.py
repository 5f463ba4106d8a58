"""Fixtures shared by every test layer (see tests/support.py for the helpers)."""

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.factories import make_settings, make_world
from tests.support import Demo, LiveServer, PostgresServer, SmtpInbox, free_port, init_demo


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole run; each test takes a fresh database."""
    base = Path(tempfile.mkdtemp(prefix="fristed-pg-"))
    server = PostgresServer(base).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request, tmp_path):
    """A deployment with team `north` (member `alice`) whose keys the test holds, on either database."""
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres").create_database()
    world = await make_world(make_settings(tmp_path, url))
    yield world
    await world.db.close()


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, SmtpInbox]]:
    """A real SMTP server (aiosmtpd) on a free loopback port and what it received."""
    inbox = SmtpInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


@pytest.fixture
def demo(tmp_path: Path) -> Demo:
    """A data dir made by the real `fristed init --demo` (cheap Argon2id)."""
    return init_demo(tmp_path / "data")


@pytest.fixture
def live_server(demo: Demo) -> Iterator[LiveServer]:
    """The real `fristed serve` on the demo data dir, on a free loopback port."""
    with LiveServer(demo.data_dir, demo.env) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_data_dir_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRISTED_DATA_DIR", raising=False)
    monkeypatch.delenv("FRISTED_DATABASE_URL", raising=False)
    assert "FRISTED_DEBUG" not in os.environ
