"""`GET /healthz`: 200 when this process is fit to serve, 503 when not (gateway.health)."""

from aiohttp import web

from gateway.health import HEALTH

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    checks = await request.app[HEALTH].check(request.app)
    ok = all(checks.values())
    body = {"status": "ok" if ok else "unavailable", "checks": {k: "ok" if v else "fail" for k, v in checks.items()}}
    return web.json_response(body, status=200 if ok else 503)
