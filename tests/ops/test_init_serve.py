"""`fristed init` and `fristed serve`, run as the real command; and README command 1."""

import json
import os
import re
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import LiveServer, free_port, run_fristed

REPO = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_makes_a_private_data_dir_with_config_secret_and_database(tmp_path):
    data = tmp_path / "new"
    out = run_fristed("init", data_dir=data).stdout
    assert out.strip() == f"fristed: initialised {data}"
    assert mode(data) == 0o700
    for name in ("fristed.toml", "secret_key", "fristed.db"):
        assert mode(data / name) == 0o600, name
    assert len((data / "secret_key").read_bytes()) == 32
    config = (data / "fristed.toml").read_text()
    for setting in ("retention_days = 30", "public_url =", "[smtp]", "ops = 3", "mem = 67108864", "quick_exit_url ="):
        assert setting in config


def test_init_demo_prints_the_two_lines_scripts_parse(tmp_path):
    out = run_fristed("init", "--demo", data_dir=tmp_path / "d").stdout
    assert re.search(r"(?m)^demo passphrase: \S{12,}$", out)
    assert re.search(r"(?m)^demo totp secret: [A-Z2-7]{16,}$", out)


def test_init_demo_with_a_port_makes_every_printed_link_use_it_and_offers_a_qr_code(tmp_path):
    data = tmp_path / "d"
    out = run_fristed("init", "--demo", "--port", "8099", data_dir=data).stdout
    assert 'public_url = "http://127.0.0.1:8099"' in (data / "fristed.toml").read_text()
    secret = re.search(r"(?m)^demo totp secret: ([A-Z2-7]+)$", out).group(1)
    uri = re.search(r"(?m)^demo totp uri: (otpauth://totp/\S+)$", out).group(1)
    assert f"secret={secret}" in uri and "issuer=" in uri
    assert "▀" in out or "▄" in out  # the terminal QR code (segno, compact text)
    assert out.rstrip().splitlines()[-1] == "log in at http://127.0.0.1:8099/staff/login as demo"
    invite = run_fristed("consultant", "invite", "bob", "--team", "demo", data_dir=data).stdout
    assert invite.splitlines()[-1].startswith("http://127.0.0.1:8099/staff/enroll#")
    bad = run_fristed("init", "--port", "0", data_dir=tmp_path / "e", check=False)
    assert bad.returncode == 1 and bad.stderr == "fristed: error: --port must be 1-65535\n"


def test_version_is_one_line(tmp_path):
    result = run_fristed("--version")
    assert re.fullmatch(r"fristed \d+\.\d+\.\d+\S*\n", result.stdout), result.stdout


def test_the_demo_team_is_offered_and_its_consultant_is_on_duty(tmp_path):
    data = tmp_path / "d"
    run_fristed("init", "--demo", data_dir=data)
    with LiveServer(data) as server, urllib.request.urlopen(server.url + "/api/v1/config") as response:
        config = json.load(response)
    assert [t["id"] for t in config["teams"]] == ["demo"]
    import sqlite3

    with sqlite3.connect(data / "fristed.db") as conn:
        assert conn.execute("select team_id, username from duty").fetchall() == [("demo", "demo")]
        assert conn.execute("select count(*) from grants").fetchone() == (1,)


def test_init_refuses_an_initialised_dir(tmp_path):
    run_fristed("init", data_dir=tmp_path / "d")
    again = run_fristed("init", data_dir=tmp_path / "d", check=False)
    assert again.returncode == 1
    assert again.stderr.startswith("fristed: error: ") and again.stderr.count("\n") == 1
    assert "already initialised" in again.stderr


def test_the_data_dir_can_come_from_the_environment(tmp_path):
    result = run_fristed("init", env={"FRISTED_DATA_DIR": str(tmp_path / "env")})
    assert result.returncode == 0 and (tmp_path / "env" / "fristed.toml").exists()


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        (["init"], 1),  # no data dir
        (["serve", "--data-dir", "/nonexistent/fristed"], 1),
        (["serve", "--port", "notaport", "--data-dir", "/tmp"], 2),
        (["frobnicate"], 2),
        ([], 2),
    ],
)
def test_errors_are_one_line_on_stderr_and_a_non_zero_exit(argv, status):
    result = run_fristed(*argv, check=False)
    assert result.returncode == status
    assert result.stderr.startswith("fristed: error: "), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_broken_config_names_the_setting(tmp_path):
    data = tmp_path / "d"
    run_fristed("init", data_dir=data)
    (data / "fristed.toml").write_text((data / "fristed.toml").read_text().replace("retention_days = 30", "retention_days = -1"))
    result = run_fristed("serve", data_dir=data, check=False)
    assert result.returncode == 1 and "retention_days" in result.stderr and result.stderr.count("\n") == 1


def test_serve_on_a_busy_port_is_one_clear_line(tmp_path):
    data = tmp_path / "d"
    run_fristed("init", data_dir=data)
    with LiveServer(data) as server:
        result = run_fristed("serve", "--port", str(server.port), data_dir=data, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("fristed: error: cannot listen") and result.stderr.count("\n") == 1


def test_readme_command_one_serves_the_demo_and_can_run_again(tmp_path):
    """`ops/demo.sh` (README command 1) twice in a row: both serve the demo."""
    for _ in range(2):
        port = free_port()
        env = {**os.environ, "PORT": str(port), "FRISTED_DEMO_DIR": str(tmp_path / "demo")}
        process = subprocess.Popen([str(REPO / "ops" / "demo.sh")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env=env, text=True)
        try:
            lines = []
            deadline = time.monotonic() + 120
            served = False
            while time.monotonic() < deadline:
                line = process.stdout.readline()
                if not line:
                    break
                lines.append(line)
                served = served or line.startswith("fristed: serving on")
                if served and line.startswith("log in at"):
                    break
            output = "".join(lines)
            assert re.search(r"(?m)^demo passphrase: \S+$", output), output
            assert re.search(r"(?m)^demo totp secret: [A-Z2-7]+$", output), output
            # Said while it happens, step by step; and last, once the gateway answers, where to log in.
            assert re.search(r"(?m)^setup: step 4/4: ", output), output
            assert lines[-1] == f"log in at http://127.0.0.1:{port}/staff/login as demo\n", output
            assert f'public_url = "http://127.0.0.1:{port}"' in (tmp_path / "demo" / "fristed.toml").read_text()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/config", timeout=10) as response:
                assert json.load(response)["teams"][0]["id"] == "demo"
        finally:
            process.terminate()
            process.wait(10)


@pytest.mark.parametrize("where", ["first", "middle", "last", "environment"])
def test_data_dir_is_accepted_anywhere_on_the_line(tmp_path, where):
    data = tmp_path / "d"
    run_fristed("init", data_dir=data)
    argv = {
        "first": ["--data-dir", str(data), "team", "list"],
        "middle": ["team", "--data-dir", str(data), "list"],
        "last": ["team", "list", "--data-dir", str(data)],
        "environment": ["team", "list"],
    }[where]
    env = {"FRISTED_DATA_DIR": str(data)} if where == "environment" else None
    result = run_fristed(*argv, env=env)
    assert result.stdout.startswith("ID")


def test_an_unreachable_database_is_named_in_one_line(tmp_path):
    data = tmp_path / "d"
    run_fristed("init", data_dir=data)
    url = "postgresql+asyncpg://postgres@/nowhere?host=/nonexistent/socketdir&port=5999"
    result = run_fristed("team", "list", data_dir=data, env={"FRISTED_DATABASE_URL": url}, check=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("fristed: error: cannot connect to the database")
