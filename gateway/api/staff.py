"""Staff JSON API (session cookie `HttpOnly; SameSite=Strict`, CSRF header)."""

from aiohttp import web

routes = web.RouteTableDef()
