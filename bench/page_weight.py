"""Transfer size of each citizen page, with and without libsodium (issue 3 §6).

Run: `.venv/bin/python -m bench.page_weight` (starts a throwaway demo
deployment) or `... -m bench.page_weight --url http://127.0.0.1:8080`.
Follows what a browser loads: the HTML, its stylesheet and favicon, its module
scripts and, recursively, their static imports and the worker they start
(`new URL('…', import.meta.url)`). Sizes are per file, gzip level 6 (what a
reverse proxy typically sends), summed. Exits 1 when /write's HTML + CSS + own
JS is over the 30 KB budget.
"""

import argparse
import gzip
import re
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

PAGES = ("/", "/write", "/pickup")
BUDGET_OWN_GZIP = 30 * 1024  # /write: HTML + CSS + own JS, gzipped
VENDOR = "/static/vendor/"
_REFS = re.compile(r"""<(?:link|script)\b[^>]*?\b(?:href|src)="([^"]+)\"""")
_IMPORTS = re.compile(r"""(?:\bfrom\s*|\bimport\s*)["']([^"']+\.mjs)["']|new URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url""")


@dataclass
class Weight:
    page: str
    files: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (raw, gzip)

    def total(self, kind: str) -> tuple[int, int]:
        chosen = [v for p, v in self.files.items() if kind_of(p) == kind or (kind == "own" and kind_of(p) != "libsodium")]
        return sum(v[0] for v in chosen), sum(v[1] for v in chosen)


def kind_of(path: str) -> str:
    if path.startswith(VENDOR):
        return "libsodium"
    if path.endswith(".css"):
        return "css"
    if path.endswith((".mjs", ".js")):
        return "js"
    return "html" if not path.startswith("/static/") else "other"


def measure(fetch: Callable[[str], bytes], page: str) -> Weight:
    weight = Weight(page)
    queue = [page]
    while queue:
        path = queue.pop()
        if path in weight.files:
            continue
        body = fetch(path)
        weight.files[path] = (len(body), len(gzip.compress(body, compresslevel=6, mtime=0)))
        text = body.decode("utf-8", "replace")
        if path == page:
            refs = _REFS.findall(text)
        elif path.endswith(".mjs") and not path.startswith(VENDOR):
            refs = [a or b for a, b in _IMPORTS.findall(text)]
        elif path.startswith(VENDOR):
            refs = [a for a, _b in _IMPORTS.findall(text) if a]
        else:
            refs = []
        for ref in refs:
            resolved = urlsplit(urljoin("http://x" + path, ref)).path
            if resolved.startswith("/") and resolved not in weight.files:
                queue.append(resolved)
    return weight


def kb(n: int) -> str:
    return f"{n / 1024:.1f}"


def report(weights: list[Weight]) -> str:
    lines = [
        "| page | HTML | CSS | own JS | favicon | total without libsodium | libsodium | total with libsodium |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for w in weights:
        html, css, js, other, own, sodium = (w.total(k) for k in ("html", "css", "js", "other", "own", "libsodium"))
        with_sodium = (own[0] + sodium[0], own[1] + sodium[1])
        cells = [f"{kb(g)} ({kb(r)})" for r, g in (html, css, js, other, own, sodium, with_sodium)]
        lines.append(f"| `{w.page}` | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("KB gzipped (raw in brackets), per file at gzip level 6, summed over every file the page loads.")
    return "\n".join(lines)


def run(base_url: str) -> int:
    def fetch(path: str) -> bytes:
        with urllib.request.urlopen(base_url + path, timeout=10) as response:
            return response.read()

    weights = [measure(fetch, page) for page in PAGES]
    print(report(weights))
    write = next(w for w in weights if w.page == "/write")
    own = write.total("own")[1]
    print(f"\n/write HTML + CSS + own JS: {kb(own)} KB gzipped (budget {kb(BUDGET_OWN_GZIP)} KB)")
    return 0 if own <= BUDGET_OWN_GZIP else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running gateway; default: start a throwaway demo deployment")
    args = parser.parse_args()
    if args.url:
        return run(args.url.rstrip("/"))
    from tests.support import LiveServer, init_demo

    with tempfile.TemporaryDirectory(prefix="fristed-weight-") as tmp:
        demo = init_demo(Path(tmp) / "data")
        with LiveServer(demo.data_dir) as server:
            return run(server.url)


if __name__ == "__main__":
    sys.exit(main())
