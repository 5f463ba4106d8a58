"""The database: one async engine, short write transactions, SQLite made durable.

SQLite (the embedded default) runs in WAL mode with `synchronous=FULL`, so a
201 means the message survives a power loss, and `secure_delete=ON`, so a
purged row's bytes are overwritten. Write transactions start with
`BEGIN IMMEDIATE` so two writers never deadlock on a lock upgrade; on
PostgreSQL the same code runs with row locks (UPDATE … RETURNING).
"""

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA secure_delete=ON",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url, pool_pre_ping=not is_sqlite(url))
    if is_sqlite(url):
        sync_engine = engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # Let SQLAlchemy, not the driver, decide where transactions begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            immediate = conn.get_execution_options().get("fristed_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@dataclass
class Database:
    """Sessions for reading and for writing; each `async with` is one transaction."""

    engine: AsyncEngine

    def __post_init__(self) -> None:
        self._read = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write = async_sessionmaker(
            self.engine.execution_options(fristed_write=True), expire_on_commit=False
        )

    @classmethod
    def connect(cls, url: str) -> "Database":
        return cls(make_engine(url))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read.begin() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        async with self._write.begin() as session:
            yield session

    async def close(self) -> None:
        await self.engine.dispose()


def utcnow() -> dt.datetime:
    """Now, in naive UTC (what every DateTime column holds)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def minute(moment: dt.datetime) -> dt.datetime:
    """Coarse time: truncated to the minute (PRODUCT.md promise 3)."""
    return moment.replace(second=0, microsecond=0)


def rfc3339_minute(moment: dt.datetime) -> str:
    """`2026-11-22T13:05Z` (INTERFACES.md "Times")."""
    return moment.strftime("%Y-%m-%dT%H:%MZ")
