"""A flood from a second process against the real `fristed serve` (issue 8 item 7): bounded to seconds.

`python -m bench.flood` sends wrong access tokens, oversized bodies, malformed
and deeply nested JSON, creations without and with proof of work, while a
legitimate citizen keeps writing with proof of work. The server answers only
400/403/404/409/413/429/201 as it should (never 5xx), `bits` rises during the
burst and falls after it, the citizen's writes still succeed (latency
reported), and the gateway's memory stays bounded.
"""

import json
import subprocess
import sys
from pathlib import Path

from tests.support import Demo, LiveServer, set_option

ROOT = Path(__file__).resolve().parents[2]
RSS_BOUND_KB = 400 * 1024


def test_a_flood_from_another_process_is_refused_cleanly_and_legitimate_writes_get_through(demo: Demo) -> None:
    for key, value in (("writes_per_minute", "30"), ("window_seconds", "2"), ("flood_bits", "6"), ("max_bits", "8"),
                       ("mem", "65536")):
        set_option(demo.data_dir, "pow", key, value)
    set_option(demo.data_dir, "proxy", "client_address_header", '"X-Real-IP"')
    with LiveServer(demo.data_dir, demo.env) as server:
        assert server.process is not None
        flood = subprocess.run(
            [sys.executable, "-m", "bench.flood", "--url", server.url, "--seconds", "5", "--header", "X-Real-IP",
             "--pid", str(server.process.pid)],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
        )
        log = server.log()
    assert flood.returncode == 0, flood.stdout + flood.stderr
    result = json.loads(flood.stdout)
    print(json.dumps({k: result[k] for k in ("writes_offered", "writes_refused_by_status", "legitimate", "rss_kb")}))
    by_kind = {kind: {int(s): n for s, n in counts.items()} for kind, counts in result["status_by_kind"].items()}

    assert result["five_xx"] == 0 and result["unexpected"] == {}, result
    assert "Traceback" not in log and " 500 " not in log
    # Code guessing: ten free misses, then 429 with an honest wait.
    assert by_kind["bad_token"][404] == 10 and by_kind["bad_token"][429] > 0
    assert set(by_kind["bad_token"]) == {404, 429}
    assert all(1 <= int(seconds) <= 30 for seconds in result["retry_after"])
    assert set(by_kind["oversized"]) == {413}
    assert set(by_kind["bad_json"]) == {400} and set(by_kind["deep_json"]) == {400}
    # A burst of creations without proof of work is refused once bits rise.
    assert by_kind["write_no_pow"].get(201, 0) > 0 and by_kind["write_no_pow"].get(403, 0) > 0
    assert set(by_kind["write_no_pow"]) <= {201, 403, 429}
    assert set(by_kind.get("write_pow", {})) <= {201, 400, 409, 429}
    assert result["bits"]["before"] == 0 and result["bits"]["peak"] >= 6
    assert result["bits"]["after"] == 0 and result["bits"]["fell_back_after_s"] is not None
    # The citizen who pays gets through during the flood, and how long it took is reported.
    assert result["legitimate"]["ok"] >= 1 and result["legitimate"]["post_p50_ms"] is not None
    assert set(by_kind["legitimate"]) <= {201, 403, 409}  # 403: bits rose between reading /config and posting
    assert 0 < result["rss_kb"]["peak"] < RSS_BOUND_KB
