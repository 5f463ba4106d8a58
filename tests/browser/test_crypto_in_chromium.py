"""crypto/js in real headless Chromium, loaded from the live server under its real CSP:
the same vectors as Node and Python, and Argon2id in a Web Worker."""

import json
from pathlib import Path

from playwright.sync_api import Page

from tests.support import LiveServer

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "crypto" / "vectors.json").read_text(encoding="utf-8"))


def watch_csp(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def test_js_crypto_agrees_with_the_vectors_in_chromium(page: Page, live_server: LiveServer) -> None:
    problems = watch_csp(page)
    response = page.goto(f"{live_server.url}/")
    assert response is not None and "wasm-unsafe-eval" in response.headers["content-security-policy"]
    ids = page.evaluate(
        """async (file) => {
            const sodium = await (await import('/static/crypto/sodium-browser.mjs')).default;
            const { withSodium } = await import('/static/crypto/fristed.mjs');
            const { checkAll } = await import('/static/crypto/testkit.mjs');
            return checkAll(withSodium(sodium), file);
        }""",
        VECTORS,
    )
    assert ids == [v["id"] for v in VECTORS["vectors"]]
    assert problems == []


def test_unknown_kinds_and_outcomes_fail_the_chromium_run(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/")
    errors = page.evaluate(
        """async (file) => {
            const sodium = await (await import('/static/crypto/sodium-browser.mjs')).default;
            const { withSodium } = await import('/static/crypto/fristed.mjs');
            const { checkAll } = await import('/static/crypto/testkit.mjs');
            const api = withSodium(sodium);
            const out = [];
            for (const bad of [
                { ...file, vectors: [{ ...file.vectors[0], kind: 'mystery' }] },
                { ...file, vectors: [{ ...file.vectors[0], expected: { outcome: 'maybe' } }] },
            ]) { try { checkAll(api, bad); out.push('passed'); } catch (e) { out.push(String(e.message)); } }
            return out;
        }""",
        VECTORS,
    )
    assert "unknown kind" in errors[0] and "unknown outcome" in errors[1]


def test_argon2id_runs_in_a_worker_and_the_page_keeps_running(page: Page, live_server: LiveServer) -> None:
    problems = watch_csp(page)
    page.goto(f"{live_server.url}/")
    [default] = [v for v in VECTORS["vectors"] if v["id"] == "citizen-default"]
    with page.expect_worker() as worker_info:
        result = page.evaluate(
            """async (v) => {
                const { deriveCitizenInWorker } = await import('/static/crypto/kdf.mjs');
                const { b64, unb64 } = await import('/static/crypto/fristed.mjs');
                let ticks = 0;
                let running = true;
                const tick = () => { if (running) { ticks++; setTimeout(tick, 5); } };
                tick();
                const k = await deriveCitizenInWorker(v.input.digits, unb64(v.input.code_salt, 16), v.input.ops, v.input.mem);
                running = false;
                return { ticks, master: b64(k.master), z_pk: b64(k.pk), access_token: b64(k.accessToken), lookup: b64(k.lookup) };
            }""",
            default,
        )
    assert worker_info.value.url.endswith("/static/crypto/kdf-worker.mjs")
    for name in ("master", "z_pk", "access_token", "lookup"):
        assert result[name] == default["expected"][name]
    # A derivation on the page itself would block every timer until it ended.
    assert result["ticks"] >= 3
    staff = next(v for v in VECTORS["vectors"] if v["kind"] == "staff_keys")
    kek = page.evaluate(
        """async (v) => {
            const { deriveStaffInWorker } = await import('/static/crypto/kdf.mjs');
            const { b64, unb64 } = await import('/static/crypto/fristed.mjs');
            const k = await deriveStaffInWorker(v.input.passphrase, unb64(v.input.salt, 16), v.input.ops, v.input.mem);
            return b64(k.kek);
        }""",
        staff,
    )
    assert kek == staff["expected"]["kek"]
    assert problems == []
