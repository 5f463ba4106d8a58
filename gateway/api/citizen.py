"""Citizen JSON API: no cookies, no session; the access token travels only in POST bodies.

Anonymous writes pass, cheapest check first: the body's shape, the proof of
work being present when asked for (403), this client's limit (429), then the
proof of work itself (one Argon2id, bounded), and last the write, which
spends the challenge in its own transaction (issue 8).
"""

from aiohttp import web

from gateway.appkeys import CLIENTS, CONFIG, DB, POW, SETTINGS
from gateway.errors import NotFound
from gateway.jsonio import b64_field, read_json
from gateway.pow import Issued, issue, pow_required, spend
from gateway.services import threads

routes = web.RouteTableDef()
POW_FIELD = {"pow": dict}


def limits(request: web.Request) -> threads.Limits:
    return threads.Limits.of(request.app[SETTINGS])


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


@routes.get("/api/v1/config")
async def config(request: web.Request) -> web.Response:
    return _json(await request.app[CONFIG].body(request.app[POW].bits))


@routes.post("/api/v1/challenge")
async def challenge(request: web.Request) -> web.Response:
    await read_json(request, required={})
    settings = request.app[SETTINGS]
    return web.json_response(issue(settings.secret_key, request.app[POW].bits, settings.pow).json())


async def _paid(request: web.Request, data: dict, kind: str) -> Issued | None:
    """Proof of work and this client's limit, in the order that costs an attacker most and us least."""
    control = request.app[POW]
    if data.get("pow") is None and control.bits > 0:
        raise pow_required()
    request.app[CLIENTS].take(request, kind)
    issued = await control.check(data)
    # Only a write that paid what was asked counts towards the demand: refused attempts cost an
    # attacker nothing, so counting them would let anyone raise everyone's cost for free.
    control.offered()
    return issued


@routes.post("/api/v1/threads")
async def create(request: web.Request) -> web.Response:
    data = await read_json(
        request, required={"team": str, "citizen_pk": str, "access_token": str, "envelope": dict}, optional=POW_FIELD
    )
    citizen_pk, token = b64_field(data, "citizen_pk", 32), b64_field(data, "access_token", 32)
    parsed = threads.parse(data["envelope"], limits(request))
    issued = await _paid(request, data, "create")
    created = await threads.create_thread(
        request.app[DB], limits(request), team_id=data["team"], citizen_pk=citizen_pk, access_token=token,
        parsed=parsed, sealed_by="browser", guard=spend(issued) if issued else None,
    )
    return web.json_response({"expires": created.expires.isoformat()}, status=201)


async def _guessed(request: web.Request, call):  # type: ignore[no-untyped-def]
    """A call by access token: a token that matches nothing counts against this client's guesses."""
    clients = request.app[CLIENTS]
    clients.check(request, "failed_open")
    try:
        return await call
    except NotFound:
        clients.spend(request, "failed_open")
        raise


@routes.post("/api/v1/threads/open")
async def open_(request: web.Request) -> web.Response:
    data = await read_json(request, required={"access_token": str})
    token = b64_field(data, "access_token", 32)
    opened = await _guessed(request, threads.open_thread(request.app[DB], token))
    return _json(threads.opened_json(opened))


@routes.post("/api/v1/threads/reply")
async def reply(request: web.Request) -> web.Response:
    data = await read_json(request, required={"access_token": str, "envelope": dict}, optional=POW_FIELD)
    token = b64_field(data, "access_token", 32)
    parsed = threads.parse(data["envelope"], limits(request))
    issued = await _paid(request, data, "reply")
    appended = await _guessed(
        request,
        threads.citizen_reply(request.app[DB], limits(request), token, parsed, guard=spend(issued) if issued else None),
    )
    return web.json_response({"seq": appended.seq}, status=201)


@routes.post("/api/v1/threads/delete")
async def delete(request: web.Request) -> web.Response:
    data = await read_json(request, required={"access_token": str})
    token = b64_field(data, "access_token", 32)
    await _guessed(request, threads.delete_thread(request.app[DB], token))
    return web.Response(status=204)
