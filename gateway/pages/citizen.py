"""Citizen pages: `/`, `/write`, `/pickup`. They never touch cookies."""

from aiohttp import web

from gateway.pages.render import render

routes = web.RouteTableDef()


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return await render(request, "citizen/index.html")
