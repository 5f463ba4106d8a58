"""Schema migrations with Alembic, driven from async code."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from gateway.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision (idempotent)."""

    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), "head")

    async with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several gateway processes may start at once: one migrates, the others wait.
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4207170661)")
        await conn.run_sync(run)


async def current_revision(db: Database) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(read)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
