"""Staff pages: `/staff/login`, `/staff/enroll`, `/staff` (inbox).

The pages only carry markup; the keys are opened by `web/static/staff/*.mjs`
and live in page memory only. `/staff/login` and `/staff` are the same
document: after login the script shows the inbox in place (the keys cannot
survive a navigation); a reload of `/staff` with a live session asks for the
passphrase again ("unlock"), without a new TOTP code.
"""

from aiohttp import web

from gateway.appkeys import SETTINGS
from gateway.pages.render import render
from gateway.services.listing import VIEWS
from gateway.staffauth import identify

routes = web.RouteTableDef()


@routes.get("/staff/login")
async def login_page(request: web.Request) -> web.Response:
    return await _inbox(request, mode="login", username="")


@routes.get("/staff")
async def inbox_page(request: web.Request) -> web.Response:
    found = await identify(request)
    if found is None:
        raise web.HTTPFound("/staff/login")
    return await _inbox(request, mode="unlock", username=found.username)


@routes.get("/staff/")
async def inbox_slash(request: web.Request) -> web.Response:
    raise web.HTTPFound("/staff")


async def _inbox(request: web.Request, *, mode: str, username: str) -> web.Response:
    settings = request.app[SETTINGS]
    # The view is a plain link (`/staff?view=mine`): it survives a reload without any device storage.
    view = request.query.get("view", "all")
    return await render(
        request,
        "staff/inbox.html",
        {
            "mode": mode,
            "username": username,
            "idle_minutes": settings.session_idle_minutes,
            "max_hours": settings.session_max_hours,
            "view": view if view in VIEWS else "all",
        },
    )


@routes.get("/staff/enroll")
async def enroll_page(request: web.Request) -> web.Response:
    # The token is in the fragment (`/staff/enroll#TOKEN`): it never reaches the server here.
    return await render(request, "staff/enroll.html")
