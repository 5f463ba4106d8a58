"""Nothing a citizen sends besides the JSON body reaches the database or the log (promise 3)."""

import json
import urllib.request

from tests.api.test_independent_client import b64d, b64e, derive, new_code, seal

MARKERS = {
    "User-Agent": "Mozilla/5.0 MARKER-UA-7731",
    "X-Forwarded-For": "203.0.113.77",
    "X-Real-IP": "198.51.100.99",
    "Forwarded": "for=192.0.2.55",
    "Referer": "https://marker-referrer.example/path-7731",
    "Accept-Language": "xx-MARKERLANG",
    "Cookie": "tracker=MARKER-COOKIE-7731",
    "Origin": "https://marker-origin.example",
}
NEEDLES = ["MARKER", "203.0.113.77", "198.51.100.99", "192.0.2.55", "marker-referrer", "marker-origin"]


def post(base: str, path: str, body: dict) -> int:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **MARKERS})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_distinctive_headers_leave_no_trace_in_any_file_or_the_log(live_server, demo):
    base = live_server.url
    request = urllib.request.Request(base + "/api/v1/config", headers=MARKERS)
    with urllib.request.urlopen(request, timeout=10) as response:
        config = json.load(response)
    with urllib.request.urlopen(urllib.request.Request(base + "/?lang=ar", headers=MARKERS), timeout=10):
        pass
    team_pk = b64d(config["teams"][0]["pk"])
    _, z_pk, token = derive(new_code(), b64d(config["code_salt"]), config["kdf"])
    assert post(base, "/api/v1/threads", {"team": "demo", "citizen_pk": b64e(z_pk), "access_token": b64e(token),
                                          "envelope": seal("hej", [team_pk, z_pk])}) == 201
    assert post(base, "/api/v1/threads/reply", {"access_token": b64e(token), "envelope": seal("igen", [team_pk, z_pk])}) == 201
    assert post(base, "/api/v1/threads/open", {"access_token": b64e(token)}) == 200
    assert post(base, "/api/v1/threads/open", {"access_token": "bad"}) == 400
    live_server.stop()  # flush the log and the WAL

    files = [p for p in demo.data_dir.rglob("*") if p.is_file()] + [live_server.log_path]
    assert any(p.name.startswith("fristed.db") for p in files)
    for path in files:
        data = path.read_bytes()
        for needle in [*NEEDLES, b64e(token)]:
            assert needle.encode() not in data, f"{needle} found in {path.name}"
    log = live_server.log_path.read_text()
    # Citizen requests are not logged at all by default (log.citizen_requests = false, issue 10).
    assert "/api/v1/threads" not in log and "fristed: serving on" in log
    # The client's own address (loopback here) appears only in the line announcing the socket.
    assert [line for line in log.splitlines() if "127.0.0.1" in line] == [f"fristed: serving on {base}/"]
    for path in demo.data_dir.glob("fristed.db*"):
        assert b"127.0.0.1" not in path.read_bytes(), path.name
