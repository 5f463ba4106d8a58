"""What every command shares: the data dir, settings, a database session."""

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError

from gateway.db import Database
from gateway.migrate import current_revision, head_revision
from gateway.settings import Settings, load_settings, resolve_data_dir


class CliError(Exception):
    """A failure the operator must see as one line."""


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(resolve_data_dir(getattr(args, "data_dir", None), os.environ))


async def ensure_reachable(db: Database) -> None:
    """Fail with one line naming the database when it cannot be reached."""
    try:
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
    except (OSError, DBAPIError) as exc:
        reason = getattr(exc, "orig", None) or exc
        text = getattr(reason, "strerror", None) or str(reason).splitlines()[0]
        raise CliError(f"cannot connect to the database ({db.engine.url.render_as_string(hide_password=True)}): {text}") from None


@asynccontextmanager
async def open_database(settings: Settings, *, require_schema: bool = True) -> AsyncIterator[Database]:
    db = Database.connect(settings.database_url)
    try:
        await ensure_reachable(db)
        if require_schema and await current_revision(db) != head_revision():
            raise CliError("the database schema is not current: run `fristed serve` once or restore a matching backup")
        yield db
    finally:
        await db.close()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned table for people (`--json` gives scripts the data)."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        sys.stdout.write("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip() + "\n")


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
