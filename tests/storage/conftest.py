"""Storage tests run against a real SQLite file and a real PostgreSQL database."""

import pytest

from gateway.db import Database


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'fristed.db'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
async def db(database_url):
    database = Database.connect(database_url)
    yield database
    await database.close()
