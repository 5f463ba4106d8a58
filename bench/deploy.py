"""Bench deployments: `fristed init --demo`, abuse limits opened up for one loopback client, `fristed serve`.

A benchmark is one client on 127.0.0.1 sending thousands of writes a second:
exactly what the per-client limits, the per-team hourly cap and adaptive proof
of work (issue 8) exist to refuse. `open_limits` raises every such limit in
the bench deployment's `fristed.toml` to the highest value the gateway accepts
(found by asking `gateway.settings` itself) and keeps `pow.floor_bits` at 0;
the report lists each change. Costs (Argon2id, sizes) are left as `init`
writes them.
"""

import os
import re
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from tests.support import Demo, init_demo

FRISTED = str(Path(sys.executable).with_name("fristed"))
HIGH = 10**9
TABLES = ("limits", "rate", "pow")
KEEP = {"max_text_chars", "max_envelope_bytes", "max_bits"}
_RANGE = re.compile(r"setting (\S+) must be an integer from (-?\d+) to (-?\d+)")


def _is_limit(table: str, key: str) -> bool:
    """A count a client can run into (raise it), not a cost, size or time (leave it)."""
    if table not in TABLES or key in KEEP or any(w in key for w in ("seconds", "window", "ops", "mem")):
        return False
    return "per_" in key or key.startswith("max_") or key.endswith(("burst", "_rate"))


def set_key(text: str, table: str, key: str, value: str) -> str:
    """`key = value` in [table] of a TOML text: replaced where it is, else added to the table (or a new one)."""
    lines = text.splitlines()
    section = None
    table_end = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            if section == table:
                table_end = i
            section = stripped.strip("[]").strip()
        elif section == table and re.match(rf"{re.escape(key)}\s*=", stripped):
            lines[i] = f"{key} = {value}"
            return "\n".join(lines) + "\n"
    if section == table:
        table_end = len(lines)
    if table_end is None:
        lines += ["", f"[{table}]", f"{key} = {value}"]
    else:
        lines.insert(table_end, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def _defaults() -> dict:
    try:
        from gateway.settings import DEFAULTS
    except ImportError:
        return {}
    return DEFAULTS


def open_limits(data_dir: Path) -> list[str]:
    """Raise every per-client/per-team/flood limit to its highest accepted value; the changes made."""
    from gateway.settings import SettingsError, load_settings

    path = data_dir / "fristed.toml"
    text = path.read_text()
    config = tomllib.loads(text)
    wanted: dict[tuple[str, str], int] = {}
    for table in TABLES:
        keys = {**(_defaults().get(table) or {}), **(config.get(table) or {})}
        for key, value in keys.items():
            if type(value) is int and _is_limit(table, key):
                wanted[(table, key)] = HIGH
    if "floor_bits" in (_defaults().get("pow") or {}) or "floor_bits" in (config.get("pow") or {}):
        wanted[("pow", "floor_bits")] = 0
    for _attempt in range(4 * len(wanted) + 1):
        candidate = text
        for (table, key), value in wanted.items():
            candidate = set_key(candidate, table, key, str(value))
        path.write_text(candidate)
        try:
            load_settings(data_dir, {})
            break
        except SettingsError as exc:
            match = _RANGE.search(str(exc))
            name = match.group(1) if match else ""
            table, _, key = name.partition(".")
            if (table, key) not in wanted:
                path.write_text(text)
                raise RuntimeError(f"the bench settings were refused: {exc}") from None
            wanted[(table, key)] = int(match.group(3)) if match else wanted[(table, key)] // 10
    return [f"[{t}] {k} = {v}" for (t, k), v in sorted(wanted.items())]


@dataclass
class Gateway:
    url: str
    port: int
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        procs.stop(self.process)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def make(base: Path, name: str, env: dict[str, str] | None = None, cheap: bool = False) -> tuple[Demo, list[str]]:
    """A fresh demo deployment under `base/name` with its limits opened; (demo, changes)."""
    demo = init_demo(base / name, env=env, cheap=cheap)
    return demo, open_limits(demo.data_dir)


def serve(demo: Demo, env: dict[str, str] | None = None, port: int | None = None) -> Gateway:
    port = port or procs.free_port()
    log = demo.data_dir.parent / f"{demo.data_dir.name}-serve-{port}.log"
    process = procs.start([FRISTED, "serve", "--data-dir", str(demo.data_dir), "--port", str(port)], log,
                          {**demo.env, **(env or {}), "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_http(url + "/api/v1/config", process, timeout=60)
    except RuntimeError:
        procs.stop(process)
        raise RuntimeError(f"fristed serve did not start:\n{log.read_text(errors='replace')[-3000:]}") from None
    return Gateway(url, port, process, log)


def run_fristed(demo: Demo, *args: str, timeout: float) -> tuple[float, subprocess.CompletedProcess]:
    """Run a `fristed` command on the deployment, bounded; (wall seconds, result)."""
    started = time.monotonic()
    process = subprocess.Popen([FRISTED, *args, "--data-dir", str(demo.data_dir)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, **demo.env},
                               start_new_session=True)
    procs.track(process)  # stopped at exit if it outlives us
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        procs.stop(process, grace=2)
        raise
    procs.untrack(process)
    return time.monotonic() - started, subprocess.CompletedProcess(process.args, process.returncode, out, err)
