"""Reading JSON request bodies strictly: content type, size, depth, key counts, shape, b64 fields.

Depth and key counts are bounded (400 `bad_json`, never a 500): Python's
parser recurses per nesting level, so `[[[[…` a few thousand deep would end in
a RecursionError, and a body of a million tiny keys costs memory out of
proportion to its size. No request body the API takes needs more than a few
levels or a few hundred keys (a grant list of 256 x 4 is the largest).
"""

import json
import secrets
import threading
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from nacl.bindings import crypto_scalarmult
from nacl.exceptions import RuntimeError as NaclRuntimeError

from crypto import CryptoError, unb64
from gateway.errors import BadRequest, TooLarge, UnsupportedMediaType

MAX_DEPTH = 16
MAX_KEYS_PER_OBJECT = 64
MAX_KEYS = 2048


class _Keys(threading.local):
    """Keys counted so far in the body being parsed on this thread (`parse_json` resets it)."""

    total = 0


_keys = _Keys()


def _pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    _keys.total += len(items)
    if len(items) > MAX_KEYS_PER_OBJECT or _keys.total > MAX_KEYS:
        raise _TooMany
    out = dict(items)
    if len(out) != len(items):
        raise BadRequest("bad_json", "a key appears twice in one object")
    return out


# One decoder for every body: `json.loads(..., object_pairs_hook=...)` builds a new decoder and
# scanner per call, which cost as much as parsing a whole envelope (issue 9).
_DECODER = json.JSONDecoder(object_pairs_hook=_pairs)


def parse_json(raw: bytes) -> Any:
    """`raw` as JSON within the bounds above, or 400 `bad_json` (duplicate keys refused too)."""
    _keys.total = 0
    try:
        # What `json.loads` does with bytes: UTF-8, -16 or -32, told apart by the first bytes.
        data = _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except _TooMany:
        raise BadRequest("bad_json", f"too many keys (at most {MAX_KEYS_PER_OBJECT} per object, {MAX_KEYS} in all)") from None
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("bad_json", "the body is not valid JSON") from None
    # Nesting can be no deeper than the number of '[' and '{' in the body (counted in C): only a
    # body with more of them than MAX_DEPTH needs the walk (an envelope has about eight).
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth(data) > MAX_DEPTH:
        raise _too_deep()
    return data


class _TooMany(Exception):
    pass


def _too_deep() -> BadRequest:
    return BadRequest("bad_json", f"the body is nested too deeply (at most {MAX_DEPTH} levels)")


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


async def read_json(request: web.Request, *, required: Mapping[str, type], optional: Mapping[str, type] | None = None) -> dict[str, Any]:
    """The request's JSON object, with exactly these fields of these types."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("unsupported_media_type", "send the body as application/json")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge("too_large", "the request body is too large") from None
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise BadRequest("bad_json", "the body must be a JSON object")
    optional = optional or {}
    unknown = set(data) - set(required) - set(optional)
    if unknown:
        raise BadRequest("unknown_field", f"unknown field: {sorted(unknown)[0]}")
    for name in required:
        if name not in data:
            raise BadRequest("missing_field", f"missing field: {name}")
    for name, kind in {**required, **optional}.items():
        if name in data and not _is(data[name], kind):
            raise BadRequest("bad_field", f"field {name} must be {_describe(kind)}")
    return data


def _is(value: object, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return type(value) is int
    if kind is type(None):
        return value is None
    return isinstance(value, kind)


def _describe(kind: type) -> str:
    return {str: "a string", bool: "true or false", int: "an integer", dict: "an object", list: "a list"}.get(kind, kind.__name__)


def b64_field(data: Mapping[str, Any], name: str, length: int) -> bytes:
    """A `b64` field of an exact decoded length, or 400 naming the field."""
    try:
        return unb64(data[name], length=length, field=name)
    except CryptoError as exc:
        raise BadRequest("bad_" + name, exc.message) from None


def usable_public_key(pk: bytes) -> bool:
    """Whether `pk` is an X25519 public key a sealed box can really be made to.

    The all-zero key and the other low-order points (RFC 7748 section 7) make
    every shared secret the same known value, so a box "sealed" to them is
    readable by anyone. Multiplying by a random scalar (libsodium clamps it to a
    multiple of 8) sends exactly those to the all-zero result, which libsodium
    refuses; a usable key gives a non-zero one.
    """
    if len(pk) != 32:
        return False
    try:
        crypto_scalarmult(secrets.token_bytes(32), pk)
    except NaclRuntimeError:
        return False
    return True


def public_key_field(data: Mapping[str, Any], name: str) -> bytes:
    """A `b64` X25519 public key that is usable (see `usable_public_key`), or 400 `bad_<name>`."""
    pk = b64_field(data, name, 32)
    if not usable_public_key(pk):
        raise BadRequest("bad_" + name, f"{name} is not a usable X25519 public key (all-zero or low order)")
    return pk
