"""The database: one async engine, short write transactions, SQLite made durable.

SQLite (the embedded default) runs in WAL mode with `synchronous=FULL`, so a
201 means the message survives a power loss, and `secure_delete=ON`, so a
purged row's bytes are overwritten. Write transactions start with
`BEGIN IMMEDIATE` so two writers never deadlock on a lock upgrade; on
PostgreSQL the same code runs with row locks (UPDATE … RETURNING).
"""

import datetime as dt
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Date, DateTime, Engine, bindparam, create_engine, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from gateway.counts import Counts, DeferredCounts
from gateway.models import RateLimit
from gateway.writer import GroupWriter, Tx

T = TypeVar("T")

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA secure_delete=ON",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    # Savepoints (one per unit of the group writer) and triggers keep the pages they may undo in a
    # statement journal: in memory it halves a creation's SQLite time (issue 9), and no temporary
    # file ever holds a copy of a page (issue 10).
    "PRAGMA temp_store=MEMORY",
)


# The event loop's SQLite reader waits at most this long for a lock (a checkpoint in progress).
READER_BUSY_MS = 500


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_events(
    sync_engine: Engine, *, busy_ms: int | None = None, own_begin: bool = False
) -> None:
    @event.listens_for(sync_engine, "connect")
    def _connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        if busy_ms is not None:
            cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.close()

    if own_begin:
        return  # the connection's owner emits BEGIN itself (`GroupWriter`, `Database.read_core`)

    @event.listens_for(sync_engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        immediate = conn.get_execution_options().get("fristed_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# PostgreSQL connections each process keeps open, and how many more a burst may open (closed
# again when handed back). Opening one costs both sides milliseconds (a new backend, the
# driver's type setup), so a pool smaller than the requests in flight opened and closed one per
# request under load. With 16 kept instead of SQLAlchemy's 5, in alternating bench runs at 16
# connections, PostgreSQL's CPU per creation went from 2.1-2.9 to 1.5-1.9 ms and two processes
# from 249-294 to 335-358 creations/s. Three processes use at most 72 of PostgreSQL's default
# `max_connections` of 100 (docs/operators.md).
PG_POOL_SIZE = 16
PG_POOL_OVERFLOW = 8


def make_engine(url: str) -> AsyncEngine:
    # hide_parameters: a failing statement's error (and any log of it) never shows the bound values.
    if is_sqlite(url):
        engine = create_async_engine(url, hide_parameters=True)
        _sqlite_events(engine.sync_engine)
        return engine
    # pool_pre_ping: a connection PostgreSQL dropped (a restart) is replaced before use.
    return create_async_engine(url, pool_pre_ping=True, pool_size=PG_POOL_SIZE, max_overflow=PG_POOL_OVERFLOW,
                               hide_parameters=True)


def make_writer_engine(url: str, *, reader: bool = False) -> Engine:
    """A synchronous engine (stdlib sqlite3) on the same SQLite file: the group writer's, or the
    event loop's reader (`Database.read_core`), whose busy timeout is short."""
    engine = create_engine(
        url.replace("+aiosqlite", "+pysqlite", 1), hide_parameters=True,
        connect_args={"check_same_thread": False},
    )
    _sqlite_events(engine, busy_ms=READER_BUSY_MS if reader else None, own_begin=True)
    return engine


def _insert(conn: Connection, model: Any) -> Any:
    return (sqlite_insert if conn.dialect.name == "sqlite" else pg_insert)(model)


_IGNORING: dict[tuple[str, Any], Any] = {}


def insert_ignore(conn: Connection, model: Any) -> Any:
    """`INSERT … ON CONFLICT DO NOTHING` on either database, built once per dialect and model
    (execute it with parameters)."""
    key = (conn.dialect.name, model)
    statement = _IGNORING.get(key)
    if statement is None:
        statement = _IGNORING[key] = _insert(conn, model).on_conflict_do_nothing()
    return statement


@dataclass(frozen=True)
class _Prepared:
    """A statement compiled once for SQLite: its SQL, its parameters in order, their converters."""

    sql: str
    compiled: Any
    names: tuple[str, ...]
    convert: tuple[Callable[[Any], Any] | None, ...]
    # Every parameter comes from the caller's dict (none is a literal of the statement's own),
    # so `_values` reads them directly instead of through SQLAlchemy's `construct_params`.
    direct: bool


# Keyed by the statement and its parameter names in the caller's order: a tuple of interned names
# hashes faster than a new frozenset per call, and each call site always passes one order.
_PREPARED: dict[tuple[int, tuple[str, ...]], _Prepared | None] = {}


def _prepare(conn: Connection, statement: Any, given: tuple[str, ...]) -> _Prepared | None:
    cache_key = (id(statement), given)
    if cache_key in _PREPARED:
        return _PREPARED[cache_key]
    keys = frozenset(given)
    compiled = statement.compile(dialect=conn.dialect, column_keys=sorted(keys))
    prepared = None
    # Python-side defaults are computed by SQLAlchemy's execution context: leave those statements to it.
    if not (getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None)):
        names = tuple(compiled.positiontup or ())
        processors = compiled._bind_processors
        convert = tuple(_memoised(processors.get(n), compiled.binds[n].type) for n in names)
        direct = all(n in keys for n in names)  # a value given by the caller is used as given
        prepared = _Prepared(compiled.string, compiled, names, convert, direct)
    _PREPARED[cache_key] = prepared
    return prepared


def run(conn: Connection, statement: Any, params: dict[str, Any] | list[dict[str, Any]]) -> list[Any]:
    """Execute a statement built once at import (a module constant) and return its rows as tuples.

    On SQLite (the group writer's connection) it goes straight to the driver with the SQL
    SQLAlchemy compiled once, converting parameters exactly as SQLAlchemy would; this cuts
    the per-statement cost of the hot write path by two thirds (issue 9). Rows come back
    unconverted, so use it for statements whose results are text, numbers or bytes.
    Elsewhere, and for anything it cannot prepare, it is an ordinary `conn.execute`.
    """
    rows: list[dict[str, Any]] = params if isinstance(params, list) else [params]
    if conn.dialect.name == "sqlite" and rows and rows[0]:
        prepared = _prepare(conn, statement, tuple(rows[0]))
        if prepared is not None:
            raw: Any = conn.connection.driver_connection
            try:
                if isinstance(params, list):
                    raw.executemany(prepared.sql, [_values(prepared, p) for p in rows])
                    return []
                return list(raw.execute(prepared.sql, _values(prepared, params)).fetchall())
            except sqlite3.IntegrityError as exc:  # the same exception the ordinary path raises
                raise IntegrityError(prepared.sql, None, exc) from None
    result = conn.execute(statement, params)
    return [tuple(row) for row in result] if result.returns_rows else []


def _memoised(process: Callable[[Any], Any] | None, type_: Any) -> Callable[[Any], Any] | None:
    """SQLite's date and time converters formatted the same minute a few times per request
    (issue 9's profile): one batch mostly shares one `now`, so remember the last few."""
    if process is not None and isinstance(type_, (DateTime, Date)):
        return functools.lru_cache(maxsize=64)(process)
    return process


def _values(prepared: _Prepared, params: dict[str, Any]) -> list[Any]:
    if prepared.direct:
        return [params[n] if f is None else f(params[n]) for n, f in zip(prepared.names, prepared.convert, strict=True)]
    bound = prepared.compiled.construct_params(params)
    return [bound[n] if f is None else f(bound[n]) for n, f in zip(prepared.names, prepared.convert, strict=True)]


_CLAIMING: dict[str, Any] = {}


def claim_once(conn: Connection, bucket: str, until: int) -> bool:
    """Mark `bucket` used until `until` (epoch seconds, a whole minute), atomically across processes
    (the primary key of `rate_limits`); False when it was used before. For one-time tickets and
    proof-of-work challenges, inside the transaction of the write they pay for."""
    name = conn.dialect.name
    if name not in _CLAIMING:
        _CLAIMING[name] = insert_ignore(conn, RateLimit).returning(RateLimit.bucket)
    # ON CONFLICT DO NOTHING RETURNING: a row back means this call made the claim. No savepoint
    # and no error to catch (a savepoint and a raised IntegrityError per paid write cost more
    # than the rest of a creation's statements, issue 9); on PostgreSQL a concurrent claim of the
    # same bucket waits for the other transaction and then finds the row, or claims it itself.
    return bool(run(conn, _CLAIMING[name], {"bucket": bucket, "window_start": until, "count": 1}))


COUNTER = select(RateLimit.count).where(RateLimit.bucket == bindparam("bucket"))
_ADDING: dict[str, Any] = {}


def counter(conn: Connection, bucket: str) -> int:
    """A shared counter in `rate_limits` (0 when absent)."""
    rows = run(conn, COUNTER, {"bucket": bucket})
    return int(rows[0][0]) if rows else 0


def add_counters(conn: Connection, counters: dict[str, tuple[int, int]]) -> None:
    """Add to shared counters in `rate_limits`, one upsert each. `window_start` lets the purge
    forget a counter once its window is long past (0: kept)."""
    name = conn.dialect.name
    if name not in _ADDING:
        statement = _insert(conn, RateLimit)
        _ADDING[name] = statement.on_conflict_do_update(
            index_elements=["bucket"], set_={"count": RateLimit.count + statement.excluded.count}
        )
    for bucket, (window_start, n) in sorted(counters.items()):  # a fixed order: no deadlock on PostgreSQL
        run(conn, _ADDING[name], {"bucket": bucket, "window_start": window_start, "count": n})


def scrub_sync(conn: Connection) -> None:
    """After a delete: VACUUM (rebuilds every page from live rows only, so no stale copy of a
    deleted row survives in a page's unallocated gap) and fold the WAL back and truncate it, so
    the old page images leave the WAL too (issue 10, `gateway.scrub`). Runs on the writer's own
    connection between batches, outside any transaction; a lock held by another writer is
    waited out a few times, then `gateway.scrub.Scrubber`'s next round takes over."""
    from gateway.scrub import scrub_sync as scrub

    vacuum = True
    for _attempt in range(3):
        result = scrub(conn.connection.driver_connection, vacuum=vacuum)
        if result.done:
            return
        vacuum = vacuum and not result.vacuumed


@dataclass
class Database:
    """Sessions for reading and for writing; each `async with` is one transaction."""

    engine: AsyncEngine
    _writer: GroupWriter | None = field(default=None, init=False, repr=False)
    _reader: Connection | None = field(default=None, init=False, repr=False)
    # `Tx.lasting` values of this process on PostgreSQL (the SQLite writer keeps its own).
    _kept: dict[Any, tuple[float, Any]] = field(default_factory=dict, init=False, repr=False)
    # Called after each hot write committed (e.g. to wake this process's event stream at once).
    listeners: list[Callable[[], None]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self._counts = DeferredCounts(self.engine, add_counters)
        self._read = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write = async_sessionmaker(
            self.engine.execution_options(fristed_write=True), expire_on_commit=False
        )

    @property
    def sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def transact(self, fn: Callable[[Tx], T], *, heavy: bool = False) -> T:
        """Run the synchronous unit `fn(tx)` in a durable transaction and return its result.

        On SQLite concurrent units share one transaction and one fsync (group
        commit, `gateway.writer`), each in its own savepoint; on PostgreSQL
        each runs in its own transaction, as concurrent transactions scale there.
        Either way the caller hears back only after COMMIT. `heavy` units (a purge
        chunk) run on the writer's thread rather than the event loop.
        """
        if self.sqlite:
            if self._writer is None:
                self._writer = GroupWriter(make_writer_engine(str(self.engine.url)), _finish, scrub_sync)
            return await self._writer.submit(fn, heavy=heavy)  # type: ignore[no-any-return]

        def run(conn: Connection) -> tuple[T, Counts]:
            tx = Tx(conn, kept=self._kept, unwritten=self.unwritten)
            return fn(tx), tx.counters

        async with self.engine.begin() as conn:
            result, counts = await conn.run_sync(run)
        # Only now, after COMMIT: what a rolled-back transaction counted never counts (`gateway.counts`).
        self._counts.add(counts)
        return result

    def unwritten(self, bucket: str) -> int:
        """This process's additions to the shared counter `bucket` not yet in the database
        (PostgreSQL, `gateway.counts`; always 0 on SQLite, where a batch adds its own)."""
        return 0 if self.sqlite else self._counts.unwritten(bucket)

    def written(self) -> None:
        """Tell this process's listeners that a hot write committed (events may be waiting)."""
        for listener in self.listeners:
            listener()

    def scrub_soon(self) -> None:
        """Ask for the deleted rows' bytes to leave the WAL soon, off the request path (SQLite)."""
        if self.sqlite and self._writer is not None:
            self._writer.scrub_soon()

    async def read_core(self, fn: Callable[[Connection], T]) -> T:
        """Run a short synchronous read `fn(conn)` (SQLAlchemy Core) in one read transaction.

        On SQLite it runs right here on the event loop, on a connection of its
        own: an indexed point read in WAL mode never waits for a writer and
        costs tens of microseconds, far less than the several thread hand-offs
        aiosqlite makes per query (issue 9). Its busy timeout is short, so a
        rare checkpoint cannot hold the loop. On PostgreSQL it goes through
        the async driver as usual.
        """
        if self.sqlite:
            reader = self._reading()
            raw: Any = reader.connection.driver_connection
            # BEGIN and ROLLBACK straight through the driver: SQLAlchemy's transaction bookkeeping
            # cost as much as the two indexed reads of /threads/open.
            raw.execute("BEGIN")
            try:
                return fn(reader)
            finally:
                if reader.in_transaction():  # `fn` used conn.execute: SQLAlchemy's rollback ends ours too
                    reader.rollback()
                else:
                    raw.execute("ROLLBACK")
        async with self.engine.connect() as conn:
            return await conn.run_sync(fn)

    async def read_rows(self, statement: Any, params: dict[str, Any]) -> list[tuple]:
        """One statement built once (a module constant), its rows as tuples: one statement reads
        one snapshot, so on SQLite it needs no transaction of its own (unlike `read_core`)."""
        if self.sqlite:
            reader = self._reading()
            try:
                return run(reader, statement, params)
            finally:
                if reader.in_transaction():  # `run` fell back to conn.execute: end what SQLAlchemy began
                    reader.rollback()
        async with self.engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(statement, params)]

    def _reading(self) -> Connection:
        if self._reader is None:
            self._reader = make_writer_engine(str(self.engine.url), reader=True).connect()
        return self._reader

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
        if self._reader is not None:
            reader, self._reader = self._reader, None
            engine = reader.engine
            reader.close()
            engine.dispose()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.close()
        if not self.sqlite:
            await self._counts.close()
        await self.engine.dispose()


def _finish(tx: Tx) -> None:
    add_counters(tx.conn, tx.counters)


def utcnow() -> dt.datetime:
    """Now, in naive UTC (what every DateTime column holds)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def minute(moment: dt.datetime) -> dt.datetime:
    """Coarse time: truncated to the minute (PRODUCT.md promise 3)."""
    return moment.replace(second=0, microsecond=0)


def rfc3339_minute(moment: dt.datetime) -> str:
    """`2026-11-22T13:05Z` (INTERFACES.md "Times")."""
    return moment.strftime("%Y-%m-%dT%H:%MZ")
