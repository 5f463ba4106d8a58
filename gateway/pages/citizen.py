"""Citizen pages: `/`, `/write`, `/pickup`. They never touch cookies.

With scripts on, `web/static/citizen/*.mjs` intercepts the forms and uses the
JSON API (the code never reaches the server). With scripts off the same forms
POST here and `gateway.services.noscript` does the work. Every form carries a
one-time ticket, so no POST answer can be re-submitted to show anything again.
"""

from typing import Any

from aiohttp import web

from crypto import CryptoError, format_code, normalise_code
from gateway.appkeys import DB, KDF_GATE, SETTINGS
from gateway.errors import NotFound
from gateway.pages.render import render, translator
from gateway.services import noscript

routes = web.RouteTableDef()


def _field(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _problem_message(request: web.Request, problem: str) -> str:
    _ = translator(request)
    max_chars = request.app[SETTINGS].max_text_chars
    return {
        "empty": _("Please write something first."),
        "too_long": _("The message is too long: at most %(max)s characters.") % {"max": max_chars},
        "team": _("Please choose who should receive your message."),
        "expired": _("This page was open too long, so nothing was sent. Please start again."),
        "used": _("This page was already used. Nothing more was sent and nothing is shown again."),
        "invalid": _("This page was not recognised. Please start again."),
        "bad_length": _("A pickup code has 16 digits. Please check it."),
        "bad_check_digit": _("The code has a typing error. Please check the digits."),
        "unknown_code": _("There is no conversation for this code. It may have expired or been deleted."),
        "unavailable": _("No one can receive messages right now. Please try again later."),
    }[problem]


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return await render(request, "citizen/index.html")


async def _write_page(request: web.Request, *, error: str | None = None, text: str = "", status: int = 200) -> web.Response:
    settings = request.app[SETTINGS]
    teams = await noscript.teams(request.app[DB])
    return await render(
        request,
        "citizen/write.html",
        {
            "teams": teams,
            "ticket": noscript.issue(settings.secret_key, noscript.FORM),
            "error": _problem_message(request, error) if error else None,
            "text": text,
            "max_chars": settings.max_text_chars,
        },
        status=status,
    )


@routes.get("/write")
async def write_form(request: web.Request) -> web.Response:
    return await _write_page(request)


@routes.post("/write")
async def write(request: web.Request) -> web.Response:
    """The no-script path: the server makes the code and seals the message (CRYPTO.md)."""
    settings, db = request.app[SETTINGS], request.app[DB]
    form = await request.post()
    text = _field(form, "message").replace("\r\n", "\n")
    teams = {t.id for t in await noscript.teams(db)}
    team = _field(form, "team") or (next(iter(teams)) if len(teams) == 1 else "")
    problem = "unavailable" if not teams else noscript.text_problem(text, settings.max_text_chars)
    if problem is None and team not in teams:
        problem = "team"
    if problem:
        # Nothing was created; the text comes back so the person does not lose it.
        return await _write_page(request, error=problem, text=text, status=400)
    try:
        await noscript.redeem(db, settings.secret_key, noscript.FORM, _field(form, "ticket"))
    except noscript.TicketError as exc:
        # A re-submitted or stale form: never echo the text, never make a second thread.
        return await _write_page(request, error=exc.reason, status=409 if exc.reason == "used" else 400)
    code = await noscript.write(db, settings, request.app[KDF_GATE], team, text)
    del text, form  # the plaintext now exists only inside the envelope
    return await render(request, "citizen/written.html", {"code": format_code(code)})


async def _pickup_page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
    settings = request.app[SETTINGS]
    return await render(
        request,
        "citizen/pickup.html",
        {
            "ticket": noscript.issue(settings.secret_key, noscript.FORM),
            "error": _problem_message(request, error) if error else None,
            "max_chars": settings.max_text_chars,
        },
        status=status,
    )


@routes.get("/pickup")
async def pickup_form(request: web.Request) -> web.Response:
    return await _pickup_page(request)


async def _thread_page(
    request: web.Request, keys: noscript.Keys, *, error: str | None = None, draft: str = "", confirm_delete: bool = False
) -> web.Response:
    settings = request.app[SETTINGS]
    try:
        shown = await noscript.conversation(request.app[DB], keys)
    except NotFound:
        return await _pickup_page(request, error="unknown_code", status=404)
    return await render(
        request,
        "citizen/pickup.html",
        {
            "conversation": shown,
            "ticket": noscript.issue(settings.secret_key, noscript.THREAD, keys.master),
            "error": _problem_message(request, error) if error else None,
            "draft": draft,
            "confirm_delete": confirm_delete,
            "max_chars": settings.max_text_chars,
        },
        status=400 if error else 200,
    )


@routes.post("/pickup")
async def pickup(request: web.Request) -> web.Response:
    """The no-script path: `step` is open (the code), or reply / ask-delete / delete / refresh (a thread ticket)."""
    settings, db = request.app[SETTINGS], request.app[DB]
    form = await request.post()
    step = _field(form, "step") or "open"
    purpose = noscript.FORM if step == "open" else noscript.THREAD
    try:
        ticket = await noscript.redeem(db, settings.secret_key, purpose, _field(form, "ticket"))
    except noscript.TicketError as exc:
        return await _pickup_page(request, error=exc.reason, status=409 if exc.reason == "used" else 400)
    if step == "open":
        try:
            # The check digit catches a typing error before any Argon2id work.
            digits = normalise_code(_field(form, "code"))
        except CryptoError as exc:
            return await _pickup_page(request, error=exc.code, status=400)
        return await _thread_page(request, await noscript.keys_from_code(db, settings, request.app[KDF_GATE], digits))
    keys = noscript.Keys(ticket.payload)
    if step == "reply":
        text = _field(form, "reply").replace("\r\n", "\n")
        problem = noscript.text_problem(text, settings.max_text_chars)
        if problem:
            return await _thread_page(request, keys, error=problem, draft=text)
        try:
            await noscript.reply(db, settings, keys, text)
        except NotFound:
            return await _pickup_page(request, error="unknown_code", status=404)
        del text
    elif step == "ask-delete":
        return await _thread_page(request, keys, confirm_delete=True)
    elif step == "delete":
        try:
            await noscript.delete(db, keys)
        except NotFound:
            return await _pickup_page(request, error="unknown_code", status=404)
        return await render(request, "citizen/deleted.html")
    return await _thread_page(request, keys)

