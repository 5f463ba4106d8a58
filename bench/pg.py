"""A throwaway PostgreSQL 15 cluster for the scale-out figure, durable like a real one.

Like tests/support.py's PostgresServer (run as user postgres, since pg_ctl refuses
root), but with PostgreSQL's durable defaults (`fsync=on`, `synchronous_commit=on`):
the SQLite figures are fsynced writes, so these are too.
"""

import os
import shutil
import subprocess
from pathlib import Path

from bench import procs

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class Cluster:
    def __init__(self, base: Path):
        self.base = base
        self.data = base / "pgdata"
        self.sockets = base / "sockets"
        self.port = procs.free_port()
        self.running = False

    def _as_postgres(self, *argv: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {(result.stderr or result.stdout).strip()[-800:]}")

    def start(self) -> "Cluster":
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError("PostgreSQL 15 is not installed (ops/setup.sh --test installs it)")
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        os.chmod(self.base, 0o777)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
            shutil.chown(self.sockets, "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "--auth-local=trust", "--auth-host=trust",
                          "-U", "postgres")
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.sockets} "
                   "-c max_connections=200")
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "pg.log"), "-w",
                          "-o", options, "start")
        self.running = True
        procs.on_exit(self.stop)
        return self

    def create_database(self, name: str = "fristed_bench") -> str:
        self._as_postgres(str(PG_BIN / "createdb"), "-h", str(self.sockets), "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql+asyncpg://postgres@/{name}?host={self.sockets}&port={self.port}"

    def stop(self) -> None:
        if self.running:
            self.running = False
            try:
                self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass

    @staticmethod
    def version() -> str:
        try:
            return subprocess.run([str(PG_BIN / "postgres"), "--version"], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except OSError:
            return "not installed"
