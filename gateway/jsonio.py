"""Reading JSON request bodies strictly: content type, size, shape, b64 fields."""

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from crypto import CryptoError, unb64
from gateway.errors import BadRequest, TooLarge, UnsupportedMediaType


async def read_json(request: web.Request, *, required: Mapping[str, type], optional: Mapping[str, type] | None = None) -> dict[str, Any]:
    """The request's JSON object, with exactly these fields of these types."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("unsupported_media_type", "send the body as application/json")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge("too_large", "the request body is too large") from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("bad_json", "the body is not valid JSON") from None
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
