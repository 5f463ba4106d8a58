"""Citizen pages: `/`, `/write`, `/pickup`. They never touch cookies.

With scripts on, `web/static/citizen/*.mjs` intercepts the forms and uses the
JSON API (the code never reaches the server). With scripts off the same forms
POST here and `gateway.services.noscript` does the work. Every form carries a
one-time ticket, so no POST answer can be re-submitted to show anything again.
"""

from typing import Any

from aiohttp import web

from crypto import CryptoError, format_code, normalise_code
from gateway.appkeys import CLIENTS, DB, KDF_GATE, SETTINGS
from gateway.errors import Conflict, NotFound, RateLimited
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
        "full": _("This conversation cannot take more messages. Please start a new one from the front page."),
        "busy": _("Many people are writing right now, so nothing was sent yet. Your text is still here. "
                  "Please wait a minute and press the button again."),
    }[problem]


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return await render(request, "citizen/index.html")


async def _write_page(
    request: web.Request, *, error: str | None = None, text: str = "", status: int = 200, retry_after: int = 0
) -> web.Response:
    settings = request.app[SETTINGS]
    teams = await noscript.teams(request.app[DB])
    response = await render(
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
    return _retry(response, retry_after)


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
        ticket = noscript.read(settings.secret_key, noscript.FORM, _field(form, "ticket"))
        # The ticket is spent with the write itself: a 429 leaves it unused and the text on the page.
        request.app[CLIENTS].take(request, "noscript")
        code = await noscript.write(
            db, settings, request.app[KDF_GATE], team, text, guard=noscript.spend(settings.secret_key, ticket)
        )
    except noscript.TicketError as exc:
        # A re-submitted or stale form: never echo the text, never make a second thread.
        return await _write_page(request, error=exc.reason, status=409 if exc.reason == "used" else 400)
    except RateLimited as exc:
        return await _write_page(request, error="busy", text=text, status=429, retry_after=exc.retry_after)
    del text, form  # the plaintext now exists only inside the envelope
    return await render(request, "citizen/written.html", {"code": format_code(code)})


async def _pickup_page(
    request: web.Request, *, error: str | None = None, status: int = 200, retry_after: int = 0
) -> web.Response:
    settings = request.app[SETTINGS]
    response = await render(
        request,
        "citizen/pickup.html",
        {
            "ticket": noscript.issue(settings.secret_key, noscript.FORM),
            "error": _problem_message(request, error) if error else None,
            "max_chars": settings.max_text_chars,
        },
        status=status,
    )
    return _retry(response, retry_after)


def _retry(response: web.Response, retry_after: int) -> web.Response:
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


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
        request.app[CLIENTS].spend(request, "failed_open")  # a code that matches nothing: a guess
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
        ticket = noscript.read(settings.secret_key, purpose, _field(form, "ticket"))
        if step == "reply":
            return await _reply(request, noscript.Keys(ticket.payload), ticket, _field(form, "reply"))
        if step == "delete":
            await noscript.delete(db, noscript.Keys(ticket.payload), noscript.spend(settings.secret_key, ticket))
            return await render(request, "citizen/deleted.html")
        await noscript.redeem(db, settings.secret_key, purpose, _field(form, "ticket"))
        if step == "open":
            return await _open(request, _field(form, "code"))
    except noscript.TicketError as exc:
        return await _pickup_page(request, error=exc.reason, status=409 if exc.reason == "used" else 400)
    except NotFound:
        return await _pickup_page(request, error="unknown_code", status=404)
    except RateLimited as exc:
        return await _pickup_page(request, error="busy", status=429, retry_after=exc.retry_after)
    keys = noscript.Keys(ticket.payload)
    return await _thread_page(request, keys, confirm_delete=step == "ask-delete")


async def _open(request: web.Request, code: str) -> web.Response:
    settings, clients = request.app[SETTINGS], request.app[CLIENTS]
    try:
        # The check digit catches a typing error before any Argon2id work.
        digits = normalise_code(code)
    except CryptoError as exc:
        return await _pickup_page(request, error=exc.code, status=400)
    clients.check(request, "failed_open")
    clients.take(request, "noscript")
    keys = await noscript.keys_from_code(request.app[DB], settings, request.app[KDF_GATE], digits)
    return await _thread_page(request, keys)


async def _reply(request: web.Request, keys: noscript.Keys, ticket: noscript.Ticket, text: str) -> web.Response:
    settings = request.app[SETTINGS]
    text = text.replace("\r\n", "\n")
    problem = noscript.text_problem(text, settings.max_text_chars)
    if problem:
        return await _thread_page(request, keys, error=problem, draft=text)
    try:
        await noscript.reply(request.app[DB], settings, keys, text, guard=noscript.spend(settings.secret_key, ticket))
    except Conflict as exc:
        if exc.code != "thread_full":
            raise
        return await _thread_page(request, keys, error="full", draft=text)
    del text
    return await _thread_page(request, keys)
