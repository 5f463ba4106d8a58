"""OpenAPI paths of the staff API (session cookie + X-CSRF-Token)."""

from typing import Any


def paths() -> dict[str, Any]:
    return {}
