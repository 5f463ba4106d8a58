"""Browser-test fixtures: headless Chromium from Debian (/usr/bin/chromium, TOOLCHAIN.md)
and a recorder for "nothing secret leaves the page". Generic: citizen and staff
tests both use them."""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import BrowserContext, Page, Request

CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark browser tests, and run them last: once Playwright's sync API has started
    (session-scoped), its event loop stays current in this thread, and any async test
    after it would fail with "cannot be called from a running event loop"."""
    browser_items = []
    for item in items:
        if "tests/browser/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)
            # pytest-playwright 0.10's session `base_url` fixture warns under pytest 9 (TOOLCHAIN.md).
            item.add_marker(pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"))
            browser_items.append(item)
    moved = {id(item) for item in browser_items}
    others = [item for item in items if id(item) not in moved]
    items[:] = others + browser_items


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ],
    }


@dataclass
class Recorded:
    method: str
    url: str
    headers: dict[str, str]
    body: str

    def text(self) -> str:
        """Everything the request carried, as one string to search."""
        headers = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return f"{self.method} {self.url}\n{headers}\n\n{self.body}"


@dataclass
class RequestRecorder:
    """Every request a page (and its workers) makes: URL, headers and body."""

    requests: list[Recorded] = field(default_factory=list)

    def attach(self, target: Page | BrowserContext) -> "RequestRecorder":
        target.on("request", self._record)
        return self

    def _record(self, request: Request) -> None:
        try:
            body = request.post_data or ""
        except (UnicodeDecodeError, ValueError):
            body = (request.post_data_buffer or b"").decode("latin-1")
        self.requests.append(Recorded(request.method, request.url, dict(request.headers), body))

    def assert_absent(self, secrets: Iterable[str]) -> None:
        """No recorded request carries any of `secrets` (see `code_pattern` for pickup codes)."""
        for recorded in self.requests:
            text = recorded.text()
            for secret in secrets:
                assert secret not in text, f"a secret left the page in {recorded.method} {recorded.url}"

    def assert_no_match(self, pattern: re.Pattern[str]) -> None:
        for recorded in self.requests:
            assert not pattern.search(recorded.text()), f"{pattern.pattern} matched {recorded.method} {recorded.url}"


def code_pattern(digits: str) -> re.Pattern[str]:
    """Matches the 16 digits in any grouping: any run of non-digit characters
    (spaces, dashes, %20, +, …) between them, or none."""
    assert re.fullmatch(r"\d{16}", digits)
    return re.compile(r"(?:\D{0,6})".join(digits))


@pytest.fixture
def recorder() -> RequestRecorder:
    return RequestRecorder()


def storage_is_empty(page: Page, context: BrowserContext) -> None:
    """No cookies, no localStorage/sessionStorage, no IndexedDB databases, no caches."""
    assert context.cookies() == []
    state = page.evaluate(
        """async () => ({
            local: localStorage.length,
            session: sessionStorage.length,
            idb: indexedDB.databases ? (await indexedDB.databases()).length : 0,
            caches: self.caches ? (await caches.keys()).length : 0,
        })"""
    )
    assert state == {"local": 0, "session": 0, "idb": 0, "caches": 0}, state
