"""`fristed backup FILE`: a consistent online backup (database, configuration, secrets) in one 0600 file."""

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.migrate import current_revision
from gateway.services import audit
from ops.backup import check_target, create_backup
from ops.common import open_database, settings_from


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "backup", parents=[common], help="write a consistent backup while the gateway runs",
        description="Write FILE (mode 0600): a consistent copy of the database taken while the gateway keeps "
        "serving (SQLite's online backup API, or pg_dump on PostgreSQL) together with fristed.toml, secret_key "
        "and smtp_password. Messages in it stay end-to-end encrypted, but it holds the server secret: store it "
        "as carefully as the server, and delete old backups on the same retention as threads.")
    parser.add_argument("file", metavar="FILE", help="the backup file to write (a tar archive)")
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    parser.set_defaults(func=run)


async def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    target = check_target(Path(args.file), force=args.force)
    async with open_database(settings) as db:
        schema = await current_revision(db)
        # Recorded first, so the backup holds its own entry too.
        async with db.write() as session:
            audit.record(session, "operator", "backup", "")
    manifest = await asyncio.to_thread(create_backup, settings, target, force=args.force, schema=schema)
    size = target.stat().st_size
    sys.stdout.write(
        f"backup written to {target} ({manifest.database} database, schema {manifest.schema}, {size} bytes)\n"
        "it holds the secret_key: keep it as safe as the server\n"
    )
    return 0
