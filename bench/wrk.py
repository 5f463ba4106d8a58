"""Run wrk with bench/wrk.lua and read its one-line JSON summary.

wrk (Debian's package; `ops/bench.sh` installs it) is the load generator the
issue's figures were taken with: `-t2 -c16` on loopback.
"""

import json
import os
import secrets
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).with_name("wrk.lua")
TIMEOUT_S = 2.0  # wrk's --timeout: a request not answered by then counts as a time-out


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    timeouts: int
    socket_errors: int
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def rps(self) -> float:
        """Successful (2xx) answers per second: a refused request is not throughput."""
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return self.requests - self.ok + self.timeouts + self.socket_errors

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def p99_honest_ms(self) -> float:
        """wrk leaves requests that timed out out of its latencies: when more than 1 % of the
        requests timed out, the p99 is at least the time-out itself."""
        if self.timeouts > 0.01 * max(1, self.requests + self.timeouts):
            return max(self.p99_ms, TIMEOUT_S * 1000)
        return self.p99_ms

    def status_text(self) -> str:
        return ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items())) or "none"


def parse(output: str) -> WrkResult:
    line = next((x for x in output.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{output[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_ms"],
        p90_ms=data["p90_ms"],
        p99_ms=data["p99_ms"],
        max_ms=data["max_ms"],
        mean_ms=data["mean_ms"],
        timeouts=data["timeouts"],
        socket_errors=data["connect_errors"] + data["read_errors"] + data["write_errors"],
        statuses={int(k): v for k, v in data["statuses"].items()},
    )


def command(url: str, *, seconds: float, threads: int = 2, connections: int = 16, timeout_s: float = TIMEOUT_S) -> list[str]:
    return ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", f"--timeout={timeout_s:g}s", "-s", str(SCRIPT), url]


def start(url: str, *, mode: str = "get", path: str = "/", data: Path | None = None, seconds: float = 5,
          threads: int = 2, connections: int = 16) -> subprocess.Popen:
    """Start wrk without waiting (for runs beside something else); `finish` reads it."""
    # 28 fresh URL-safe characters per run: the prefix of this run's access tokens (bench/wrk.lua).
    env = {**os.environ, "BENCH_MODE": mode, "BENCH_PATH": path, "BENCH_RUN": secrets.token_urlsafe(21)}
    if data is not None:
        env["BENCH_DATA"] = str(data)
    return subprocess.Popen(command(url, seconds=seconds, threads=threads, connections=connections),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)


def finish(process: subprocess.Popen, seconds: float) -> WrkResult:
    try:
        output, _ = process.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise RuntimeError("wrk did not finish in time") from None
    return parse(output)


def run(url: str, **kwargs: object) -> WrkResult:
    seconds = float(kwargs.get("seconds", 5))  # type: ignore[arg-type]
    return finish(start(url, **kwargs), seconds)  # type: ignore[arg-type]


def median(results: list[WrkResult]) -> WrkResult:
    """The round with the median throughput (its own latencies with it, so the figures belong together)."""
    ranked = sorted(results, key=lambda r: r.rps)
    return ranked[len(ranked) // 2]


def median_of(values: list[float]) -> float:
    return statistics.median(values)
