"""Reading and writing Management API bodies: compact JSON out, JSON and the error envelope in."""

from __future__ import annotations

import json
from typing import Any, Final

import httpx

from bot.auth0.errors import Auth0Unavailable

UNREADABLE: Final = "Auth0 sent an answer the bot could not read"


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
