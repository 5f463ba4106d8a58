"""A bound on server-side Argon2id, per process.

Only the no-script path runs Argon2id on the server (64 MiB and ~0.1 s each
at the default cost). Without a bound, a flood of no-script writes or pickups
would take all memory. The gate runs at most `concurrent` derivations at
once in worker threads (the event loop keeps serving everyone else) and lets
at most `queue` more wait; beyond that the answer is 429 with a Retry-After
long enough for the queue to drain. This is a local resource bound, not
shared state: each process protects its own memory.
"""

import asyncio
import math
from collections.abc import Callable
from typing import TypeVar

from gateway.errors import RateLimited

T = TypeVar("T")


class KdfGate:
    def __init__(self, concurrent: int = 2, queue: int = 16, seconds_each: float = 0.5) -> None:
        self._slots = asyncio.Semaphore(concurrent)
        self._concurrent = concurrent
        self._queue = queue
        self._seconds_each = seconds_each
        self._waiting = 0

    async def run(self, derive: Callable[..., T], *args: object) -> T:
        if self._waiting >= self._queue:
            # Honest: by then every queued derivation has had its turn.
            raise RateLimited(math.ceil(self._queue / self._concurrent * self._seconds_each) + 1)
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            return await asyncio.to_thread(derive, *args)
        finally:
            self._slots.release()
