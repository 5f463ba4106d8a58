"""Proof of work for anonymous writes: stateless challenges, single use, adaptive cost.

INTERFACES.md "Version 1.1 additions" fixes the contract; this module decides
the rest (issue 8):

* **Challenges are stateless to issue.** `challenge = salt(16) || mac(16)`
  where `salt = random(8) || expires(4) || bits(1) || ops(1) || log2(mem)(1) ||
  version(1)` (`expires` in whole minutes since the epoch, big-endian) and
  `mac` is a keyed BLAKE2b of `salt` under a key derived from the server's
  secret file. Any gateway process checks any process's challenge. The
  Argon2id salt is `challenge[0:16]`, unique per challenge.
* **Single use across processes.** A redeemed challenge is written to
  `rate_limits` as `pow:<b64 mac>` in the same transaction as the write it
  paid for (a primary key: the second use is 409 `stale_challenge`), with
  its expiry minute, and forgotten once expired.
* **Cheap checks first.** Format and MAC (400 `bad_pow`), expiry and the
  spent list (409 `stale_challenge`), and only then one Argon2id, inside a
  per-process bound (`KdfGate`), so bad challenges cost a hash, not memory.
* **Adaptive.** Every write that paid what was asked (no proof of work
  while `bits` is 0, a valid one otherwise) is counted in memory and added
  every half second to a per-window counter in `rate_limits`
  (`writes:<window>`, no address in it), shared by every process. Refused
  attempts do not count: they cost an attacker nothing, and counting them
  would let anyone raise every citizen's cost for free. The
  rate over the last two windows sets `bits`: `floor_bits` while it is at
  most `writes_per_minute`; above it `flood_bits`, plus 2 for each doubling
  of the excess, up to `max_bits`. When the flood ends the rate decays
  over at most two windows and `bits` falls back to the floor.
* A challenge issued under a demand more than one step (2 bits) below the
  current one is stale (409), so challenges fetched before a flood cannot
  be stockpiled to flood cheaply later; the browser silently solves anew.
"""

import asyncio
import contextlib
import datetime as dt
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import Connection, bindparam, delete, select

from crypto import CryptoError, b64, unb64
from crypto import pow as work
from gateway import secretbox
from gateway.db import Database, claim_once
from gateway.errors import BadRequest, Conflict, Forbidden
from gateway.kdfgate import KdfGate
from gateway.models import RateLimit
from gateway.settings import PowSettings
from gateway.writer import Tx

log = logging.getLogger("fristed.pow")

VERSION = 1
SPENT_PREFIX = "pow:"
# Built once: it runs before the Argon2id of every paid write.
SPENT = select(RateLimit.bucket).where(RateLimit.bucket == bindparam("bucket"))
WRITES_PREFIX = "writes:"
STEP_BITS = 2
# A try of at most this much Argon2id work (passes x bytes: 40-80 us here) is checked on the event
# loop: handing it to a thread cost more than the try, in CPU as much as in time (the thread's
# wake-up and the GIL going back and forth). Creations with proof of work at 8 KiB went from about
# 550 to 1,000-1,100 per second, against 1,100-1,490 without (issue 9, docs/write-path.md).
# Costlier tries (the default 1 MiB, about 0.85 ms) go to the gate's threads, so the loop never
# waits on them.
INLINE_WORK = 64 * 1024
TICK_SECONDS = 0.5
CLEAN_SECONDS = 60.0


def pow_required() -> Forbidden:
    return Forbidden("pow_required", "this server asks for proof of work now: get a challenge and solve it")


def bad_pow(why: str) -> BadRequest:
    return BadRequest("bad_pow", why)


def stale(why: str) -> Conflict:
    return Conflict("stale_challenge", why + "; get a new challenge and solve it again")


@dataclass(frozen=True)
class Issued:
    challenge: bytes
    bits: int
    ops: int
    mem: int
    expires: int  # epoch seconds, a whole minute

    def json(self) -> dict:
        moment = dt.datetime.fromtimestamp(self.expires, dt.UTC)
        return {
            "challenge": b64(self.challenge),
            "bits": self.bits,
            "ops": self.ops,
            "mem": self.mem,
            "expires": moment.strftime("%Y-%m-%dT%H:%MZ"),
        }


def _mac(secret_key: bytes, salt: bytes) -> bytes:
    return secretbox.keyed_hash(secret_key, "pow challenge", salt)[:16]


def issue(secret_key: bytes, bits: int, settings: PowSettings, now: float | None = None) -> Issued:
    """A new challenge, good until a whole minute at least `challenge_seconds` ahead."""
    moment = time.time() if now is None else now
    expires_minute = math.ceil((moment + settings.challenge_seconds) / 60)
    salt = (
        secrets.token_bytes(8)
        + expires_minute.to_bytes(4, "big")
        + bytes([bits, settings.ops, settings.mem.bit_length() - 1, VERSION])
    )
    return Issued(salt + _mac(secret_key, salt), bits, settings.ops, settings.mem, expires_minute * 60)


def read(secret_key: bytes, text: str) -> Issued:
    """The parameters a challenge was issued with; 400 `bad_pow` unless this deployment made it."""
    try:
        challenge = unb64(text, length=work.CHALLENGE_BYTES, field="challenge")
    except CryptoError:
        raise bad_pow("the challenge is not one this server made") from None
    salt, mac = challenge[:16], challenge[16:]
    if not secrets.compare_digest(_mac(secret_key, salt), mac) or salt[15] != VERSION:
        raise bad_pow("the challenge is not one this server made")
    expires = int.from_bytes(salt[8:12], "big") * 60
    return Issued(challenge, salt[12], salt[13], 1 << salt[14], expires)


def _spent_bucket(issued: Issued) -> str:
    return SPENT_PREFIX + b64(issued.challenge[16:])


def spend(issued: Issued) -> Callable[[Tx], None]:
    """A guard for the write's own transaction: the challenge is used by this write, or 409."""
    bucket = _spent_bucket(issued)

    def guard(tx: Tx) -> None:
        if not claim_once(tx.conn, bucket, issued.expires):
            raise stale("this challenge was used before")

    return guard


class PowControl:
    """This process's view of the demand (`bits`) and its share of the write count."""

    def __init__(self, db: Database, settings: PowSettings, secret_key: bytes) -> None:
        self.db = db
        self.settings = settings
        self.secret_key = secret_key
        self.bits = settings.floor_bits
        self.gate = KdfGate(concurrent=2, queue=64, seconds_each=0.05)
        self._offered = 0
        self._cleaned = 0.0

    def offered(self) -> None:
        """One anonymous write paid what was asked (counted whether or not the write then succeeds)."""
        self._offered += 1

    def target(self, per_minute: float) -> int:
        s = self.settings
        if per_minute <= s.writes_per_minute:
            return s.floor_bits
        doublings = math.floor(math.log2(per_minute / s.writes_per_minute))
        return max(s.floor_bits, min(s.max_bits, s.flood_bits + STEP_BITS * doublings))

    async def check(self, data: dict) -> Issued | None:
        """Everything before the write: 403/400/409 as INTERFACES.md 1.1 says; the challenge to spend."""
        given = data.get("pow")
        if given is None:
            if self.bits > 0:
                raise pow_required()
            return None
        if not isinstance(given, dict) or set(given) != {"challenge", "nonce"} or not all(
            isinstance(given[k], str) for k in given
        ):
            raise bad_pow("pow must be {challenge, nonce}, both b64")
        issued = read(self.secret_key, given["challenge"])
        try:
            nonce = unb64(given["nonce"], field="nonce")
        except CryptoError:
            raise bad_pow("the nonce is not b64") from None
        if not work.MIN_NONCE <= len(nonce) <= work.MAX_NONCE:
            raise bad_pow("the nonce must be 8 to 32 bytes")
        if issued.expires <= time.time():
            raise stale("the challenge expired")
        if issued.bits < self.bits - STEP_BITS:
            raise stale("the server asks for more work now")
        if await self.db.read_rows(SPENT, {"bucket": _spent_bucket(issued)}):
            raise stale("this challenge was used before")
        if issued.ops * issued.mem <= INLINE_WORK:
            ok = work.meets(nonce, issued.challenge, issued.bits, issued.ops, issued.mem)
        else:
            ok = await self.gate.run(work.meets, nonce, issued.challenge, issued.bits, issued.ops, issued.mem)
        if not ok:
            raise bad_pow("the nonce does not solve the challenge")
        return issued

    async def tick(self) -> None:
        """Add this process's attempts to the shared counter, then read the rate and set `bits`."""
        s, now = self.settings, time.time()
        window = int(now // s.window_seconds)
        offered, self._offered = self._offered, 0
        if offered:
            bucket = f"{WRITES_PREFIX}{window}"

            def add(tx: Tx) -> None:
                tx.count(bucket, offered, window_start=window * s.window_seconds)

            await self.db.transact(add)
        buckets = (f"{WRITES_PREFIX}{window}", f"{WRITES_PREFIX}{window - 1}")
        current, previous = await self.db.read_core(
            lambda conn: tuple(_count(conn, bucket) + self.db.unwritten(bucket) for bucket in buckets)
        )
        into = now - window * s.window_seconds
        per_second = (current + previous * max(0.0, 1 - into / s.window_seconds)) / s.window_seconds
        bits = self.target(per_second * 60)
        if bits != self.bits:
            log.info("proof of work: %d bits (was %d)", bits, self.bits)
            self.bits = bits
        if now - self._cleaned > CLEAN_SECONDS:
            self._cleaned = now
            await self.db.transact(lambda tx: _forget(tx.conn, int(now), window - 2, s.window_seconds), heavy=True)


def _count(conn: Connection, bucket: str) -> int:
    return int(conn.scalar(select(RateLimit.count).where(RateLimit.bucket == bucket)) or 0)


def _forget(conn: Connection, now: int, oldest_window: int, window_seconds: int) -> None:
    """Spent challenges that expired, and write counters older than two windows."""
    conn.execute(delete(RateLimit).where(RateLimit.bucket.startswith(SPENT_PREFIX), RateLimit.window_start < now))
    conn.execute(
        delete(RateLimit).where(
            RateLimit.bucket.startswith(WRITES_PREFIX), RateLimit.window_start < oldest_window * window_seconds
        )
    )


async def control_loop(app: web.Application) -> AsyncIterator[None]:
    """The per-process loop that keeps `bits` current (cleanup context)."""
    from gateway.appkeys import POW

    control = app[POW]

    async def run() -> None:
        while True:
            try:
                await control.tick()
            except Exception as exc:  # the database may be briefly away: keep the last bits, try again
                log.warning("proof-of-work tick failed: %s", type(exc).__name__)
            await asyncio.sleep(TICK_SECONDS)

    task = asyncio.create_task(run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
