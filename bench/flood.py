"""A bounded flood against a running gateway, as an attacker would try it (issue 8).

    python -m bench.flood [--url URL --pid PID] [--seconds N] [--header X-Real-IP]

From its own process it sends, for N seconds and from a few concurrent
attackers: wrong access tokens (code guessing), oversized bodies, malformed and
deeply nested JSON, thread creations without proof of work and creations that
pay it. Meanwhile one legitimate citizen writes a thread every few tenths of a
second, solving the proof of work when `/api/v1/config` asks for it, and
`pow.bits` is sampled. After the flood it waits for `bits` to fall back.

It prints one JSON summary: writes offered, answers by status per kind,
5xx count, legitimate write latency (p50/p99 of the POST, and of solve+POST),
`bits` before/peak/after, the 429s' `Retry-After`, and the peak RSS of `--pid`
(VmHWM from /proc). Without `--url` it makes its own demo deployment in a
temporary directory (`fristed init --demo`, a short PoW window, per-client
limits keyed by `--header`), serves it on a free loopback port, floods it
and stops it: that is what `ops/bench.sh` runs. `tests/api/test_flood.py`
runs it against a `fristed serve` of its own.

With `--header`, each attacker kind sends one fixed client address in that
header (as a reverse proxy would) and the legitimate citizen a different one,
so per-client limits can tell them apart; without it every request is one
client (the loopback peer).
"""

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import aiohttp

from crypto import b64, unb64
from crypto import pow as work
from crypto.derive import public_key
from crypto.envelope import seal_envelope

ATTACKERS = ("bad_token", "oversized", "bad_json", "deep_json", "write_no_pow", "write_no_pow", "write_pow")
WRITE_KINDS = ("write_no_pow", "write_pow")
EXPECTED = {201, 400, 403, 404, 409, 413, 429}


class Flood:
    def __init__(self, url: str, seconds: float, header: str | None, pid: int | None):
        self.url = url.rstrip("/")
        self.seconds = seconds
        self.header = header
        self.pid = pid
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)
        self.retry_after: Counter[str] = Counter()
        self.legit_post_ms: list[float] = []
        self.legit_total_ms: list[float] = []
        self.bits: list[tuple[float, int]] = []
        self.rss_kb: list[int] = []
        self.stop_at = 0.0

    def headers(self, who: str) -> dict[str, str]:
        if not self.header:
            return {}
        # Documentation addresses (RFC 5737): one per attacker kind, and one per legitimate write.
        if who == "legit":
            return {self.header: f"198.51.100.{secrets.randbelow(250) + 1}"}
        return {self.header: f"203.0.113.{ATTACKERS.index(who) + 1}"}

    async def config(self, http: aiohttp.ClientSession) -> dict:
        async with http.get(self.url + "/api/v1/config") as response:
            return await response.json()

    def new_thread(self, config: dict) -> dict:
        team = config["teams"][0]
        z_sk = secrets.token_bytes(32)
        z_pk = public_key(z_sk)
        envelope = seal_envelope({"text": "flood"}, [unb64(team["pk"]), z_pk])
        return {"team": team["id"], "citizen_pk": b64(z_pk), "access_token": b64(secrets.token_bytes(32)), "envelope": envelope}

    async def solved(self, http: aiohttp.ClientSession, who: str) -> dict | None:
        """A solved challenge, or None when the flood ended first (the solving thread stops too)."""
        async with http.post(self.url + "/api/v1/challenge", json={}, headers=self.headers(who)) as response:
            issued = await response.json()
        raw = unb64(issued["challenge"])
        nonce = await asyncio.to_thread(_solve_until, raw, issued["bits"], issued["ops"], issued["mem"], self.stop_at)
        return None if nonce is None else {"challenge": issued["challenge"], "nonce": b64(nonce)}

    async def send(self, http: aiohttp.ClientSession, kind: str, config: dict, body_limit: int) -> None:
        path, data = "/api/v1/threads", None
        if kind == "bad_token":
            path, data = "/api/v1/threads/open", json.dumps({"access_token": b64(secrets.token_bytes(32))})
        elif kind == "oversized":
            data = '{"pad": "' + "x" * (body_limit + 1024) + '"}'
        elif kind == "bad_json":
            data = '{"team": "demo", "envelope": {'
        elif kind == "deep_json":
            data = "[" * 20_000 + "]" * 20_000
        else:
            body = self.new_thread(config)
            if kind == "write_pow":
                paid = await self.solved(http, kind)
                if paid is None:
                    return
                body["pow"] = paid
            data = json.dumps(body)
        headers = {"Content-Type": "application/json", **self.headers(kind)}
        try:
            async with http.post(self.url + path, data=data, headers=headers) as response:
                await response.read()
                self.statuses[kind][response.status] += 1
                if response.status == 429:
                    self.retry_after[response.headers.get("Retry-After", "missing")] += 1
        except aiohttp.ClientError:
            # The server may close the connection after refusing an oversized body: that is its answer.
            self.statuses[kind][0] += 1

    async def attacker(self, http: aiohttp.ClientSession, kind: str, config: dict, body_limit: int) -> None:
        while time.monotonic() < self.stop_at:
            await self.send(http, kind, config, body_limit)

    async def legitimate(self, http: aiohttp.ClientSession) -> None:
        while time.monotonic() < self.stop_at:
            started = time.monotonic()
            config = await self.config(http)
            body = self.new_thread(config)
            if config["pow"]["bits"] > 0:
                paid = await self.solved(http, "legit")
                if paid is None:
                    break
                body["pow"] = paid
            posted = time.monotonic()
            async with http.post(self.url + "/api/v1/threads", json=body, headers=self.headers("legit")) as response:
                await response.read()
                self.statuses["legitimate"][response.status] += 1
                if response.status == 201:
                    done = time.monotonic()
                    self.legit_post_ms.append((done - posted) * 1000)
                    self.legit_total_ms.append((done - started) * 1000)
            await asyncio.sleep(0.3)

    async def watch(self, http: aiohttp.ClientSession, until: float) -> None:
        start = time.monotonic()
        while time.monotonic() < until:
            self.bits.append((round(time.monotonic() - start, 2), (await self.config(http))["pow"]["bits"]))
            if self.pid:
                self.rss_kb.append(_proc_kb(self.pid, "VmRSS"))
            await asyncio.sleep(0.2)

    async def run(self) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=64)) as http:
            config = await self.config(http)
            floor = config["pow"]["bits"]
            body_limit = config["limits"]["max_envelope_bytes"] + 16 * 1024
            self.stop_at = time.monotonic() + self.seconds
            watcher = asyncio.create_task(self.watch(http, self.stop_at))
            tasks = [asyncio.create_task(self.attacker(http, kind, config, body_limit)) for kind in ATTACKERS]
            tasks += [asyncio.create_task(self.legitimate(http)), watcher]
            # Bounded: whatever is still waiting for an answer shortly after the end is cancelled.
            _done, pending = await asyncio.wait(tasks, timeout=self.seconds + 5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            peak = max((b for _, b in self.bits), default=floor)
            fell_back = None
            started = time.monotonic()
            while time.monotonic() - started < 60:
                if (await self.config(http))["pow"]["bits"] <= floor:
                    fell_back = round(time.monotonic() - started, 2)
                    break
                await asyncio.sleep(0.25)
            after = (await self.config(http))["pow"]["bits"]
        return self.summary(floor, peak, after, fell_back)

    def summary(self, floor: int, peak: int, after: int, fell_back: float | None) -> dict[str, Any]:
        everything = Counter[int]()
        for counts in self.statuses.values():
            everything.update(counts)
        writes = {kind: sum(self.statuses[kind].values()) for kind in (*WRITE_KINDS, "legitimate")}
        refused = Counter[int]()
        for kind in (*WRITE_KINDS, "legitimate"):
            refused.update({status: n for status, n in self.statuses[kind].items() if status != 201})
        return {
            "seconds": self.seconds,
            "requests": sum(everything.values()),
            "writes_offered": sum(writes.values()),
            "writes_by_kind": writes,
            "writes_refused_by_status": {str(s): n for s, n in sorted(refused.items())},
            "status_by_kind": {kind: {str(s): n for s, n in sorted(c.items())} for kind, c in sorted(self.statuses.items())},
            "five_xx": sum(n for s, n in everything.items() if s >= 500),
            "unexpected": {str(s): n for s, n in everything.items() if s not in EXPECTED},
            "retry_after": dict(self.retry_after),
            "legitimate": {
                "ok": len(self.legit_post_ms),
                "post_p50_ms": _percentile(self.legit_post_ms, 50), "post_p99_ms": _percentile(self.legit_post_ms, 99),
                "with_pow_p50_ms": _percentile(self.legit_total_ms, 50), "with_pow_p99_ms": _percentile(self.legit_total_ms, 99),
            },
            "bits": {"before": floor, "peak": peak, "after": after, "fell_back_after_s": fell_back,
                     "timeline": self.bits[:: max(1, len(self.bits) // 40)]},
            "rss_kb": {"peak": _proc_kb(self.pid, "VmHWM") if self.pid else None,
                       "max_sampled": max(self.rss_kb, default=None)},
        }


def _solve_until(challenge: bytes, bits: int, ops: int, mem: int, deadline: float) -> bytes | None:
    """crypto.pow.solve, giving up at `deadline` (time.monotonic())."""
    while time.monotonic() < deadline:
        nonce = secrets.token_bytes(work.MIN_NONCE)
        if work.meets(nonce, challenge, bits, ops, mem):
            return nonce
    return None


def _percentile(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, (len(ordered) * pct) // 100)], 1)


def _proc_kb(pid: int, field: str) -> int:
    """A `kB` field of /proc/PID/status (VmRSS now, VmHWM the peak); 0 if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def _own_deployment(header: str) -> tuple[str, subprocess.Popen, Path]:
    """A demo deployment with a short PoW window on a free loopback port (the `fristed` next to this Python)."""
    fristed = str(Path(sys.executable).with_name("fristed"))
    base = Path(tempfile.mkdtemp(prefix="fristed-flood-"))
    data = base / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("FRISTED_DATA_DIR", "FRISTED_DATABASE_URL")}
    subprocess.run([fristed, "init", "--demo", "--data-dir", str(data)], check=True, capture_output=True, env=env, timeout=120)
    toml = data / "fristed.toml"
    text = toml.read_text()
    for table, key, value in (("pow", "window_seconds", "5"), ("pow", "writes_per_minute", "60"),
                              ("proxy", "client_address_header", json.dumps(header))):
        text = re.sub(rf"(?ms)(^\[{table}\]$.*?^){key} = [^\n]*$", rf"\g<1>{key} = {value}", text, count=1)
    toml.write_text(text)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([fristed, "serve", "--data-dir", str(data), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return url, server, base
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("bench.flood: the gateway did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running gateway (default: start a demo deployment of its own)")
    parser.add_argument("--pid", type=int, help="the gateway's process id, for its peak RSS")
    parser.add_argument("--seconds", type=float, default=15, help="how long the flood lasts (default 15)")
    parser.add_argument("--header", help="the client-address header the gateway trusts (proxy.client_address_header)")
    args = parser.parse_args(argv)
    server = base = None
    url, pid, header = args.url, args.pid, args.header
    if url is None:
        header = header or "X-Real-IP"
        url, server, base = _own_deployment(header)
        pid = server.pid
    try:
        result = asyncio.run(Flood(url, args.seconds, header, pid).run())
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
    sys.stdout.write(json.dumps(result, indent=1) + "\n")
    return 1 if result["five_xx"] else 0


if __name__ == "__main__":
    sys.exit(main())
