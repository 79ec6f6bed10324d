"""Reading Management API answers: JSON bodies, the error envelope, when to retry a 429."""

from __future__ import annotations

import json
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx

from bot.auth0.errors import Auth0Unavailable

UNREADABLE: Final = "Auth0 sent an answer the bot could not read"
# A 429 with neither Retry-After nor x-ratelimit-reset: wait about one refill.
_DEFAULT_RATE_LIMIT_WAIT: Final = 1.0


def json_body(data: object) -> bytes:
    """Compact JSON, as the bot sends every body."""
    return json.dumps(data, separators=(",", ":")).encode()


def decode(response: httpx.Response) -> Any:
    """The answer's JSON; an unreadable body is ``Auth0Unavailable``, never quoted."""
    try:
        return response.json()
    except ValueError:
        pass
    # Raised outside the except block: a decode error quotes the body, which may hold a token.
    raise Auth0Unavailable(UNREADABLE)


def envelope(response: httpx.Response) -> tuple[str, str | None]:
    """Auth0's error ``message`` and ``errorCode`` (or OAuth ``error``), when readable."""
    try:
        data = response.json()
    except ValueError:
        return "", None
    if not isinstance(data, dict):
        return "", None
    code = data.get("errorCode", data.get("error") if "statusCode" not in data else None)
    return str(data.get("message", "")), None if code is None else str(code)


def unreadable() -> Auth0Unavailable:
    """The error for an answer the bot could not read."""
    return Auth0Unavailable(UNREADABLE)


def retry_at(headers: httpx.Headers, now: float) -> float:
    """When Auth0 says to try again: Retry-After if sent, else x-ratelimit-reset (epoch)."""
    retry_after = _seconds_after(headers.get("retry-after"), now)
    if retry_after is not None:
        return now + retry_after
    try:
        return float(headers["x-ratelimit-reset"])
    except (KeyError, ValueError):
        return now + _DEFAULT_RATE_LIMIT_WAIT


def _seconds_after(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    except (TypeError, ValueError):
        return None
