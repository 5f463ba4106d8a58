"""Is this gateway process fit to serve? For `GET /healthz`, `fristed serve` and `fristed check`.

Per process, so a load balancer can take one sick process out of rotation:
the database answers, its schema is at the migrations' head, the static
assets the pages load are present, and the background loops of this process
(purge, live events, e-mail) are running. The answer says which check failed
and nothing else: no version, no count, no name, nothing about the caller.
"""

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from sqlalchemy import text

from gateway.appkeys import DB
from gateway.db import Database
from gateway.migrate import head_revision
from gateway.notify import LOOPS

log = logging.getLogger("fristed.health")

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "web" / "static"
VENDOR = STATIC / "vendor"
# What the pages cannot work without that is not in git: libsodium for the browser
# (put into web/static/vendor by the wheel's build hook or ops/setup.sh).
REQUIRED_STATIC = (VENDOR / "libsodium-sumo.mjs", VENDOR / "libsodium-wrappers.mjs")
BARE_IMPORT = 'from"libsodium-sumo"'
DATABASE_TIMEOUT = 3.0
# The purge loop (gateway.services.purge) names its task; the others register in LOOPS.
PURGE_TASK = "fristed-purge"
CHECKS = ("database", "migrations", "static", "loops")


def static_problem() -> str | None:
    """One line naming what is missing from the static assets, or None when they are all there."""
    missing = [p for p in REQUIRED_STATIC if not p.is_file() or p.stat().st_size == 0]
    if missing:
        names = ", ".join(str(p.relative_to(ROOT)) for p in missing)
        return (f"static assets missing: {names} (install the wheel built with `python -m build`, "
                "or run ops/setup.sh in a source checkout)")
    if BARE_IMPORT in REQUIRED_STATIC[1].read_text(encoding="utf-8", errors="replace"):
        return f"static asset {REQUIRED_STATIC[1].relative_to(ROOT)} still imports the bare name libsodium-sumo: rebuild it"
    return None


async def stored_revision(db: Database) -> str | None:
    """The schema revision, read directly (alembic's MigrationContext logs two lines per call)."""
    async with db.engine.connect() as conn:
        return await conn.scalar(text("SELECT version_num FROM alembic_version"))


def loops_alive(app: web.Application) -> bool:
    tasks: dict[str, asyncio.Task] = {}
    if LOOPS in app:
        loops = app[LOOPS]
        tasks.update(loops)
    purge = [t for t in asyncio.all_tasks() if t.get_name() == PURGE_TASK]
    if purge:
        tasks["purge"] = purge[0]
    return {"events", "mailer", "purge"} <= tasks.keys() and not any(t.done() for t in tasks.values())


@dataclass
class Health:
    """The last answer, so a change (not every poll) is logged."""

    head: str | None = None
    last: dict[str, bool] = field(default_factory=dict)

    async def check(self, app: web.Application) -> dict[str, bool]:
        if self.head is None:
            self.head = head_revision()
        results = dict.fromkeys(CHECKS, False)
        try:
            revision = await asyncio.wait_for(stored_revision(app[DB]), DATABASE_TIMEOUT)
            results["database"] = True
            results["migrations"] = revision == self.head
        except Exception as exc:  # any failure to answer is "unreachable"; the type says why, in our log only
            if self.last.get("database", True):
                log.warning("health: database unreachable (%s)", type(exc).__name__)
        results["static"] = static_problem() is None
        results["loops"] = loops_alive(app)
        if results != self.last:
            failing = [name for name, ok in results.items() if not ok]
            if failing:
                log.warning("health: failing %s", ", ".join(failing))
            elif self.last:
                log.info("health: every check passes again")
            self.last = results
        return results


HEALTH = web.AppKey("health", Health)


def setup(app: web.Application) -> None:
    app[HEALTH] = Health()
