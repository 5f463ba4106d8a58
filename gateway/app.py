"""The application factory: `create_app(settings)`; no work at import time."""

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from gateway import health, middlewares, notify, scrub, staffauth
from gateway.accesslog import AccessLogger as AccessLogger  # ops.commands.serve imports it from here
from gateway.accesslog import citizen_log_ctx
from gateway.api import citizen as citizen_api
from gateway.api import health as health_api
from gateway.api import openapi
from gateway.api import staff as staff_api
from gateway.appkeys import CLIENTS, CONFIG, DB, JINJA, KDF_GATE, POW, SETTINGS
from gateway.configcache import ConfigCache
from gateway.db import Database
from gateway.i18n import Catalogs
from gateway.kdfgate import KdfGate
from gateway.limits import ClientLimits
from gateway.pages import citizen as citizen_pages
from gateway.pages import staff as staff_pages
from gateway.pages.render import CATALOGS, make_environment
from gateway.pow import PowControl, control_loop
from gateway.services import purge
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "web" / "static"
CRYPTO_JS = ROOT / "crypto" / "js"


async def database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[DB] = Database.connect(settings.database_url)
    app[POW] = PowControl(app[DB], settings.pow, settings.secret_key)
    app[CONFIG] = ConfigCache(app[DB], settings)
    yield
    await app[DB].close()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[middlewares.security_headers, middlewares.errors],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[JINJA] = make_environment()
    app[KDF_GATE] = KdfGate()
    app[CATALOGS] = Catalogs.load()
    app[CLIENTS] = ClientLimits(settings)
    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(control_loop)  # proof-of-work demand (after the database)
    app.cleanup_ctx.append(purge.purge_loop)
    app.cleanup_ctx.append(scrub.scrubber_ctx)  # deleted rows leave the WAL within seconds (issue 10)
    app.cleanup_ctx.append(citizen_log_ctx)  # log.citizen_requests: per-minute counts only
    notify.setup(app)  # live events and e-mail notifications (after the database)
    health.setup(app)  # GET /healthz
    app.middlewares.append(staffauth.staff_session)  # inside `errors`: staff session and CSRF
    for module in (citizen_api, staff_api, openapi, health_api, citizen_pages, staff_pages):
        app.router.add_routes(module.routes)
    app.router.add_static("/static/crypto/", CRYPTO_JS, append_version=False)
    app.router.add_static("/static/", STATIC, append_version=False)
    return app
