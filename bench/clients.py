"""The Python side of the load: request bodies for wrk, a consultant over HTTP, SSE and inbox probes.

Everything a citizen's browser computes (keys, sealed envelopes) is prepared
before timing starts. Access tokens for creations are made by wrk itself
(bench/wrk.lua), so each creation is a new thread however fast the gateway is.
"""

import asyncio
import contextlib
import json
import secrets
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pyotp
from nacl.public import PrivateKey

from crypto import b64, derive_staff, seal_envelope, unb64

try:
    from crypto.envelope2 import CITIZEN, Binding, seal_v2
except ImportError:  # before issue 11
    seal_v2 = None  # type: ignore[assignment]

TEXT = "Jeg har brug for at tale med nogen. " * 8  # about 300 characters, like a short first message
CREATE_POOL = 64


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (the value at or below which `pct` % of the samples lie)."""
    if not values:
        return float("nan")
    ranked = sorted(values)
    index = max(0, min(len(ranked) - 1, int(-(-pct * len(ranked) // 100)) - 1))
    return ranked[index]


@dataclass
class CitizenData:
    config_bytes: int
    team: str
    team_pk: bytes
    pow_bits: int
    create: Path
    open: Path
    reply: Path
    reply_threads: int
    create_version: int


def _sealed(team_pk: bytes, version: int = 2) -> tuple[bytes, dict]:
    """A new citizen key and the first message of its thread, sealed as the write page seals it
    (envelope v2 where the code has it, issue 11), or as version 1."""
    citizen = PrivateKey.generate()
    pk = bytes(citizen.public_key)
    if version == 2 and seal_v2 is not None:
        return pk, seal_v2({"text": TEXT}, Binding(CITIZEN, 1, pk, team_pk), bytes(citizen))
    return pk, seal_envelope({"text": TEXT}, [team_pk, pk])


def create_body(team: str, pk: bytes, envelope: dict, token: str) -> str:
    return json.dumps({"team": team, "citizen_pk": b64(pk), "access_token": token, "envelope": envelope},
                      separators=(",", ":"))


async def prepare_citizens(url: str, work: Path, reply_threads: int) -> CitizenData:
    """Bodies for wrk: creation templates, `reply_threads` real threads (made through the API) to answer, and as
    many others to open. Opens never read the threads replies grow: a round's opens would otherwise read the
    messages of every earlier round's replies, and the figure would depend on the round."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        async with http.get(url + "/api/v1/config") as answer:
            raw = await answer.read()
        config = json.loads(raw)
        team = config["teams"][0]
        team_pk = unb64(team["pk"])
        pow_bits = int((config.get("pow") or {}).get("bits", 0))
        pool = [_sealed(team_pk) for _ in range(CREATE_POOL)]
        lines = [secrets.token_urlsafe(21)[:28]] + [create_body(team["id"], pk, env, "@@TOKEN@@") for pk, env in pool]
        (work / "create.txt").write_text("\n".join(lines) + "\n")

        threads: list[tuple[str, bytes]] = []
        semaphore = asyncio.Semaphore(8)

        async def make_one() -> None:
            # Version 1: a v2 reply binds the seq it will get, which bodies made before timing cannot know.
            pk, envelope = _sealed(team_pk, version=1)
            token = b64(secrets.token_bytes(32))
            async with semaphore, http.post(url + "/api/v1/threads", data=create_body(team["id"], pk, envelope, token),
                                            headers={"Content-Type": "application/json"}) as answer:
                if answer.status == 201:
                    threads.append((token, pk))
                else:
                    raise RuntimeError(f"creating a thread to answer answered {answer.status}: {await answer.text()}")

        await asyncio.gather(*(make_one() for _ in range(2 * reply_threads)))
    opened, answered = threads[:reply_threads], threads[reply_threads:]
    (work / "open.txt").write_text("".join(json.dumps({"access_token": t}) + "\n" for t, _ in opened))
    (work / "reply.txt").write_text("".join(
        json.dumps({"access_token": t, "envelope": seal_envelope({"text": TEXT}, [team_pk, pk])}, separators=(",", ":")) + "\n"
        for t, pk in answered))
    return CitizenData(len(raw), team["id"], team_pk, pow_bits, work / "create.txt", work / "open.txt",
                       work / "reply.txt", len(answered), int(pool[0][1]["v"]))


# --- a consultant ------------------------------------------------------------------------------


@dataclass
class Staff:
    cookie: str
    csrf: str

    def headers(self) -> dict[str, str]:
        return {"Cookie": f"fristed_staff={self.cookie}", "X-CSRF-Token": self.csrf}


async def staff_login(url: str, username: str, passphrase: str, totp_secret: str) -> Staff:
    """What the login page does: prelogin, Argon2id, auth_key + a TOTP code."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=30)) as http:
        async with http.post(url + "/api/v1/staff/prelogin", json={"username": username}) as answer:
            pre = await answer.json()
        keys = derive_staff(passphrase, unb64(pre["salt"]), pre["kdf"]["ops"], pre["kdf"]["mem"])
        body = {"username": username, "auth_key": b64(keys.auth_key), "totp": pyotp.TOTP(totp_secret).now()}
        async with http.post(url + "/api/v1/staff/login", json=body) as answer:
            found = await answer.json()
            if answer.status != 200:
                raise RuntimeError(f"staff login answered {answer.status}: {found}")
            return Staff(answer.cookies["fristed_staff"].value, found["csrf"])


# --- request -> SSE event ----------------------------------------------------------------------


async def sse_latencies(url: str, staff: Staff, data: CitizenData, *, probes: int, seconds: float,
                        wait: float = 5.0, write_url: str | None = None) -> tuple[list[float], int]:
    """Create threads one at a time and time each until its `thread_new` reaches an open inbox stream.

    Returns (latencies in ms, probes that got no event within `wait` s). Other load
    (wrk replies) makes `message_new` events only, so a `thread_new` is the probe's.
    With `write_url` the threads are created through another gateway process than the
    one holding the stream.
    """
    arrivals: asyncio.Queue[float] = asyncio.Queue()
    latencies: list[float] = []
    lost = 0
    pool = [_sealed(data.team_pk) for _ in range(4)]
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout) as http:

        async def listen() -> None:
            while True:
                async with http.get(url + "/api/v1/staff/events", headers=staff.headers()) as stream:
                    kind = ""
                    async for raw in stream.content:
                        line = raw.decode().rstrip("\n")
                        if line.startswith("event:"):
                            kind = line[6:].strip()
                        elif line.startswith("data:") and kind == "thread_new":
                            arrivals.put_nowait(time.monotonic())
                # The server cut the stream (e.g. a reader too slow under load): reconnect at once.

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.5)
        deadline = time.monotonic() + seconds
        try:
            for n in range(probes):
                if time.monotonic() > deadline:
                    break
                while not arrivals.empty():
                    arrivals.get_nowait()
                pk, envelope = pool[n % len(pool)]
                body = create_body(data.team, pk, envelope, b64(secrets.token_bytes(32)))
                started = time.monotonic()
                async with http.post((write_url or url) + "/api/v1/threads", data=body,
                                     headers={"Content-Type": "application/json"}) as answer:
                    await answer.read()
                    if answer.status != 201:
                        raise RuntimeError(f"a probe creation answered {answer.status}")
                try:
                    arrived = await asyncio.wait_for(arrivals.get(), wait)
                    latencies.append((arrived - started) * 1000)
                except TimeoutError:
                    lost += 1
                await asyncio.sleep(0.05)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
    return latencies, lost


# --- the staff inbox list ----------------------------------------------------------------------


@dataclass
class ListTimes:
    sequential_ms: list[float]
    concurrent_ms: list[float]
    raw_bytes: int
    sent_bytes: int
    encoding: str
    threads_in_answer: int
    paged: bool


async def _timed_get(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> tuple[float, bytes, dict]:
    started = time.monotonic()
    async with http.get(url, headers=headers) as answer:
        body = await answer.read()
        if answer.status != 200:
            raise RuntimeError(f"GET {url} answered {answer.status}")
        return (time.monotonic() - started) * 1000, body, dict(answer.headers)


async def list_times(url: str, headers: dict[str, str], *, sequential: int, concurrency: int, each: int) -> ListTimes:
    """p95 of one client in a row, then of `concurrency` clients at once; the answer's size raw and as sent."""
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout, auto_decompress=False) as http:
        _ms, raw, _h = await _timed_get(http, url, {**headers, "Accept-Encoding": "identity"})
        _ms, sent, sent_headers = await _timed_get(http, url, {**headers, "Accept-Encoding": "gzip"})
        browser = {**headers, "Accept-Encoding": "gzip, deflate"}
        for _ in range(3):  # warm-up
            await _timed_get(http, url, browser)
        sequential_ms = [(await _timed_get(http, url, browser))[0] for _ in range(sequential)]

        async def client() -> list[float]:
            return [(await _timed_get(http, url, browser))[0] for _ in range(each)]

        concurrent = await asyncio.gather(*(client() for _ in range(concurrency)))
    threads_in_answer, paged = 0, False
    try:
        document = json.loads(raw)
        if isinstance(document, dict):
            threads_in_answer = len(document.get("threads", []))
            paged = bool(document.get("next"))
    except ValueError:
        pass
    return ListTimes(sequential_ms, [x for c in concurrent for x in c], len(raw), len(sent),
                     sent_headers.get("Content-Encoding", "identity"), threads_in_answer, paged)


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"n={len(values)} p50 {percentile(values, 50):.1f} ms, p95 {percentile(values, 95):.1f} ms, "
            f"p99 {percentile(values, 99):.1f} ms, max {max(values):.1f} ms, mean {statistics.fmean(values):.1f} ms")
