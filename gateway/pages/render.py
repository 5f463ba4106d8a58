"""Rendering templates with the request's language.

Every page gets the words of `#emergency` (the `[help]` settings) and, for
`#about-reply`, who reads, when to come back and how long a conversation is
kept; message times are shown in the deployment's `timezone` (issue 12).
"""

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from gateway.appkeys import JINJA, SETTINGS
from gateway.i18n import LANGUAGES, NATIVE_NAMES, Catalogs, choose_language, direction
from gateway.settings import Settings

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "web" / "templates"
CATALOGS = web.AppKey("catalogs", Catalogs)


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["languages"] = [(code, NATIVE_NAMES[code]) for code in LANGUAGES]
    env.filters["phone"] = phone_link
    return env


def phone_link(number: str) -> Markup:
    """A number from `[help]` as a tap-to-call link, kept left-to-right inside RTL sentences.
    The settings allow only digits, spaces, dashes and a leading +; escaped all the same."""
    target = "".join(ch for ch in number if ch.isdigit() or ch == "+")
    return Markup('<a class="phone" href="tel:{}" dir="ltr">{}</a>').format(target, escape(number))


def translator(request: web.Request):  # type: ignore[no-untyped-def]
    """The gettext function for the request's language (for strings built in Python)."""
    return request.app[CATALOGS].get(choose_language(request)).gettext


def local_time(moment: dt.datetime, timezone: str) -> dt.datetime:
    """A stored time (UTC; naive from SQLite) in the deployment's time zone, for display only."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(ZoneInfo(timezone))


def operator_text(texts: dict[str, str] | Any, lang: str) -> str:
    """The operator's own text for this language ("*" = every language), or "" for the translated default."""
    return str(texts.get(lang) or texts.get("*") or "")


def _page_words(settings: Settings, lang: str) -> dict[str, Any]:
    return {
        "help": settings.help,
        "organisation_name": settings.organisation_name,
        "retention_days": settings.retention_days,
        "reply_promise": operator_text(settings.reply_promise, lang),
        "next_steps": operator_text(settings.next_steps, lang),
        "duty_hours": operator_text(settings.duty_hours, lang),
        "timezone": settings.timezone,
        "local_time": lambda moment: local_time(moment, settings.timezone),
    }


def same_origin_path(path: str) -> str:
    """`path` made safe to put in a link on this site: always one leading slash, then no slash.

    `//host/x` and `/\\host/x` (and `/%09/host`, since browsers drop tabs and
    newlines from URLs) would otherwise be links to another site. Everything
    outside the path characters of RFC 3986 is percent-encoded, then the
    leading slashes are collapsed to one.
    """
    return "/" + quote(path, safe="/-._~!$&'()*+,;=:@").lstrip("/")


def render_html(request: web.Request, template: str, context: dict[str, Any] | None = None) -> str:
    env = request.app[JINJA]
    lang = choose_language(request)
    translations = request.app[CATALOGS].get(lang)
    # Rendering is synchronous, so installing the callables per render is safe.
    env.install_gettext_callables(translations.gettext, translations.ngettext, newstyle=True)  # type: ignore[attr-defined]
    settings = request.app[SETTINGS]
    return env.get_template(template).render(
        lang=lang,
        dir=direction(lang),
        path=same_origin_path(request.path),
        quick_exit_url=settings.quick_exit_url,
        **_page_words(settings, lang),
        **(context or {}),
    )


async def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> web.Response:
    return web.Response(
        text=render_html(request, template, context), status=status, content_type="text/html", charset="utf-8"
    )


def _status_message(request: web.Request, status: int) -> str | None:
    """The error page's words in the page's language, not the HTTP reason phrase (English)."""
    _ = translator(request)
    return {
        400: _("Something in the request was not right. Please go back to the start and try again."),
        403: _("This is not allowed here."),
        404: _("This page does not exist. Check the address, or go back to the start."),
        405: _("This page cannot be used like that. Please go back to the start."),
        413: _("That was too much text at once. Please send less."),
        429: _("Too many tries right now. Please wait a little and try again."),
        500: _("Something went wrong on the server. Nothing was lost. Please try again."),
        503: _("No one can receive messages right now. Please try again later."),
    }.get(status)


async def render_error(request: web.Request, status: int, message: str, headers: dict[str, str]) -> web.Response:
    # Citizen pages speak the page's language only; staff pages keep the specific message they were given.
    if not request.path.startswith("/staff"):
        message = _status_message(request, status) or message
    response = await render(request, "error.html", {"status": status, "message": message}, status=status)
    response.headers.update(headers)
    return response
