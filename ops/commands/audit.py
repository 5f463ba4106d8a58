"""`fristed audit [--since YYYY-MM-DD]`: who did what, when; never content, never anything about a citizen."""

import argparse
import datetime as dt

from sqlalchemy import select

from gateway.db import rfc3339_minute
from gateway.logsafe import escape_controls
from gateway.models import AuditEntry
from ops.commands.purge import parse_date
from ops.common import CliError, open_database, print_json, print_table, settings_from


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "audit", parents=[common], help="show the audit log",
        description="Show the audit log, oldest first: time (UTC, to the minute), actor (`operator`, `gateway` "
        "or a consultant's username) and action. Entries expire after audit_retention_days.")
    parser.add_argument("--since", metavar="YYYY-MM-DD", help="only entries from this day on (UTC)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the newest N entries")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(func=run)


async def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if args.since:
        since = parse_date(args.since, "--since")
        query = query.where(AuditEntry.at >= dt.datetime.combine(since, dt.time()))
    if args.limit is not None:
        if args.limit < 1:
            raise CliError("--limit must be at least 1")
        query = query.limit(args.limit)
    async with open_database(settings) as db, db.read() as session:
        entries = list(reversed((await session.scalars(query)).all()))
    rows = [{"at": rfc3339_minute(e.at), "actor": e.actor, "action": e.action, "detail": e.detail} for e in entries]
    if args.json:
        print_json(rows)
    else:
        # Actor and detail can hold what a client sent (a username tried at login): never raw controls on a terminal.
        print_table(("AT", "ACTOR", "ACTION", "DETAIL"),
                    [tuple(escape_controls(v) if isinstance(v, str) else v for v in (r["at"], r["actor"], r["action"], r["detail"]))
                     for r in rows])
    return 0
