"""Fixtures shared by every test layer (see tests/support.py for the helpers)."""

import dataclasses
import os
import shutil
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


@pytest.fixture(scope="session")
def _demo_template(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """One real `fristed init --demo` (cheap Argon2id) per run, never served itself."""
    return init_demo(tmp_path_factory.mktemp("demo-template") / "data")


@pytest.fixture
def demo(tmp_path: Path, _demo_template: Demo) -> Demo:
    """A fresh copy of the run's `fristed init --demo` data dir, modes kept.

    Copying saves the command's ~2 s in each of the dozens of tests that only need a
    deployment; the tests about `init` itself run the command (tests/ops).
    """
    data_dir = tmp_path / "data"
    shutil.copytree(_demo_template.data_dir, data_dir)
    return dataclasses.replace(_demo_template, data_dir=data_dir, env=dict(_demo_template.env))


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
