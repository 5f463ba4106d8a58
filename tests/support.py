"""Shared test helpers: the real `fristed` command, live servers, PostgreSQL.

Factories, not mocks: every helper drives a real part (the installed command,
a real SQLite file, a real PostgreSQL server, a real HTTP server).
"""

import email
import email.message
import email.policy
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

FRISTED = str(Path(sys.executable).with_name("fristed"))
# Argon2id made cheap where a test is not about its cost (libsodium minimums are ops 1, 8 KiB).
CHEAP_KDF = {"ops": 1, "mem": 8192}
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_fristed(*args: str, data_dir: Path | None = None, env: dict[str, str] | None = None,
                check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the installed `fristed` command as an operator would."""
    full_env = {k: v for k, v in os.environ.items() if k != "FRISTED_DATA_DIR"}
    full_env.update(env or {})
    argv = [FRISTED, *args]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    result = subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"fristed {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def set_kdf(data_dir: Path, ops: int, mem: int) -> None:
    """Rewrite the [kdf] table of DIR/fristed.toml."""
    path = data_dir / "fristed.toml"
    text = path.read_text()
    text = re.sub(r"(?m)^ops = \d+$", f"ops = {ops}", text)
    text = re.sub(r"(?m)^mem = \d+$", f"mem = {mem}", text)
    path.write_text(text)


def set_option(data_dir: Path, table: str | None, key: str, value: str) -> None:
    """Set `key = value` (value is TOML) in DIR/fristed.toml, at top level or in [table]."""
    path = data_dir / "fristed.toml"
    lines = path.read_text().splitlines()
    section = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.strip("[]")
        elif section == table and stripped.startswith(f"{key} ="):
            lines[i] = f"{key} = {value}"
            break
    else:
        raise AssertionError(f"no {key} in [{table}]")
    path.write_text("\n".join(lines) + "\n")


@dataclass
class Demo:
    """A data dir made by `fristed init --demo`."""

    data_dir: Path
    passphrase: str
    totp_secret: str
    env: dict[str, str]


def init_demo(data_dir: Path, env: dict[str, str] | None = None, cheap: bool = True) -> Demo:
    """`fristed init --demo`, then (by default) cheap Argon2id for new citizen threads and enrolments."""
    out = run_fristed("init", "--demo", data_dir=data_dir, env=env).stdout
    passphrase = re.search(r"(?m)^demo passphrase: (\S+)$", out)
    secret = re.search(r"(?m)^demo totp secret: ([A-Z2-7]+)$", out)
    assert passphrase and secret, out
    if cheap:
        set_kdf(data_dir, **CHEAP_KDF)
    return Demo(data_dir, passphrase.group(1), secret.group(1), env or {})


class LiveServer:
    """`fristed serve` in its own process on a free loopback port; its output goes to a file."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, port: int | None = None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen | None = None

    def start(self) -> "LiveServer":
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [FRISTED, "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, env=self.env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"fristed serve exited:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/config", timeout=2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"fristed serve did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if hasattr(self, "_log"):
            self._log.close()

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PostgresServer:
    """A throwaway PostgreSQL 15 cluster, run as user postgres (pg_ctl refuses root)."""

    def __init__(self, base: Path):
        self.base = base
        self.data = base / "pgdata"
        self.sockets = base / "sockets"
        self.port = free_port()
        self._count = 0

    def _as_postgres(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=60)

    def start(self) -> "PostgresServer":
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError("PostgreSQL 15 is not installed (ops/setup.sh --test installs it)")
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        os.chmod(self.base, 0o777)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
            shutil.chown(self.sockets, "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "--auth-local=trust", "--auth-host=trust", "-U", "postgres")
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "pg.log"), "-w",
            "-o", f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.sockets} -c fsync=off",
            "start",
        )
        return self

    def create_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        self._count += 1
        name = f"fristed_{os.getpid()}_{self._count}"
        self._as_postgres(str(PG_BIN / "createdb"), "-h", str(self.sockets), "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql+asyncpg://postgres@/{name}?host={self.sockets}&port={self.port}"

    def stop(self) -> None:
        try:
            self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        except subprocess.CalledProcessError:
            pass

    def resume(self) -> None:
        """Start the cluster again after `stop()` (same data, port and sockets)."""
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "pg.log"), "-w",
            "-o", f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.sockets} -c fsync=off",
            "start",
        )


class SmtpInbox:
    """A real SMTP server's handler (aiosmtpd): keeps (arrival time, recipients, message) of each mail."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # aiosmtpd calls it by name
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((time.monotonic(), list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 OK"
