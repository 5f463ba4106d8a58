"""Small middlewares with one job each: errors, security headers."""

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import ApiError

log = logging.getLogger("fristed.gateway")

# Strict CSP: no inline script or style anywhere; 'wasm-unsafe-eval' only so
# libsodium's WebAssembly can load (TOOLCHAIN.md).
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=(), payment=(), usb=()",
    "Cache-Control": "no-store",
}


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def error_json(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes the documented shape; never a traceback."""
    try:
        return await handler(request)
    except ApiError as exc:
        if is_api(request):
            return error_json(exc.status, exc.code, exc.message, exc.headers)
        return await _error_page(request, exc.status, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.reason if exc.status != 413 else "the request body is too large"
        # A 405 names the methods the resource does take (RFC 9110 15.5.6).
        kept = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        if is_api(request):
            return error_json(exc.status, _HTTP_CODES.get(exc.status, "error"), message, kept)
        return await _error_page(request, exc.status, message, kept)
    except Exception as exc:
        if isinstance(exc, ConnectionError) and (request.transport is None or request.transport.is_closing()):
            # The client left mid-request (e.g. mid-body): nobody to answer, not a server error.
            # aiohttp takes a cancelled handler as a premature disconnection: no log, no 500.
            raise asyncio.CancelledError from None
        log.exception("unhandled error on %s %s", request.method, request.path)
        if is_api(request):
            return error_json(500, "internal_error", "something went wrong on the server; nothing was lost")
        return await _error_page(request, 500, "Something went wrong on the server.", {})


async def _error_page(request: web.Request, status: int, message: str, headers: dict[str, str]) -> web.Response:
    from gateway.pages.render import render_error

    return await render_error(request, status, message, headers)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
