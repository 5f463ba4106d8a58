"""`fristed serve`: run the gateway."""

import argparse
import asyncio
import logging
import os
import sys

from gateway.db import Database
from gateway.migrate import upgrade
from gateway.services.meta import record_kdf
from ops.common import CliError, ensure_reachable, settings_from


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("serve", parents=[common], help="run the gateway",
                            description="Run the gateway (upgrading the database schema first if needed). "
                            "Logs method, path and status only: never a client address or header.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: every `fristed` command builds its parser from all
    # command modules, and the web server (aiohttp) would add ~0.3 s to each of them.
    from gateway import logsafe, server
    from gateway.app import AccessLogger, create_app
    from gateway.health import static_problem

    settings = settings_from(args)
    if not 0 <= args.port <= 65535:
        raise CliError("--port must be 0-65535")
    problem = static_problem()
    if problem:
        raise CliError(f"cannot serve: {problem}")

    async def migrate() -> None:
        db = Database.connect(settings.database_url)
        try:
            await ensure_reachable(db)
            await upgrade(db)
            await record_kdf(db, settings.kdf_ops, settings.kdf_mem)
        finally:
            await db.close()

    asyncio.run(migrate())
    # Every log line has its control characters escaped (a %0a in a path cannot forge a line).
    logsafe.configure(os.environ.get("FRISTED_LOG_LEVEL", "INFO"))
    app = create_app(settings)

    def announce() -> None:
        sys.stdout.write(f"fristed: serving on http://{args.host}:{args.port}/\n")
        sys.stdout.flush()

    try:
        # gateway.server: aiohttp's runner, but malformed HTTP is answered without logging an address or header.
        server.run(app, args.host, args.port, announce=announce, access_log_class=AccessLogger,
                   access_log=logging.getLogger("fristed.access"), shutdown_timeout=5)
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0
