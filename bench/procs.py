"""Every process the suite starts is registered here and stopped at the end, whatever happens.

Each runs in its own session (process group), so stopping it stops its children
too. `stop_all` runs from `atexit` and from SIGTERM/SIGINT/SIGHUP (turned into
SystemExit, so `finally` blocks run); `ops/bench.sh` adds a shell trap on top.
"""

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

_started: list[subprocess.Popen] = []
_cleanups: list[Callable[[], None]] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    handle = log.open("ab")
    process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                               start_new_session=True)
    handle.close()
    _started.append(process)
    return process


def track(process: subprocess.Popen) -> None:
    _started.append(process)


def untrack(process: subprocess.Popen) -> None:
    if process in _started:
        _started.remove(process)


def stop(process: subprocess.Popen, grace: float = 10) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(Exception):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    untrack(process)


def on_exit(cleanup: Callable[[], None]) -> None:
    """Run `cleanup` at the end (after the processes are stopped), e.g. stopping PostgreSQL."""
    _cleanups.append(cleanup)


def stop_all() -> None:
    for process in list(reversed(_started)):
        with contextlib.suppress(Exception):
            stop(process, grace=5)
    while _cleanups:
        cleanup = _cleanups.pop()
        with contextlib.suppress(Exception):
            cleanup()


def wait_http(url: str, process: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


def _on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def install() -> None:
    atexit.register(stop_all)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, _on_signal)


def rss_kib(pid: int) -> int:
    """Resident set size of a process and its children, in KiB (0 once it is gone)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    kids = [int(x) for x in found]
    return kids + [g for k in kids for g in _children(k)]


class RssSampler:
    """Samples a process tree's RSS every `interval` seconds in a thread; `peak` in MiB."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval = pid, interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(rss_kib(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return max(self.samples, default=0) / 1024


def cpu_seconds(gateways: set[int]) -> dict[str, float]:
    """CPU time (user + system) used so far, summed by who used it.

    "gateway" is the given processes and their children; "postgres" goes by process
    name; "kernel" is the kernel's own threads (disk writeback and the like, which a
    commit's fsync sets going); "ended children" is what this process's children used
    once they exited and were waited for (a finished wrk run); anything else is "other".
    Each process counts with the children it has waited for, so the CPU of a process
    that ends between two readings (a PostgreSQL backend whose connection a pool
    closed) stays counted, in its parent.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    mine = set(gateways) | {c for g in gateways for c in _children(g)}
    used = {"gateway": 0.0, "postgres": 0.0, "kernel": 0.0, "ended children": 0.0, "other": 0.0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        pid, name = int(entry), stat[stat.index("(") + 1:stat.rindex(")")]
        # Fields after the name, from state (field 3 of proc(5)): ppid is field 4,
        # utime, stime, cutime, cstime are fields 14 to 17.
        fields = stat[stat.rindex(")") + 2:].split()
        own = (int(fields[11]) + int(fields[12])) / ticks
        waited = (int(fields[13]) + int(fields[14])) / ticks
        if pid == os.getpid():
            used["other"] += own
            used["ended children"] += waited
            continue
        if pid in mine:
            who = "gateway"
        elif name == "postgres":
            who = "postgres"
        elif int(fields[1]) == 2 or pid == 2:  # kthreadd and its children
            who = "kernel"
        else:
            who = "other"
        used[who] += own + waited
    return used


def python() -> str:
    return sys.executable
