"""Light pages (issue 3 §6): /write's HTML + CSS + own JS stays under 30 KB gzipped,
and only /write and /pickup load libsodium (through their worker)."""

import urllib.request

from bench.page_weight import BUDGET_OWN_GZIP, measure
from tests.support import LiveServer


def test_write_stays_under_its_budget_and_libsodium_loads_only_where_needed(live_server: LiveServer) -> None:
    def fetch(path: str) -> bytes:
        with urllib.request.urlopen(live_server.url + path, timeout=10) as response:
            return response.read()

    weights = {page: measure(fetch, page) for page in ("/", "/write", "/pickup")}
    assert weights["/write"].total("own")[1] <= BUDGET_OWN_GZIP
    assert weights["/"].total("libsodium") == (0, 0)
    for page in ("/write", "/pickup"):
        loaded = set(weights[page].files)
        assert {"/static/crypto/kdf-worker.mjs", "/static/vendor/libsodium-sumo.mjs"} <= loaded
        assert "/static/crypto/testkit.mjs" not in loaded
