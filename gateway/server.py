"""Serving the app: aiohttp's runner with a quieter answer to malformed HTTP.

aiohttp answers a request it cannot parse (a header line without a colon, a
NUL in a header value, `Content-Length: abc`) from `RequestHandler.handle_error`,
which logs "Error handling request from <peer address>" with a traceback that
quotes the offending header, and answers plain text without our security
headers. `QuietRequestHandler` logs at most one debug line (status and the
kind of error: never an address, a header or a traceback) and answers in the API's error
shape with the security headers. `fristed serve` runs the app through
`GatewayRunner`, which is aiohttp's `AppRunner` making this handler.
"""

import asyncio
import logging
import signal
from collections.abc import Callable
from http import HTTPStatus

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway.middlewares import SECURITY_HEADERS

log = logging.getLogger("fristed.server")

_CODES = {400: "bad_request", 413: "too_large", 431: "too_large", 500: "internal_error", 504: "timeout"}


class QuietRequestHandler(RequestHandler):
    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if status >= 500 and exc is not None and not isinstance(exc, asyncio.TimeoutError):
            # Our own failure outside every middleware: the traceback is ours to fix (the formatter
            # escapes and indents it); still no address and no header.
            log.error("unhandled error outside the middlewares (%s)", type(exc).__name__, exc_info=exc)
        else:
            # Debug only: like a citizen request, a malformed one leaves no dated line by default (issue 10).
            log.debug("refused a malformed request: %s (%s)", status, type(exc).__name__ if exc else "-")
        if request.writer.output_size > 0:
            raise ConnectionError("the answer had already begun")
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        response = web.json_response(
            {"error": {"code": _CODES.get(status, "error"), "message": f"{phrase}: the request could not be read"}},
            status=status,
            headers=SECURITY_HEADERS,
        )
        response.force_close()
        return response


class GatewayServer(web.Server):
    def __call__(self) -> RequestHandler:
        return QuietRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        made = await super()._make_server()  # starts and freezes the app
        return GatewayServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )


def run(
    app: web.Application,
    host: str,
    port: int,
    *,
    announce: Callable[[], None],
    access_log_class: type[AbstractAccessLogger],
    access_log: logging.Logger,
    shutdown_timeout: float = 5,
) -> None:
    """Serve until SIGINT/SIGTERM, then shut down cleanly (OSError if the address cannot be bound)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        runner = GatewayRunner(
            app, handle_signals=False, access_log_class=access_log_class, access_log=access_log,
            shutdown_timeout=shutdown_timeout,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            announce()
            await stop.wait()
        finally:
            # Inside the task, before asyncio.run cancels anything: background loops end in order.
            await runner.cleanup()

    asyncio.run(main())
