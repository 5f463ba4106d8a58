"""Rendering templates with the request's language."""

from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.appkeys import JINJA, SETTINGS
from gateway.i18n import LANGUAGES, NATIVE_NAMES, Catalogs, choose_language, direction

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
    return env


def translator(request: web.Request):  # type: ignore[no-untyped-def]
    """The gettext function for the request's language (for strings built in Python)."""
    return request.app[CATALOGS].get(choose_language(request)).gettext


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
        path=request.path,
        quick_exit_url=settings.quick_exit_url,
        **(context or {}),
    )


async def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> web.Response:
    return web.Response(
        text=render_html(request, template, context), status=status, content_type="text/html", charset="utf-8"
    )


async def render_error(request: web.Request, status: int, message: str, headers: dict[str, str]) -> web.Response:
    response = await render(request, "error.html", {"status": status, "message": message}, status=status)
    response.headers.update(headers)
    return response
