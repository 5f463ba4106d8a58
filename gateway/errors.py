"""One exception tree for the gateway, mapped to HTTP in one place (`gateway.middlewares`)."""

from crypto import CryptoError


class ApiError(Exception):
    """A failure the caller caused or must know about: rendered as
    `{"error": {"code", "message"}}` for the API and as an error page for pages."""

    status = 400

    def __init__(self, code: str, message: str, *, status: int | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class TooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class RateLimited(ApiError):
    status = 429

    def __init__(self, retry_after: int, message: str = "too many requests; try again later"):
        super().__init__("rate_limited", message, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


def from_crypto(exc: CryptoError) -> ApiError:
    """The HTTP meaning of a crypto failure seen by the server."""
    if exc.code == CryptoError.STALE_TEAM_KEY:
        return Conflict(exc.code, exc.message)
    if exc.code == CryptoError.BAD_ENVELOPE:
        return BadRequest(exc.code, exc.message)
    return BadRequest("bad_request", exc.message)
