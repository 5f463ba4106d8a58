"""Fixtures for the operator tests: in-process worlds on SQLite and PostgreSQL, a shared data dir."""

from pathlib import Path

import pytest

from tests.factories import make_settings, make_world
from tests.support import Demo, init_demo


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request, tmp_path):
    """A deployment with team `north` (member `alice`) whose keys the test holds, on either database."""
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres").create_database()
    world = await make_world(make_settings(tmp_path, url))
    yield world
    await world.db.close()


@pytest.fixture(scope="module")
def shared_demo(tmp_path_factory) -> Demo:
    """One `fristed init --demo` data dir for a module whose tests only read it or fail before writing."""
    return init_demo(Path(tmp_path_factory.mktemp("shared")) / "data")
