"""Staff pages: `/staff/login`, `/staff/enroll`, `/staff` (inbox)."""

from aiohttp import web

routes = web.RouteTableDef()
