"""`GET /healthz` on the real `fristed serve`: per process, content-free, unlogged, and honest about the database."""

import json
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support import LiveServer, PostgresServer, init_demo

CHECKS = {"database", "migrations", "static", "loops"}


def healthz(url: str) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=10) as response:
            return response.status, json.load(response), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error), dict(error.headers)


def wait_for(url: str, status: int, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        got, body, _headers = healthz(url)
        if got == status or time.monotonic() > deadline:
            assert got == status, body
            return body
        time.sleep(0.2)


def test_a_healthy_gateway_answers_200_with_only_the_checks_and_logs_nothing(live_server):
    status, body, headers = healthz(live_server.url)
    assert status == 200
    assert body == {"status": "ok", "checks": dict.fromkeys(CHECKS, "ok")}
    assert "no-store" in headers.get("Cache-Control", "")
    for _ in range(3):
        healthz(live_server.url)
    with urllib.request.urlopen(live_server.url + "/api/v1/openapi.json") as response:
        document = json.load(response)
    assert set(document["paths"]["/healthz"]["get"]["responses"]) == {"200", "503"}
    with urllib.request.urlopen(live_server.url + "/staff/login") as response:
        assert response.status == 200  # staff requests are always in the access log: the log works
    deadline = time.monotonic() + 5
    while "/staff/login" not in live_server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "/staff/login" in live_server.log() and "/healthz" not in live_server.log()


@pytest.mark.postgres
def test_healthz_says_503_while_postgresql_is_down_and_200_once_it_is_back(tmp_path):
    # A cluster of its own: stopping the suite's shared server would break other tests.
    # Under /tmp, not tmp_path: user postgres cannot enter pytest's private directory.
    base = Path(tempfile.mkdtemp(prefix="fristed-pg-health-"))
    pg = PostgresServer(base).start()
    try:
        env = {"FRISTED_DATABASE_URL": pg.create_database()}
        demo = init_demo(tmp_path / "data", env=env)
        with LiveServer(demo.data_dir, env) as server:
            wait_for(server.url, 200, 5)
            pg.stop()
            down = wait_for(server.url, 503, 10)
            assert down["status"] == "unavailable" and down["checks"]["database"] == "fail"
            assert down["checks"]["static"] == "ok" and down["checks"]["loops"] == "ok"
            pg.resume()
            assert wait_for(server.url, 200, 20) == {"status": "ok", "checks": dict.fromkeys(CHECKS, "ok")}
            log = server.log()
        assert "health: failing database, migrations" in log and "health: every check passes again" in log
        assert "127.0.0.1" not in log.replace(server.url, "")
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
