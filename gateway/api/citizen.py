"""Citizen JSON API: no cookies, no session; the access token travels only in POST bodies."""

from aiohttp import web

from crypto import b64
from gateway.appkeys import DB, SETTINGS
from gateway.jsonio import b64_field, read_json
from gateway.services import threads
from gateway.services.meta import get_code_salt, previous_kdf
from gateway.services.teams import offered_teams

routes = web.RouteTableDef()


def limits(request: web.Request) -> threads.Limits:
    settings = request.app[SETTINGS]
    return threads.Limits(settings.retention_days, settings.max_envelope_bytes)


@routes.get("/api/v1/config")
async def config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    async with request.app[DB].read() as session:
        salt = await get_code_salt(session)
        teams = await offered_teams(session)
        previous = await previous_kdf(session, settings.kdf_ops, settings.kdf_mem, settings.retention_days)
    return web.json_response(
        {
            "code_salt": b64(salt),
            "kdf": {"ops": settings.kdf_ops, "mem": settings.kdf_mem},
            # Costs of earlier codes, newest first: a pickup that finds nothing tries them in turn.
            "kdf_previous": [{"ops": k.ops, "mem": k.mem} for k in previous],
            "teams": [{"id": t.id, "name": t.name, "kid": k.kid, "pk": b64(k.pk)} for t, k in teams],
            "limits": {"max_text_chars": settings.max_text_chars, "max_envelope_bytes": settings.max_envelope_bytes},
        }
    )


@routes.post("/api/v1/threads")
async def create(request: web.Request) -> web.Response:
    data = await read_json(request, required={"team": str, "citizen_pk": str, "access_token": str, "envelope": dict})
    thread = await threads.create_thread(
        request.app[DB],
        limits(request),
        team_id=data["team"],
        citizen_pk=b64_field(data, "citizen_pk", 32),
        access_token=b64_field(data, "access_token", 32),
        envelope=data["envelope"],
        sealed_by="browser",
    )
    return web.json_response({"expires": thread.expires.isoformat()}, status=201)


@routes.post("/api/v1/threads/open")
async def open_(request: web.Request) -> web.Response:
    data = await read_json(request, required={"access_token": str})
    thread, messages = await threads.open_thread(request.app[DB], b64_field(data, "access_token", 32))
    return web.json_response(
        {
            "team": thread.team_id,
            "citizen_pk": b64(thread.citizen_pk),
            "expires": thread.expires.isoformat(),
            "messages": [threads.message_json(m) for m in messages],
        }
    )


@routes.post("/api/v1/threads/reply")
async def reply(request: web.Request) -> web.Response:
    data = await read_json(request, required={"access_token": str, "envelope": dict})
    message = await threads.citizen_reply(
        request.app[DB], limits(request), b64_field(data, "access_token", 32), data["envelope"]
    )
    return web.json_response({"seq": message.seq}, status=201)


@routes.post("/api/v1/threads/delete")
async def delete(request: web.Request) -> web.Response:
    data = await read_json(request, required={"access_token": str})
    await threads.delete_thread(request.app[DB], b64_field(data, "access_token", 32))
    return web.Response(status=204)
