"""Build backend: setuptools, with libsodium for the browser put into the wheel at build time.

Why a build hook, not committed vendored files: the browser library stays
pinned in one place (`package-lock.json`, whose sha512 integrity `npm ci`
checks), it is never committed (TOOLCHAIN.md), and an upgrade is one
`npm install --save-exact` with nothing to forget. The wheel then carries the
two ES-module files, so `pip install fristed-*.whl` serves working pages with
no npm and no ops/setup.sh.

The hook (also run by ops/setup.sh as `python3 ops/packaging/fristed_build.py`):
1. If `node_modules` lacks the packages, runs `npm ci --ignore-scripts` (npm
   verifies every tarball against the lock's sha512).
2. Checks that the installed versions are exactly the lock's.
3. Copies the files into `web/static/vendor/`, rewriting the wrapper's bare
   import `libsodium-sumo` to the file beside it, and checks the rewrite.
4. Writes `web/static/vendor/vendor.json`: package versions and the sha256 of
   each file. A wheel built from the sdist (no `node_modules` there) verifies
   the files against it instead of copying.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (the PEP 517 hooks we do not change)

ROOT = Path(__file__).resolve().parents[2]
# served file -> (npm package, path inside it)
FILES = {
    "libsodium-sumo.mjs": ("libsodium-sumo", "dist/modules-sumo-esm/libsodium-sumo.mjs"),
    "libsodium-wrappers.mjs": ("libsodium-wrappers-sumo", "dist/modules-sumo-esm/libsodium-wrappers.mjs"),
}
LICENSE = ("libsodium-sumo", "LICENSE")
BARE = b'import e from"libsodium-sumo"'
RELATIVE = b'import e from"./libsodium-sumo.mjs"'
MANIFEST = "vendor.json"


class VendorError(Exception):
    pass


def say(message: str) -> None:
    sys.stderr.write(f"vendor: {message}\n")
    sys.stderr.flush()


def locked_versions(root: Path) -> dict[str, str]:
    lock = json.loads((root / "package-lock.json").read_text(encoding="utf-8"))
    packages = lock.get("packages", {})
    return {name: packages.get(f"node_modules/{name}", {}).get("version", "") for name, _ in FILES.values()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def from_node_modules(root: Path, vendor: Path) -> None:
    locked = locked_versions(root)
    for name, want in locked.items():
        manifest = root / "node_modules" / name / "package.json"
        have = json.loads(manifest.read_text(encoding="utf-8")).get("version") if manifest.exists() else None
        if not want:
            raise VendorError(f"package-lock.json does not pin {name}")
        if have != want:
            raise VendorError(f"node_modules/{name} is {have or 'missing'}, package-lock.json pins {want}: run `npm ci`")
    vendor.mkdir(parents=True, exist_ok=True)
    for served, (name, inner) in FILES.items():
        data = (root / "node_modules" / name / inner).read_bytes()
        if served == "libsodium-wrappers.mjs":
            if data.count(BARE) != 1:
                raise VendorError(f"{name}/{inner}: the import of libsodium-sumo is not where it was (layout changed?)")
            data = data.replace(BARE, RELATIVE)
        write_atomically(vendor / served, data)
    licence = root / "node_modules" / LICENSE[0] / LICENSE[1]
    if licence.exists():
        shutil.copyfile(licence, vendor / "LICENSE-libsodium.txt")
    record = {"packages": locked, "files": {served: sha256(vendor / served) for served in FILES}}
    write_atomically(vendor / MANIFEST, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


def write_atomically(path: Path, data: bytes) -> None:
    """A running gateway (or a test) may be serving the old copy: it never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def verify(vendor: Path) -> bool:
    """The files a previous run vendored (e.g. inside an sdist), unchanged."""
    try:
        record = json.loads((vendor / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return all((vendor / served).is_file() and sha256(vendor / served) == record["files"].get(served) for served in FILES)


def vendor(root: Path = ROOT) -> None:
    target = root / "web" / "static" / "vendor"
    have_lock = (root / "package-lock.json").exists()
    installed = all((root / "node_modules" / name).is_dir() for name, _ in FILES.values())
    if not installed and verify(target) and (not have_lock or recorded_versions(target) == locked_versions(root)):
        # Inside an sdist: the files vendored when it was made, checked against their sha256.
        say(f"libsodium already in {target.relative_to(root)} (checksums match {MANIFEST})")
        return
    if not have_lock:
        raise VendorError("no package-lock.json and no verified web/static/vendor: build from a source checkout")
    if not installed:
        npm = shutil.which("npm")
        if npm is None:
            raise VendorError("node_modules is missing and npm is not installed: install npm, or run `npm ci` first")
        say("installing the browser libraries from package-lock.json (npm ci)")
        subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=root, check=True)
    from_node_modules(root, target)
    say(f"copied libsodium {locked_versions(root)['libsodium-sumo']} into {target.relative_to(root)}")


def recorded_versions(vendor: Path) -> dict[str, str]:
    return json.loads((vendor / MANIFEST).read_text(encoding="utf-8")).get("packages", {})


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):  # type: ignore[no-untyped-def]
    vendor()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory, config_settings=None):  # type: ignore[no-untyped-def]
    vendor()
    return _setuptools.build_sdist(sdist_directory, config_settings)


if __name__ == "__main__":
    try:
        vendor()
    except (VendorError, OSError, subprocess.CalledProcessError) as exc:
        say(f"error: {exc}")
        sys.exit(1)
