"""`fristed check`: one line per check, PASS or FAIL with the reason, exit 1 on any failure."""

import datetime as dt
import os
import re
import sqlite3

import pytest
from aiosmtpd.controller import Controller

from tests.support import free_port, run_fristed, set_kdf, set_option

LINE = re.compile(r"(PASS|FAIL) [a-z_]+: \S.*")


def check(data_dir):
    result = run_fristed("check", data_dir=data_dir, check=False)
    lines = result.stdout.splitlines()
    assert all(LINE.fullmatch(line) for line in lines[:-1]), result.stdout
    return result.returncode, {line.split(":")[0].split()[1]: line for line in lines[:-1]}, lines[-1]


@pytest.fixture
def fresh(tmp_path):
    run_fristed("init", data_dir=tmp_path / "data")
    return tmp_path / "data"


def test_a_fresh_deployment_passes_every_check(fresh):
    code, results, last = check(fresh)
    assert code == 0, results
    assert all(line.startswith("PASS ") for line in results.values())
    for name in ("data_dir", "config_file", "secret_key", "config", "public_url", "retention", "kdf", "database",
                 "secure_delete", "database_files", "clock", "smtp"):
        assert name in results, name
    assert re.fullmatch(r"all \d+ checks passed", last)
    assert "loopback" in results["public_url"] and "not configured" in results["smtp"]


def test_each_unsafe_setting_fails_with_its_reason(fresh):
    os.chmod(fresh, 0o755)
    os.chmod(fresh / "secret_key", 0o644)
    os.chmod(fresh / "fristed.db", 0o644)
    set_option(fresh, None, "public_url", '"http://fristed.example.org"')
    set_kdf(fresh, 1, 8192)
    config = fresh / "fristed.toml"
    config.write_text(re.sub(r"(?m)^retention_days = .*$", "", config.read_text()))
    code, results, last = check(fresh)
    assert code == 1
    failed = {name for name, line in results.items() if line.startswith("FAIL")}
    assert failed == {"data_dir", "secret_key", "database_files", "public_url", "retention", "kdf"}
    assert "0755" in results["data_dir"] and "0644" in results["secret_key"] and "fristed.db" in results["database_files"]
    assert "not https" in results["public_url"] and "retention_days is not set" in results["retention"]
    assert last.startswith("6 check(s) failed")


def test_https_behind_a_proxy_passes(fresh):
    set_option(fresh, None, "public_url", '"https://fristed.example.org"')
    code, results, _ = check(fresh)
    assert code == 0 and "is https" in results["public_url"]


def test_a_missing_or_unmigrated_database_fails(fresh, tmp_path):
    (fresh / "fristed.db").rename(tmp_path / "elsewhere.db")
    for side in fresh.glob("fristed.db-*"):
        side.unlink()
    code, results, _ = check(fresh)
    assert code == 1 and "is missing" in results["database"]
    assert not (fresh / "fristed.db").exists(), "checking created a database"
    sqlite3.connect(fresh / "fristed.db").close()
    code, results, _ = check(fresh)
    assert code == 1 and "schema missing" in results["database"]


def test_a_clock_behind_the_stored_times_fails(fresh):
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:00.000000")
    with sqlite3.connect(fresh / "fristed.db") as db:
        db.execute("INSERT INTO audit (at, actor, action, detail) VALUES (?, 'operator', 'test', '')", (future,))
    db.close()
    code, results, _ = check(fresh)
    assert code == 1 and "behind the newest stored time" in results["clock"]


def test_a_broken_configuration_fails_without_a_traceback(fresh):
    (fresh / "fristed.toml").write_text("retention_days = 0\n")
    code, results, _ = check(fresh)
    assert code == 1 and "retention_days" in results["config"] and "not checked" in results["database"]


class Quiet:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def test_smtp_is_checked_when_configured(fresh):
    port = free_port()
    set_option(fresh, "smtp", "host", '"127.0.0.1"')
    set_option(fresh, "smtp", "port", str(port))
    code, results, _ = check(fresh)
    assert code == 1 and results["smtp"].startswith(f"FAIL smtp: 127.0.0.1:{port} does not work")
    controller = Controller(Quiet(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        code, results, _ = check(fresh)
    finally:
        controller.stop()
    assert code == 0 and results["smtp"] == f"PASS smtp: 127.0.0.1:{port} answers"


def test_a_database_file_out_of_wal_mode_fails_the_journal_check(fresh):
    """Read from the file's header, before any connection of the check's own switches it back."""
    with sqlite3.connect(fresh / "fristed.db") as db:
        assert db.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    db.close()
    code, results, _ = check(fresh)
    assert code == 1 and results["journal"].startswith("FAIL journal: fristed.db is not in WAL mode")
    assert results["secure_delete"].startswith("PASS")


def test_rows_deleted_without_secure_delete_fail_the_secure_delete_check(fresh):
    db = sqlite3.connect(fresh / "fristed.db", isolation_level=None)
    db.execute("PRAGMA secure_delete=OFF")  # what a careless tool or an old gateway would do
    db.execute("BEGIN")
    db.executemany("INSERT INTO audit (at, actor, action, detail) VALUES ('2026-01-01 00:00:00', 'x', 'y', ?)",
                   [(f"DELETED-SECRET-{i} " + "z" * 500,) for i in range(200)])
    db.execute("COMMIT")
    db.execute("DELETE FROM audit WHERE detail LIKE 'DELETED-SECRET-%'")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    assert b"DELETED-SECRET-" in (fresh / "fristed.db").read_bytes()
    code, results, _ = check(fresh)
    assert code == 1 and results["secure_delete"].startswith("FAIL secure_delete:")
    assert "still hold deleted data" in results["secure_delete"]


def test_rows_deleted_with_secure_delete_pass(fresh):
    db = sqlite3.connect(fresh / "fristed.db", isolation_level=None)
    db.execute("PRAGMA secure_delete=ON")
    db.executemany("INSERT INTO audit (at, actor, action, detail) VALUES ('2026-01-01 00:00:00', 'x', 'y', ?)",
                   [(f"DELETED-SECRET-{i} " + "z" * 500,) for i in range(200)])
    db.execute("DELETE FROM audit WHERE detail LIKE 'DELETED-SECRET-%'")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    code, results, _ = check(fresh)
    assert code == 0 and results["secure_delete"].startswith("PASS secure_delete: every free page")


def test_smtp_credentials_without_tls_fail(fresh):
    set_option(fresh, "smtp", "host", '"smtp.example.org"')
    set_option(fresh, "smtp", "username", '"fristed"')
    (fresh / "smtp_password").write_text("hunter2\n")
    os.chmod(fresh / "smtp_password", 0o600)
    code, results, _ = check(fresh)
    assert code == 1 and results["smtp_tls"].startswith("FAIL smtp_tls: smtp.username is set but neither")
    set_option(fresh, "smtp", "starttls", "true")
    _, results, _ = check(fresh)
    assert results["smtp_tls"] == "PASS smtp_tls: TLS to the SMTP server"

