"""In-process API tests: the real app over a real SQLite file or PostgreSQL database."""

import pytest

from gateway.app import create_app


@pytest.fixture
async def client(world, aiohttp_client):
    return await aiohttp_client(create_app(world.settings))
