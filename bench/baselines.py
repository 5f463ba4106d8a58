"""The two bare aiohttp apps the gateway is measured against (issue 9), on the same Python.

- `json`: one handler returning a JSON body of a given size (that of `/api/v1/config`);
- `insert`: one handler reading the posted body and INSERTing it with aiosqlite, one
  transaction per request, in WAL mode with `synchronous=FULL` (the floor for a durable
  write on this stack: every 201 has been fsynced).

Run: `python -m bench.baselines json --port P --size N` or
`python -m bench.baselines insert --port P --db FILE`. Both use aiohttp's default
event loop and JSON encoder, like the gateway unless it changes them.
"""

import argparse
import json
from collections.abc import AsyncIterator

import aiosqlite
from aiohttp import web

DB_KEY = web.AppKey("db", aiosqlite.Connection)


def json_app(size: int) -> web.Application:
    """A handler whose answer is a JSON object of exactly `size` bytes (when size >= 16)."""
    skeleton = json.dumps({"padding": ""})
    payload = {"padding": "x" * max(0, size - len(skeleton))}

    async def handler(_request: web.Request) -> web.Response:
        return web.json_response(payload)

    app = web.Application()
    app.router.add_get("/", handler)
    return app


def insert_app(path: str) -> web.Application:
    async def database(app: web.Application) -> AsyncIterator[None]:
        db = await aiosqlite.connect(path, isolation_level=None)
        for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"):
            await db.execute(pragma)
        await db.execute("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        app[DB_KEY] = db
        yield
        await db.close()

    async def handler(request: web.Request) -> web.Response:
        body = await request.text()
        # Autocommit: the INSERT is its own transaction, committed (and fsynced) before the answer.
        await request.app[DB_KEY].execute("INSERT INTO rows (body) VALUES (?)", (body,))
        return web.json_response({}, status=201)

    app = web.Application()
    app.cleanup_ctx.append(database)
    app.router.add_post("/", handler)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("json", "insert"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, default=600, help="json: body size in bytes")
    parser.add_argument("--db", help="insert: the SQLite file")
    args = parser.parse_args()
    app = json_app(args.size) if args.kind == "json" else insert_app(args.db)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
