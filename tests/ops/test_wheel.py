"""The wheel works alone: `python -m build`, install into a new venv, `fristed init --demo --port P`,
`fristed serve`, and a citizen with scripts on gets a pickup code at /write in Chromium (issue 14).

Offline, as the suite must be: the build runs without isolation (the suite's venv has
setuptools and `build`), and the new venv reaches the *dependencies* (aiohttp, PyNaCl, …)
through a .pth line to the suite's site-packages. Fristed itself comes only from the
wheel: the test checks that `gateway`, `crypto`, `ops` and `web` load from the new venv,
and the source tree's web/static/vendor is not copied (the build hook must make it).
"""

import json
import re
import shutil
import site
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

from tests.support import CHEAP_KDF, free_port, set_kdf

REPO = Path(__file__).resolve().parents[2]

BROWSER = textwrap.dedent("""
    import re, sys
    from playwright.sync_api import expect, sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_context(java_script_enabled=True).new_page()
        failures = []
        page.on("pageerror", lambda error: failures.append(str(error)))
        page.on("requestfailed", lambda request: failures.append(request.url))
        page.goto(sys.argv[1] + "/write?lang=en")
        page.fill("#message", "From a wheel install")
        page.click("#send")
        code = page.locator("#pickup-code")
        expect(code).to_be_visible(timeout=20000)
        print("code:", code.inner_text().strip())
        print("failures:", failures)
        browser.close()
""")


def copy_source(destination: Path) -> None:
    """What a clone holds (tracked and new files, not ignored ones such as web/static/vendor)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    # npm's install is taken as made (the hook would run `npm ci` into an empty clone).
    (destination / "node_modules").symlink_to(REPO / "node_modules")


def test_the_wheel_alone_serves_working_pages_and_refuses_without_its_assets(tmp_path):
    started = time.monotonic()
    source, dist, venv = tmp_path / "src", tmp_path / "dist", tmp_path / "venv"
    copy_source(source)
    assert not (source / "web" / "static" / "vendor").exists()
    build = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)],
                           capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr[-3000:]
    assert "vendor: copied libsodium" in build.stderr and "vendor: libsodium already in" in build.stderr
    [wheel] = dist.glob("fristed-*.whl")

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    "--disable-pip-version-check", str(wheel)], check=True, capture_output=True, timeout=120)
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "suite-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    where = subprocess.run([str(python), "-c", "import gateway, crypto, ops, web; print(gateway.__file__, crypto.__file__, "
                            "ops.__file__, web.__file__)"], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert all(path.startswith(str(venv)) for path in where.stdout.split()), where.stdout
    vendor = purelib / "web" / "static" / "vendor"
    assert (vendor / "libsodium-sumo.mjs").stat().st_size > 100_000
    assert 'from"./libsodium-sumo.mjs"' in (vendor / "libsodium-wrappers.mjs").read_text()

    fristed = str(venv / "bin" / "fristed")
    data, port = tmp_path / "data", free_port()

    def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([fristed, *argv, "--data-dir", str(data)], capture_output=True, text=True,
                                cwd=tmp_path, timeout=60)
        assert not check or result.returncode == 0, result.stderr
        return result

    out = run("init", "--demo", "--port", str(port)).stdout
    assert f"log in at http://127.0.0.1:{port}/staff/login as demo" in out
    assert re.search(r"(?m)^demo totp uri: otpauth://totp/", out)
    set_kdf(data, **CHEAP_KDF)
    invite = run("consultant", "invite", "bob", "--team", "demo").stdout
    assert invite.splitlines()[-1].startswith(f"http://127.0.0.1:{port}/staff/enroll#")

    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([fristed, "serve", "--port", str(port), "--data-dir", str(data)], cwd=tmp_path,
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                    assert json.load(response)["status"] == "ok"
                    break
            except OSError:
                time.sleep(0.1)
        for asset in ("/static/vendor/libsodium-wrappers.mjs", "/static/vendor/libsodium-sumo.mjs"):
            with urllib.request.urlopen(url + asset, timeout=5) as response:
                assert response.status == 200
        browser = subprocess.run([sys.executable, "-c", BROWSER, url], capture_output=True, text=True, timeout=90)
        assert browser.returncode == 0, browser.stderr[-3000:]
        assert re.search(r"(?m)^code: [0-9 -]{16,}$", browser.stdout), browser.stdout
        assert "failures: []" in browser.stdout, browser.stdout
    finally:
        server.terminate()
        server.wait(10)
        log.close()
    with sqlite3.connect(data / "fristed.db") as db:
        assert db.execute("select sealed_by from threads").fetchall() == [("browser",)]

    # Without its static assets the gateway says so in one line and does not start; check agrees.
    (vendor / "libsodium-sumo.mjs").unlink()
    refused = run("serve", "--port", str(free_port()), check=False)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("fristed: error: cannot serve: static assets missing: web/static/vendor/libsodium-sumo.mjs")
    check = run("check", check=False)
    assert check.returncode == 1 and "FAIL static: static assets missing" in check.stdout
    print(f"wheel built, installed, served and used in {time.monotonic() - started:.1f} s")
