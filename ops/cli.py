"""`fristed`: the operator's command. Errors are one line on stderr, never a traceback.

Each subcommand lives in `ops/commands/<name>.py` with `register(subparsers, common)`.
"""

import argparse
import asyncio
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Sequence

from sqlalchemy.exc import DBAPIError, OperationalError

from crypto import CryptoError
from gateway.errors import ApiError
from gateway.settings import SettingsError
from ops.common import CliError

COMMANDS = ("init", "serve", "team", "consultant", "duty", "keys", "purge", "backup", "restore", "check", "audit")
PROG = "fristed"


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors in the one-line shape too."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{PROG}: error: {message}\n")
        raise SystemExit(2)


def version() -> str:
    """The installed distribution's version (a source checkout without metadata says so)."""
    try:
        return importlib.metadata.version("fristed")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Install, run and manage a Fristed gateway. Operators manage, never read: "
        "no command can show a message.",
        epilog="Every command takes --data-dir DIR (or FRISTED_DATA_DIR). FRISTED_DATABASE_URL overrides the "
        "database (sqlite+aiosqlite:///… by default, postgresql+asyncpg://… for several gateway processes).",
    )
    # --data-dir is accepted at every level (`fristed --data-dir D team list`,
    # `fristed team list --data-dir D`); SUPPRESS keeps a later level's absent
    # option from overwriting an earlier one.
    common = Parser(add_help=False)
    common.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS,
                        help="the deployment's data directory (default: $FRISTED_DATA_DIR)")
    parser.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"ops.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"ops.commands.{name}":
                raise
            continue
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Everything the command creates (database, WAL, backups) is the owner's alone.
    os.umask(0o077)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except KeyboardInterrupt:
        return 130
    except (CliError, SettingsError) as exc:
        return fail(str(exc))
    except ApiError as exc:
        return fail(exc.message)
    except CryptoError as exc:
        return fail(exc.message)
    except (OperationalError, DBAPIError) as exc:
        return fail(f"database error: {str(exc.orig).splitlines()[0] if exc.orig else exc}")
    except OSError as exc:
        return fail(f"{exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}")
    except Exception as exc:
        if os.environ.get("FRISTED_DEBUG"):
            raise
        return fail(f"unexpected {type(exc).__name__}: {exc} (set FRISTED_DEBUG=1 for details)")


def fail(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {' '.join(message.split())}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
