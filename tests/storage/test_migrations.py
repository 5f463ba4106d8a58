"""Migrations: the newest revision matches the models, on SQLite and PostgreSQL."""

import datetime as dt

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from gateway.migrate import current_revision, head_revision, upgrade
from gateway.models import Base, Team


async def test_the_head_revision_matches_the_models(db):
    await upgrade(db)
    assert await current_revision(db) == head_revision()

    def diff(connection):
        return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_upgrading_twice_keeps_the_data(db):
    await upgrade(db)
    async with db.write() as session:
        session.add(Team(id="north", name="Nord", created=dt.datetime(2026, 11, 22, 13, 5)))
    await upgrade(db)
    async with db.read() as session:
        assert (await session.scalars(select(Team.name))).all() == ["Nord"]
