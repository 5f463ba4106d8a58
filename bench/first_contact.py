"""First contact in real Chromium: write → pickup code, and pickup → thread, timed as a person waits.

Run: `python -m bench.first_contact --url http://127.0.0.1:PORT [--rounds 3]`; prints one JSON
line `{"send_ms": [...], "open_ms": [...], "write_load_ms": [...]}`. Each round uses a fresh
browser context (nothing cached, as on a citizen's device). Times:
- write_load_ms: navigation to /write until its `load` event;
- send_ms: click `#send` until `#pickup-code` is visible (typing is done; the browser's
  Argon2id and sealing happen in its worker, then the POST);
- open_ms: click `#open` until `#thread` is visible (Argon2id from the typed code, then the POST).
Chromium is Debian's /usr/bin/chromium (never `playwright install`).
"""

import argparse
import json
import re
import time

from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
CODE_SHAPE = re.compile(r"^\d{4} \d{4} \d{4} \d{4}$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result: dict[str, list[float]] = {"write_load_ms": [], "send_ms": [], "open_ms": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for _ in range(args.rounds):
                context = browser.new_context()
                page = context.new_page()
                page.set_default_timeout(30_000)
                started = time.monotonic()
                page.goto(f"{args.url}/write?lang=en", wait_until="load")
                result["write_load_ms"].append((time.monotonic() - started) * 1000)
                page.fill("#message", "Jeg har brug for at tale med nogen om noget derhjemme.")
                # A person takes a moment after typing; the worker has loaded by then.
                page.wait_for_timeout(1000)
                started = time.monotonic()
                page.click("#send")
                code = page.locator("#pickup-code")
                expect(code).to_be_visible()
                result["send_ms"].append((time.monotonic() - started) * 1000)
                expect(code).to_have_text(CODE_SHAPE)
                typed = code.inner_text().strip()
                page.goto(f"{args.url}/pickup?lang=en", wait_until="load")
                page.fill("#code", typed)
                page.wait_for_timeout(300)
                started = time.monotonic()
                page.click("#open")
                expect(page.locator("#thread")).to_be_visible()
                result["open_ms"].append((time.monotonic() - started) * 1000)
                context.close()
        finally:
            browser.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
