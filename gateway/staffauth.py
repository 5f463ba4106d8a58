"""One middleware, one job: staff API calls need a live session, state-changing ones its CSRF token.

Without a session: 401 `unauthorized`. With a session but a missing or wrong
`X-CSRF-Token` on POST/PATCH/PUT/DELETE: 403 `bad_csrf`. Enrolment, prelogin
and login have no session yet and are left alone.
"""

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.appkeys import DB, SETTINGS
from gateway.errors import Forbidden, Unauthorized
from gateway.services import sessions

STAFF_API = "/api/v1/staff/"
OPEN_PATHS = frozenset(
    STAFF_API + name for name in ("enroll/start", "enroll/finish", "prelogin", "login")
)
EVENTS_PATH = STAFF_API + "events"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
IDENTITY = web.RequestKey("staff_identity", sessions.Identity)


async def identify(request: web.Request, *, touch: bool = True) -> sessions.Identity | None:
    return await sessions.authenticate(
        request.app[DB], request.app[SETTINGS], request.cookies.get(sessions.COOKIE), touch=touch
    )


def identity(request: web.Request) -> sessions.Identity:
    """The caller of a staff API handler (set by the middleware)."""
    return request[IDENTITY]


@web.middleware
async def staff_session(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(STAFF_API) and request.path not in OPEN_PATHS:
        # The event stream and automatic refreshes do not count as activity (idle timeout).
        background = request.path == EVENTS_PATH or request.headers.get(sessions.BACKGROUND_HEADER) == "1"
        found = await identify(request, touch=not background)
        if found is None:
            raise Unauthorized("unauthorized", "log in first (no valid staff session)")
        if request.method not in SAFE_METHODS and not hmac.compare_digest(
            request.headers.get(CSRF_HEADER, "").encode(), found.csrf.encode()
        ):
            raise Forbidden("bad_csrf", f"send the login answer's csrf value as the {CSRF_HEADER} header")
        request[IDENTITY] = found
    return await handler(request)
