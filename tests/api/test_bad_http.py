"""Malformed HTTP against the real `fristed serve` (raw sockets): a clean 400 with the security
headers, and a log with no peer address, no header, no traceback and no forged line."""

import json
import re
import socket
import time

from tests.support import LiveServer

BAD_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHereSecretHeader\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Secret: a\x00b-secretvalue\r\n\r\n",
    b"POST /api/v1/threads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abcsecret\r\n\r\n",
]


def exchange(server: LiveServer, data: bytes, *, hang_up_after: float | None = None) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(data)
        if hang_up_after is not None:
            time.sleep(hang_up_after)
            return b""
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def head_and_body(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_malformed_requests_get_a_clean_400_and_leave_no_address_header_or_traceback(live_server):
    for request in BAD_REQUESTS:
        status, headers, body = head_and_body(exchange(live_server, request))
        assert status == 400
        assert "default-src 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
        assert json.loads(body)["error"]["code"] == "bad_request"
        assert b"secret" not in body.lower()
    # A client that hangs up in the middle of a body is not a server error.
    exchange(live_server, b"POST /api/v1/threads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Content-Length: 5000\r\n\r\n{\"team\": \"demo\", ", hang_up_after=0.3)
    # A percent-encoded line feed in a path cannot start a log line of its own.
    status, _, _ = head_and_body(exchange(live_server, b"GET /%0a2026-01-01%2000:00:00,000%20ERROR%20forged HTTP/1.1\r\n"
                                                       b"Host: x\r\nConnection: close\r\n\r\n"))
    assert status == 404
    time.sleep(0.5)
    log = live_server.log()
    lines = log.splitlines()
    assert "Traceback" not in log and "unhandled" not in log.lower() and " 500 " not in log
    assert "secret" not in log.lower()
    assert [line for line in lines if "127.0.0.1" in line] == [line for line in lines if line.startswith("fristed: serving on")]
    assert not any(line.startswith("2026-01-01") or line.startswith(" ERROR forged") for line in lines)
    assert all(re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} |fristed: |  \| )", line) for line in lines), log
