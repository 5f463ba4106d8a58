"""In-process API tests: the real app over a real SQLite file or PostgreSQL database."""

import pytest

from gateway.app import create_app
from tests.factories import make_settings, make_world


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request, tmp_path):
    """A deployment with team `north` (member `alice`) whose keys the test holds."""
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres").create_database()
    world = await make_world(make_settings(tmp_path, url))
    yield world
    await world.db.close()


@pytest.fixture
async def client(world, aiohttp_client):
    return await aiohttp_client(create_app(world.settings))
