"""The access log: staff requests line by line; citizen requests not at all, or counted per minute.

PRODUCT.md promise 3 and issue 10: no log line may date a citizen's action
finer than a minute, and a log line stamped to the millisecond beside
`POST /api/v1/threads 201` does exactly that (so would journald's own
stamp on the line). With `log.citizen_requests = false` (the default)
nothing about citizen requests is logged. With `true`, they are counted by
(method, route, status) and written as one summary line at the end of each
minute, stamped with the minute itself: no single request's time or
duration. Citizen means every request outside `/staff` and `/api/v1/staff/`.

Every line names the route, not the path (`/api/v1/staff/threads/{id}`), so
a deleted thread's id never sits in the log; never an address or a header.
Staff requests keep their precision (they are staff activity, not a citizen's).
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from gateway.appkeys import SETTINGS

ACCESS_LOGGER = "fristed.access"
UNMATCHED = "(no route)"


def is_staff(path: str) -> bool:
    return path == "/staff" or path.startswith(("/staff/", "/api/v1/staff/"))


def route_of(request: web.BaseRequest) -> str:
    """The route's pattern, never the raw path (which may hold a thread id or anything a client typed)."""
    match_info = getattr(request, "_match_info", None)
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else UNMATCHED


class CitizenCounts:
    """Citizen requests of the current minute, by (method, route, status)."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self.counts: Counter[tuple[str, str, int]] = Counter()

    def add(self, method: str, route: str, status: int) -> None:
        self.counts[(method, route, status)] += 1

    def flush(self, minute_start: float) -> None:
        """One line for the minute that began at `minute_start` (a whole minute, as Unix time)."""
        if not self.counts:
            return
        parts = "; ".join(f"{m} {r} {s} x{n}" for (m, r, s), n in sorted(self.counts.items()))
        self.counts.clear()
        record = self.logger.makeRecord(self.logger.name, logging.INFO, __file__, 0,
                                        "citizen requests in this minute: %s", (parts,), None)
        record.created, record.msecs = minute_start, 0.0  # the line's own stamp is the minute, nothing finer
        self.logger.handle(record)


CITIZEN_COUNTS = web.AppKey("citizen_counts", CitizenCounts)


class AccessLogger(AbstractAccessLogger):
    """Staff: method, route, status and duration. Citizens: nothing, or a count per minute."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.path == "/healthz":
            return  # a balancer polls it every few seconds; gateway.health logs its changes instead
        if is_staff(request.path):
            self.logger.info("%s %s %s %.0fms", request.method, route_of(request), response.status, time * 1000)
            return
        app = getattr(getattr(request, "_match_info", None), "current_app", None)
        if app is not None and CITIZEN_COUNTS in app:
            app[CITIZEN_COUNTS].add(request.method, route_of(request), response.status)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


async def citizen_log_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: with `log.citizen_requests` on, count citizen requests and log them each minute."""
    if not app[SETTINGS].log_citizen_requests:
        yield
        return
    counts = CitizenCounts(logging.getLogger(ACCESS_LOGGER))
    app[CITIZEN_COUNTS] = counts

    async def every_minute() -> None:
        while True:
            now = time.time()
            await asyncio.sleep(60 - now % 60)
            counts.flush(now - now % 60)

    task = asyncio.create_task(every_minute(), name="fristed-citizen-log")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    now = time.time()
    counts.flush(now - now % 60)
