"""Per-client limits that store no address (issue 8, PRODUCT.md promise 7).

A client is the address the reverse proxy names in `proxy.client_address_header`
(the last, proxy-added element of a list), or else the peer address. It is
never kept: each is reduced at once to a keyed BLAKE2b whose key is random per
process and replaced every hour, and the counters live only in this process's
memory (nothing is logged or written). Replacing the key forgets every
counter, which can only shorten a wait: a `Retry-After` stays honest.

Each limit is a token bucket: `burst` requests at once, then `per_minute`
(0 switches that limit off). With `rate.per_client = false` (an onion
service, where every client is the proxy) all of them are off and the proof
of work carries the load (SECURITY.md).
"""

import hashlib
import math
import secrets
import time
from collections import OrderedDict

from aiohttp import web

from gateway.errors import RateLimited
from gateway.settings import Bucket, Settings

KEY_SECONDS = 3600
# At most this many clients are tracked per process; the least recently seen go first.
MAX_CLIENTS = 50_000

MESSAGES = {
    "create": "too many new conversations from here; try again later",
    "reply": "too many messages from here; try again later",
    "failed_open": "too many codes that did not match; try again later",
    "noscript": "too many requests from here; try again later",
}


class ClientLimits:
    def __init__(self, settings: Settings) -> None:
        self._header = settings.client_address_header
        self._on = settings.rate.per_client
        self._buckets: dict[str, Bucket] = {
            "create": settings.rate.create,
            "reply": settings.rate.reply,
            "failed_open": settings.rate.failed_open,
            "noscript": settings.rate.noscript,
        }
        self._state: OrderedDict[bytes, list[float]] = OrderedDict()
        self._rotate(time.monotonic())

    def _rotate(self, now: float) -> None:
        self._key = secrets.token_bytes(32)
        self._key_born = now
        self._state.clear()

    def _client(self, request: web.Request) -> str | None:
        if self._header:
            value = request.headers.get(self._header, "")
            address = value.rsplit(",", 1)[-1].strip()
            if address:
                return address
        return request.remote

    def _slot(self, request: web.Request, kind: str) -> tuple[bytes, Bucket] | None:
        bucket = self._buckets[kind]
        if not self._on or not bucket.per_minute:
            return None
        client = self._client(request)
        if not client:
            return None
        now = time.monotonic()
        if now - self._key_born >= KEY_SECONDS:
            self._rotate(now)
        digest = hashlib.blake2b(kind.encode() + b"\0" + client.encode("utf-8", "replace"), digest_size=16, key=self._key)
        return digest.digest(), bucket

    def _tokens(self, slot: bytes, bucket: Bucket, now: float) -> list[float]:
        state = self._state.get(slot)
        if state is None:
            state = [float(bucket.burst), now]
            self._state[slot] = state
            if len(self._state) > MAX_CLIENTS:
                self._state.popitem(last=False)
        else:
            self._state.move_to_end(slot)
            state[0] = min(float(bucket.burst), state[0] + (now - state[1]) * bucket.per_minute / 60)
            state[1] = now
        return state

    def check(self, request: web.Request, kind: str) -> None:
        """429 with an honest Retry-After when this client has no token left for `kind` (nothing taken)."""
        self._available(request, kind)

    def take(self, request: web.Request, kind: str) -> None:
        """Check, then use one token."""
        tokens = self._available(request, kind)
        if tokens is not None:
            tokens[0] -= 1

    def _available(self, request: web.Request, kind: str) -> list[float] | None:
        """This client's tokens for `kind` (None: not limited), or 429 when none is left."""
        found = self._slot(request, kind)
        if found is None:
            return None
        slot, bucket = found
        tokens = self._tokens(slot, bucket, time.monotonic())
        if tokens[0] < 1:
            raise RateLimited(math.ceil((1 - tokens[0]) * 60 / bucket.per_minute), MESSAGES[kind])
        return tokens

    def spend(self, request: web.Request, kind: str) -> None:
        """Use one token without checking (a failed code guess that already happened)."""
        found = self._slot(request, kind)
        if found is not None:
            slot, bucket = found
            self._tokens(slot, bucket, time.monotonic())[0] -= 1

    def __len__(self) -> int:
        return len(self._state)
