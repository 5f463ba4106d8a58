"""Staff JSON API (session cookie `HttpOnly; SameSite=Strict`, CSRF header; see `gateway.staffauth`)."""

from typing import Any

from aiohttp import web

from crypto import b64
from gateway.api.citizen import limits
from gateway.appkeys import DB, SETTINGS
from gateway.errors import BadRequest, NotFound
from gateway.jsonio import b64_field, read_json
from gateway.models import Consultant
from gateway.notify import HUB, stream_events
from gateway.services import enrolment, grants, inbox, listing, login, reads, sessions, templates
from gateway.services import handover as handover_service
from gateway.services.consultants import Enrolment, teams_of
from gateway.services.teams import ID_RE
from gateway.staffauth import identify, identity

routes = web.RouteTableDef()

MAX_USERNAME = 64
THREAD = "/api/v1/staff/threads/{id:[A-Za-z0-9_-]{1,32}}"
TEMPLATE = "/api/v1/staff/templates/{tid:[0-9]{1,18}}"
COMPRESS_FROM = 1024
MAX_ID = 2**31 - 1


def _username(data: dict[str, Any]) -> str:
    username = data["username"]
    # The enrolment alphabet, checked before anything (counter, audit line) is recorded:
    # a name with control characters or markup never reaches the log or the database.
    if not ID_RE.match(username):
        raise BadRequest("bad_username", f"a username is 1-{MAX_USERNAME} of a-z, 0-9, '-' and '_'")
    return username


def _totp(data: dict[str, Any]) -> str:
    code = data["totp"]
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        raise BadRequest("bad_totp", "totp is a string of 6 digits")
    return code


@routes.post("/api/v1/staff/enroll/start")
async def enroll_start(request: web.Request) -> web.Response:
    data = await read_json(request, required={"token": str})
    started = await enrolment.start(request.app[DB], request.app[SETTINGS], data["token"])
    return web.json_response(
        {
            "username": started.username,
            "totp_uri": started.totp_uri,
            "totp_qr": started.totp_qr,
            "kdf": {"ops": started.ops, "mem": started.mem},
        }
    )


@routes.post("/api/v1/staff/enroll/finish")
async def enroll_finish(request: web.Request) -> web.Response:
    data = await read_json(
        request,
        required={"token": str, "salt": str, "auth_key": str, "pk": str, "key_blob": str, "totp": str},
    )
    sent = Enrolment(
        b64_field(data, "salt", 16), b64_field(data, "auth_key", 32), b64_field(data, "pk", 32), b64_field(data, "key_blob", 72)
    )
    username = await enrolment.finish(request.app[DB], request.app[SETTINGS], data["token"], sent, _totp(data))
    return web.json_response({"username": username}, status=201)


@routes.post("/api/v1/staff/prelogin")
async def prelogin(request: web.Request) -> web.Response:
    data = await read_json(request, required={"username": str})
    found = await login.prelogin(request.app[DB], request.app[SETTINGS], _username(data))
    return web.json_response({"salt": b64(found.salt), "kdf": {"ops": found.ops, "mem": found.mem}})


@routes.post("/api/v1/staff/login")
async def login_(request: web.Request) -> web.Response:
    data = await read_json(request, required={"username": str, "auth_key": str, "totp": str})
    result = await login.login(
        request.app[DB], request.app[SETTINGS], _username(data), b64_field(data, "auth_key", 32), _totp(data),
        request.cookies.get(sessions.DEVICE_COOKIE),
    )
    previous = await identify(request, touch=False)
    if previous is not None:  # a new login on this browser ends the old session
        await sessions.end(request.app[DB], previous.id_hash)
    response = web.json_response(result.answer)
    sessions.set_cookie(request, response, result.token)
    sessions.set_device_cookie(request, response, result.device_cookie)
    return response


@routes.post("/api/v1/staff/logout")
async def logout(request: web.Request) -> web.Response:
    me = identity(request)
    await login.logout(request.app[DB], me.username, me.id_hash)
    request.app[HUB].end_session(me.id_hash)
    response = web.Response(status=204)
    sessions.clear_cookie(request, response)
    return response


@routes.get("/api/v1/staff/keys")
async def keys(request: web.Request) -> web.Response:
    """Unlock after a reload: the session is alive, the keys are not (they never leave page memory)."""
    me = identity(request)
    async with request.app[DB].read() as session:
        consultant = await session.get(Consultant, me.username)
        assert consultant is not None and consultant.salt is not None
        answer = await login.keys_answer(session, consultant)
    salt, kdf = b64(consultant.salt), {"ops": consultant.kdf_ops, "mem": consultant.kdf_mem}
    return web.json_response({"csrf": me.csrf, **answer, "salt": salt, "kdf": kdf})


@routes.get("/api/v1/staff/teams")
async def teams(request: web.Request) -> web.Response:
    return web.json_response({"teams": await inbox.team_overview(request.app[DB], identity(request).username)})


def compressed(request: web.Request, answer: dict) -> web.Response:
    """gzip for the inbox's large staff reads, where that is safe: these answers carry no secret
    (no CSRF token, no key material) beside anything an attacker controls, so compression cannot
    leak one (BREACH). The login, keys and grant answers are never compressed."""
    response = web.json_response(answer)
    body = response.body
    if isinstance(body, bytes) and len(body) >= COMPRESS_FROM and "gzip" in request.headers.get("Accept-Encoding", ""):
        response.enable_compression(web.ContentCoding.gzip)
    return response


@routes.get("/api/v1/staff/threads")
async def list_threads(request: web.Request) -> web.Response:
    """One page of the inbox (`?view=&limit=&after=`), `next` for the following one, and every view's count."""
    page = listing.parse_page(dict(request.query))
    return compressed(request, await inbox.list_threads(request.app[DB], identity(request).username, page))


@routes.get("/api/v1/staff/previews")
async def previews(request: web.Request) -> web.Response:
    """The newest message of up to 50 threads (`?ids=a,b`), for the inbox's one-line previews."""
    ids = listing.parse_ids(request.query.get("ids", ""))
    return compressed(request, {"previews": await listing.newest_messages(request.app[DB], identity(request).username, ids)})


@routes.get(THREAD)
async def get_thread(request: web.Request) -> web.Response:
    return compressed(request, await inbox.get_thread(request.app[DB], identity(request).username, request.match_info["id"]))


@routes.post(THREAD + "/read")
async def mark_read(request: web.Request) -> web.Response:
    data = await read_json(request, required={"seq": int})
    seq = await reads.mark_read(request.app[DB], identity(request).username, request.match_info["id"], data["seq"])
    return web.json_response({"seq": seq})


@routes.post(THREAD + "/handover")
async def handover(request: web.Request) -> web.Response:
    data = await read_json(request, required={"to": object}, optional={"note": dict})
    if not isinstance(data["to"], str | None):
        raise BadRequest("bad_field", "field to must be a username or null")
    thread = await handover_service.hand_over(
        request.app[DB], limits(request), identity(request).username, request.match_info["id"], data["to"], data.get("note")
    )
    return web.json_response(thread)


@routes.post("/api/v1/staff/shift/end")
async def end_shift(request: web.Request) -> web.Response:
    await read_json(request, required={})
    return web.json_response(await handover_service.end_shift(request.app[DB], identity(request).username))


@routes.get("/api/v1/staff/preferences")
async def get_preferences(request: web.Request) -> web.Response:
    return web.json_response(await reads.get_prefs(request.app[DB], identity(request).username))


@routes.patch("/api/v1/staff/preferences")
async def set_preferences(request: web.Request) -> web.Response:
    data = await read_json(request, required={}, optional={"desktop": bool, "sound": bool})
    return web.json_response(await reads.set_prefs(request.app[DB], identity(request).username, data))


@routes.get("/api/v1/staff/templates")
async def list_templates(request: web.Request) -> web.Response:
    return compressed(request, {"templates": await templates.list_templates(request.app[DB], identity(request).username)})


@routes.post("/api/v1/staff/templates")
async def add_template(request: web.Request) -> web.Response:
    data = await read_json(request, required={"team": str, "envelope": dict})
    added = await templates.add_template(
        request.app[DB], identity(request).username, data["team"], data["envelope"], limits(request).max_envelope_bytes
    )
    return web.json_response(added, status=201)


@routes.put(TEMPLATE)
async def replace_template(request: web.Request) -> web.Response:
    data = await read_json(request, required={"envelope": dict})
    replaced = await templates.replace_template(
        request.app[DB], identity(request).username, _template_id(request), data["envelope"], limits(request).max_envelope_bytes
    )
    return web.json_response(replaced)


@routes.delete(TEMPLATE)
async def delete_template(request: web.Request) -> web.Response:
    await templates.delete_template(request.app[DB], identity(request).username, _template_id(request))
    return web.Response(status=204)


def _template_id(request: web.Request) -> int:
    value = int(request.match_info["tid"])
    if value > MAX_ID:  # beyond any stored id (PostgreSQL INTEGER)
        raise NotFound("unknown_template", "no such template in your teams")
    return value


@routes.post(THREAD + "/reply")
async def reply(request: web.Request) -> web.Response:
    data = await read_json(request, required={"envelope": dict})
    message = await inbox.reply(request.app[DB], limits(request), identity(request).username, request.match_info["id"], data["envelope"])
    return web.json_response({"seq": message.seq}, status=201)


@routes.post(THREAD + "/notes")
async def note(request: web.Request) -> web.Response:
    data = await read_json(request, required={"envelope": dict})
    await inbox.add_note(request.app[DB], limits(request), identity(request).username, request.match_info["id"], data["envelope"])
    return web.json_response({}, status=201)


@routes.patch(THREAD)
async def patch_thread(request: web.Request) -> web.Response:
    data = await read_json(request, required={}, optional={"status": str, "risk": str, "assigned_to": object})
    if "assigned_to" in data and not isinstance(data["assigned_to"], str | None):
        raise BadRequest("bad_field", "field assigned_to must be a username or null")
    thread = await inbox.update_thread(request.app[DB], identity(request).username, request.match_info["id"], data)
    return web.json_response(thread)


@routes.post("/api/v1/staff/duty")
async def duty(request: web.Request) -> web.Response:
    data = await read_json(request, required={"team": str, "on": bool})
    on_duty = await inbox.set_duty(request.app[DB], identity(request).username, data["team"], data["on"])
    return web.json_response({"team": data["team"], "on": data["on"], "on_duty": on_duty})


@routes.get("/api/v1/staff/grants/pending")
async def pending_grants(request: web.Request) -> web.Response:
    return web.json_response({"pending": await grants.pending(request.app[DB], identity(request).username)})


@routes.post("/api/v1/staff/grants")
async def add_grants(request: web.Request) -> web.Response:
    data = await read_json(request, required={"grants": list})
    parsed = []
    for item in data["grants"]:
        if not isinstance(item, dict) or set(item) != {"team", "kid", "username", "box"}:
            raise BadRequest("bad_grants", "each grant is an object with exactly team, kid, username and box")
        if not all(isinstance(item[k], str) for k in ("team", "kid", "username")):
            raise BadRequest("bad_grants", "team, kid and username are strings")
        parsed.append(grants.NewGrant(item["team"], item["kid"], item["username"], b64_field(item, "box", 80)))
    added = await grants.add(request.app[DB], identity(request).username, parsed)
    return web.json_response({"added": added}, status=201)


@routes.get("/api/v1/staff/events")
async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events, content-free: `event: thread_new` / `data: {"thread": id}`; ends with the session."""
    if request.method == "HEAD":
        return web.Response(content_type="text/event-stream")
    me = identity(request)
    async with request.app[DB].read() as session:
        my_teams = await teams_of(session, me.username)
    return await stream_events(request, me, my_teams)
