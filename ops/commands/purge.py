"""`fristed purge [--as-of YYYY-MM-DD] [--dry-run]`: delete expired threads for real, shred unused keys.

Prints counts only. A running gateway also purges by itself every
`[purge] interval_minutes` (docs/operators.md).
"""

import argparse
import datetime as dt
import sys

from gateway.services import purge
from ops.common import CliError, open_database, print_json, settings_from

LABELS = {
    "threads": "threads",
    "messages": "messages",
    "notes": "notes",
    "keys_shredded": "keys shredded",
    "audit_expired": "audit entries expired",
    "events": "events",
    "notifications": "stale notifications",
    "invites": "expired invites",
    "sessions": "idle staff sessions",
    "rate_limits": "rate-limit windows",
}


def parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option} {value!r} is not a date like 2026-11-22") from None


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "purge", parents=[common], help="delete expired threads and shred unused keys",
        description="Delete, for real, every thread whose expiry date lies before --as-of (default: today, UTC): "
        "a thread expiring on D is readable through D. Then delete every retired team key no stored message "
        "uses (with all its grants), expire old audit entries, events, notifications, invites and idle staff "
        "sessions, and compact the database so the deleted bytes are gone. Prints counts only.")
    parser.add_argument("--as-of", metavar="YYYY-MM-DD",
                        help="purge threads as if it were this day (threads only; default today)")
    parser.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.set_defaults(func=run)


async def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    as_of = parse_date(args.as_of, "--as-of") if args.as_of else purge.today()
    async with open_database(settings) as db:
        if args.dry_run:
            counts = await purge.preview(db, settings, as_of)
        else:
            counts = await purge.purge(db, settings, as_of, "operator")
    if args.json:
        print_json({"as_of": as_of.isoformat(), "dry_run": args.dry_run, **counts.as_dict()})
        return 0
    verb = "would delete (dry run, nothing deleted)" if args.dry_run else "deleted"
    lines = [f"purge as of {as_of.isoformat()}: {verb}"]
    lines += [f"{LABELS[name]}: {value}" for name, value in counts.as_dict().items()]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
