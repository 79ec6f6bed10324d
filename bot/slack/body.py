"""Slack's request bodies parsed as Slack sends them, checked for the shape Bolt reads."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_bolt.request import BoltRequest

# The envelope types the bot answers, and what each must carry (Bolt indexes these keys).
SERVED = ("block_actions", "block_suggestion", "view_submission", "view_closed")
# Slack's form bodies have a dozen fields; far more means the body is not Slack's.
MAX_FIELDS = 64
# Slack's payloads nest a dozen levels (rich text in a message in a view); far more is not
# Slack's, and would exhaust the recursion of whatever walks it next (Bolt copies each body).
MAX_DEPTH = 48
M = TypeVar("M", bound=BaseModel)


class Malformed(ValueError):
    """A body Slack never sends: answered as bad input, never handed to Bolt."""


class _Shape(BaseModel):
    # Slack adds fields over time: only the ones the bot and Bolt read are checked.
    model_config = ConfigDict(extra="allow", strict=True)


class _Team(_Shape):
    id: str | None = None


class _User(_Shape):
    id: str
    team_id: str | None = None


class _State(_Shape):
    values: dict[str, dict[str, dict[str, Any]]] = {}


class _View(_Shape):
    id: str | None = None
    type: str
    callback_id: str
    private_metadata: str | None = None
    blocks: list[dict[str, Any]] = []
    state: _State | None = None


class _Action(_Shape):
    action_id: str
    block_id: str | None = None
    type: str | None = None


class _Envelope(_Shape):
    """An interactivity payload: the fields listeners and Bolt's matchers index into."""

    type: str
    team: _Team | None = None
    user: _User
    enterprise: dict[str, Any] | str | None = None
    channel: dict[str, Any] | None = None
    container: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    trigger_id: str | None = None
    response_url: str | None = None
    view: _View | None = None
    actions: list[_Action] | None = None
    action_id: str | None = None
    block_id: str | None = None
    value: str | None = None


class _Command(_Shape):
    """A slash command's form fields."""

    command: str
    team_id: str
    user_id: str
    text: str = ""
    channel_id: str | None = None
    trigger_id: str | None = None
    response_url: str | None = None


class _Authorization(_Shape):
    enterprise_id: str | None = None
    team_id: str | None = None
    user_id: str | None = None
    is_enterprise_install: bool | None = None


class _Event(_Shape):
    """An Events API body (JSON): the fields Bolt indexes before any listener runs."""

    type: str
    team_id: str | None = None
    enterprise_id: str | None = None
    api_app_id: str | None = None
    context_team_id: str | None = None
    context_enterprise_id: str | None = None
    is_ext_shared_channel: bool | None = None
    event: dict[str, Any] | None = None
    authorizations: list[_Authorization] | None = None


_REQUIRED = {
    "block_actions": ("actions",),
    "block_suggestion": ("action_id", "block_id", "value"),
    "view_submission": ("view",),
    "view_closed": ("view",),
}


def parse(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The body as Bolt's listeners expect it; ``Malformed`` when Slack would never send it.

    A form carrying a ``payload`` field is an interactivity envelope; any other form is a
    slash command, whatever words its values contain (Bolt 1.30 takes any body containing
    the word "payload" for an envelope).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("not UTF-8") from None
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "application/json":
        # Events API; the bot subscribes to none, Bolt answers them.
        event = _json_object(text)
        _checked(_Event, event)
        return _unicode_only(event)
    fields = _form(text)
    if "payload" in fields:
        return _envelope(_json_object(fields["payload"]))
    if fields.get("ssl_check") == "1":
        return fields  # Slack's certificate probe, answered by Bolt
    _checked(_Command, fields)
    return fields


def is_ssl_check(raw: bytes, content_type: str | None) -> bool:
    """Whether the body is Slack's certificate check (``ssl_check=1``, a form with no
    ``payload``): answered 200 with an empty body, signed or not (CONTRACT §3). Never raises."""
    try:
        if (content_type or "").split(";")[0].strip().lower() == "application/json":
            return False
        fields = _form(raw.decode("utf-8"))
    except (UnicodeDecodeError, Malformed):
        return False
    return fields.get("ssl_check") == "1" and "payload" not in fields


def kind_guess(raw: bytes) -> str:
    """The kind of an unverified body for metrics, from its form field names only (no JSON
    is parsed before the signature is checked). Never raises."""
    try:
        fields = _form(raw.decode("utf-8"))
    except (UnicodeDecodeError, Malformed):
        return "unknown"
    return "slash_command" if "command" in fields and "payload" not in fields else "unknown"


def kind_of(body: dict[str, Any]) -> str:
    """The request's kind for metrics: ``slash_command`` or the envelope's type."""
    if "command" in body and "type" not in body:
        return "slash_command"
    kind = body.get("type")
    return kind if isinstance(kind, str) and kind in SERVED else "unknown"


class ParsedRequest(BoltRequest):
    """A Bolt request over a body parsed here: Bolt's verifier still checks the raw bytes."""

    def __init__(
        self,
        raw: str,
        body: dict[str, Any],
        query: str | dict[str, Sequence[str]],
        headers: dict[str, str | Sequence[str]],
        context: dict[str, Any] | None = None,
    ) -> None:
        # Bolt takes a parsed dict only in Socket Mode; the request becomes an HTTP one again
        # at once, so that its RequestVerification middleware checks ``raw`` as usual.
        try:
            super().__init__(
                body=body, query=query, headers=headers, context=context, mode="socket_mode"
            )
        except (AttributeError, TypeError, KeyError, IndexError, ValueError):
            # Bolt indexes the body as Slack shapes it; any other shape is not Slack's.
            raise Malformed("a shape Bolt cannot read") from None
        self.raw_body = raw
        self.mode = "http"

    def to_copyable(self) -> BoltRequest:
        """A copy keeping the parsed body (Bolt's would parse ``raw_body`` its own way)."""
        return ParsedRequest(
            self.raw_body,
            copy.deepcopy(self.body),
            self.query,
            dict(self.headers),
            self.context.to_copyable(),
        )


def _form(text: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise Malformed("too many form fields") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise Malformed("a form field given twice")
    return fields


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise Malformed("not JSON") from None
    except RecursionError:
        raise Malformed("nested too deep") from None
    if not isinstance(value, dict):
        raise Malformed("not a JSON object")
    if _depth(value) > MAX_DEPTH:
        raise Malformed("nested too deep")
    return value


def _depth(value: Any) -> int:
    """How deep ``value``'s lists and objects nest, walked without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def _unicode_only(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` when every string in it is valid Unicode, but for what a person typed into a
    form (``view.state``): that is answered with a field error by the listener. A lone
    surrogate (``"\\ud800"`` is valid JSON) anywhere else is not Slack's."""
    view = payload.get("view")
    rest = {**payload, "view": {**view, "state": None}} if isinstance(view, dict) else payload
    try:
        json.dumps(rest, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise Malformed("text that is not valid Unicode") from None
    return payload


def _envelope(payload: dict[str, Any]) -> dict[str, Any]:
    envelope = _checked(_Envelope, payload)
    if envelope.type not in SERVED:
        raise Malformed("an interaction the bot does not serve")
    for key in _REQUIRED[envelope.type]:
        if getattr(envelope, key) is None:
            raise Malformed(f"{envelope.type} without {key}")
    if envelope.type == "block_actions" and not envelope.actions:
        raise Malformed("block_actions without an action")
    return _unicode_only(payload)


def _checked(model: type[M], value: dict[str, Any]) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        # Field locations only: the values may be anything, a pasted secret included.
        where = ", ".join(".".join(map(str, e["loc"])) for e in error.errors())
        raise Malformed(f"unexpected shape at {where}") from None
