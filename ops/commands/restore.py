"""`fristed restore FILE --data-dir DIR [--force]`: a backup into an empty or missing data dir, or over one."""

import argparse
import asyncio
import os
import shutil
import sys
from pathlib import Path

from gateway.db import Database, is_sqlite
from gateway.migrate import current_revision
from gateway.services import audit
from gateway.settings import DATABASE_NAME, load_settings, resolve_data_dir
from ops.backup import (
    CONFIG_FILES,
    PGDUMP_NAME,
    SQLITE_SIDE_FILES,
    Manifest,
    is_occupied,
    read_archive,
    restore_postgres,
    restore_target_url,
    staging,
    swap_in,
)
from ops.common import CliError, open_database


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "restore", parents=[common], help="restore a backup into a data dir",
        description="Restore FILE (made by `fristed backup`) into the data dir. An empty or missing data dir is "
        "filled; an existing deployment is replaced only with --force. Every checksum, the database "
        "(PRAGMA integrity_check or pg_restore --list) and the configuration are verified before anything is "
        "touched, and the old files are put back if any step fails. Stop the gateway first. With "
        "FRISTED_DATABASE_URL set to PostgreSQL the dump is restored into that database in one transaction.")
    parser.add_argument("file", metavar="FILE", help="the backup file")
    parser.add_argument("--force", action="store_true", help="replace the deployment already in the data dir")
    parser.set_defaults(func=run)


async def _postgres_has_schema(url: str) -> bool:
    db = Database.connect(url)
    try:
        return await current_revision(db) is not None
    finally:
        await db.close()


def run(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(getattr(args, "data_dir", None), os.environ)
    archive = Path(args.file).expanduser()
    if not archive.is_file():
        raise CliError(f"{archive} is not a file")
    url = restore_target_url(data_dir, os.environ)
    sqlite = is_sqlite(url)
    if not args.force:
        if is_occupied(data_dir):
            raise CliError(f"{data_dir} is not empty: pass --force to replace that deployment with the backup")
        if not sqlite and asyncio.run(_postgres_has_schema(url)):
            raise CliError("the PostgreSQL database is not empty: pass --force to replace its contents with the backup")
    created = not data_dir.exists()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        manifest = _restore(archive, data_dir, url, sqlite)
    except BaseException:
        if created:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise
    os.chmod(data_dir, 0o700)
    asyncio.run(_record(data_dir, manifest))
    sys.stdout.write(
        f"restored the backup of {manifest.created} ({manifest.database} database, schema {manifest.schema}) "
        f"into {data_dir}\n`fristed serve` upgrades the schema if this version is newer\n"
    )
    return 0


async def _record(data_dir: Path, manifest: Manifest) -> None:
    settings = load_settings(data_dir)
    async with open_database(settings, require_schema=False) as db, db.write() as session:
        audit.record(session, "operator", "restore", f"backup of {manifest.created}")


def _restore(archive: Path, data_dir: Path, url: str, sqlite: bool) -> Manifest:
    with staging(data_dir, ".fristed-restore-") as stage:
        manifest = read_archive(archive, stage, "sqlite" if sqlite else "postgresql")
        env = dict(os.environ)
        load_settings(stage, env)  # the configuration must load before it replaces a working one
        names = [name for name in manifest.files if name != PGDUMP_NAME]
        replaced = CONFIG_FILES + ((DATABASE_NAME, *SQLITE_SIDE_FILES) if sqlite else ())
        swap = swap_in(stage, data_dir, names, replaced)
        try:
            if not sqlite:
                restore_postgres(url, stage / PGDUMP_NAME)
        except BaseException:
            swap.rollback()
            raise
        swap.commit()
    return manifest
