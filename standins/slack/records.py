"""What the Slack stand-in keeps and reports: its limits, calls, response posts and acks."""

from __future__ import annotations

import json
import secrets
import string
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

JSON = dict[str, Any]

TRIGGER_TTL: Final = 3.0
RESPONSE_URL_USES: Final = 5
RESPONSE_URL_TTL: Final = 30 * 60.0
ACK_DEADLINE: Final = 3.0

MAX_MESSAGE_TEXT: Final = 40_000
MAX_MESSAGE_BLOCKS: Final = 50
MAX_VIEW_BLOCKS: Final = 100

FORM: Final = "application/x-www-form-urlencoded"
JSON_DECODED_ARGS: Final = ("view", "blocks", "attachments", "metadata")
_ID_CHARS: Final = string.ascii_uppercase + string.digits
# Keys the stand-in adds to its records of messages (ephemeral ones); Slack never sends them.
STANDIN_KEYS: Final = frozenset({"is_ephemeral", "source", "channel"})


def new_id(prefix: str, length: int = 10) -> str:
    return prefix + "".join(secrets.choice(_ID_CHARS) for _ in range(length))


def truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


@dataclass(frozen=True)
class ApiCall:
    """One Web API request the stand-in received and what it answered."""

    method: str
    args: JSON
    headers: Mapping[str, str]
    body: bytes
    time: float
    status: int
    response: JSON
    token: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return error if isinstance(error, str) else None


@dataclass(frozen=True)
class ResponsePost:
    """One POST to a response URL issued by the stand-in."""

    url: str
    user_id: str
    channel_id: str
    payload: JSON
    time: float
    status: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def text(self) -> str:
        text = self.payload.get("text")
        return text if isinstance(text, str) else ""

    @property
    def response_type(self) -> str:
        return str(self.payload.get("response_type") or "ephemeral")

    @property
    def replace_original(self) -> bool:
        return truthy(self.payload.get("replace_original", False))

    @property
    def delete_original(self) -> bool:
        return truthy(self.payload.get("delete_original", False))


@dataclass
class User:
    id: str
    name: str
    team_id: str


@dataclass
class Channel:
    id: str
    name: str
    bot_is_member: bool
    is_im: bool = False
    is_mpim: bool = False
    im_user: str | None = None
    members: set[str] | None = None  # None: everybody is in the channel
    created: int = field(default_factory=lambda: int(time.time()))
    # Other organizations' teams the channel is shared with (Slack Connect), and those
    # invited that have not accepted yet.
    shared_with: tuple[str, ...] = ()
    pending_with: tuple[str, ...] = ()

    @property
    def is_private(self) -> bool:
        return self.id.startswith("G")

    def has_member(self, user_id: str) -> bool:
        if self.is_im:
            return user_id == self.im_user
        return self.members is None or user_id in self.members


@dataclass
class Trigger:
    user_id: str
    issued_at: float
    ttl: float
    used: bool = False


@dataclass
class OpenView:
    view: JSON
    user_id: str
    opened_at: float
    is_open: bool = True


@dataclass
class ResponseUrl:
    id: str
    user_id: str
    channel_id: str
    issued_at: float
    message_ts: str | None
    is_ephemeral: bool
    uses: int = 0
    last_ephemeral_ts: str | None = None


class ApiError(Exception):
    def __init__(self, error: str, *, messages: Sequence[str] = (), **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.body: JSON = {"ok": False, "error": error, **extra}
        if messages:
            self.body["response_metadata"] = {"messages": list(messages)}


class ResponseError(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


def invalid(message: str, pointer: str = "/") -> ApiError:
    return ApiError("invalid_arguments", messages=[f"[ERROR] {message} [json-pointer:{pointer}]"])


# ---------------------------------------------------------------------------
# The stand-in server


@dataclass(frozen=True)
class Ack:
    """The bot's answer to one request from Slack.

    ``status`` is the HTTP status (Socket Mode: 200 when an ack arrived, 0 when none did in
    time). ``problems`` lists what Slack itself would reject in the answer (late ack, errors
    keyed by a non-input block, an invalid view or options list)."""

    status: int
    body: bytes
    headers: Mapping[str, str]
    elapsed: float
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The answer's JSON (``None`` for an empty body)."""
        return json.loads(self.body) if self.body else None

    def payload(self) -> JSON:
        """The answer as Slack reads it: JSON object, ``{"text": body}`` for plain text, or
        ``{}`` for an empty body."""
        if not self.body:
            return {}
        content_type = self.headers.get("content-type", "")
        if content_type.startswith("application/json") or self.body.lstrip()[:1] == b"{":
            try:
                decoded = json.loads(self.body)
            except ValueError:
                return {"text": self.text}
            return decoded if isinstance(decoded, dict) else {"text": self.text}
        return {"text": self.text}
