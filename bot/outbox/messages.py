"""Outbox messages as data: what a state change promises to tell someone in Slack."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any


class Method(StrEnum):
    """How a message is delivered (each maps to one or two Slack Web API calls)."""

    POST_APPROVAL = "post_approval"  # chat.postMessage to the approval channel; its ts is kept
    # The same post, rendered when sent from the request as stored (not in the ack). A name
    # of its own: a bot older than this can't load it, and leaves it for one that can
    # (sending it without its text would have Slack refuse it for good).
    POST_STORED_APPROVAL = "post_stored_approval"
    UPDATE_APPROVAL = "update_approval"  # chat.update of that message by its ts
    # The same, showing progress with the buttons: sent only while the request is still
    # pending (a retry landing after the decision's update would bring the buttons back).
    # A name of its own, as above: a bot older than this leaves it for one that knows it.
    UPDATE_PENDING_APPROVAL = "update_pending_approval"
    TELL = "tell"  # chat.postEphemeral, falling back to a DM
    DM = "dm"  # conversations.open, then chat.postMessage
    CONFIRM = "confirm"  # chat.postMessage to the origin channel, falling back to a DM


# The approval post, as queued now or by an earlier version.
APPROVAL_POSTS = (Method.POST_STORED_APPROVAL, Method.POST_APPROVAL)

# Columns of their own in the outbox row, not in its payload.
STORED_APART = ("method", "request_id")


@dataclass(frozen=True)
class Message:
    """One message to deliver; ``then``/``unreachable`` tell the requester how a post went."""

    method: Method
    request_id: str
    channel: str | None = None
    user: str | None = None
    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    # CONFIRM: the DM text when the origin channel can't be used.
    fallback: str | None = None
    # The approval posts: told to ``user`` in ``origin`` once posted, or when the channel
    # refused it.
    then: str | None = None
    unreachable: str | None = None
    origin: str | None = None
    # UPDATE_APPROVAL of one particular copy (a stale duplicate someone clicked).
    ts: str | None = None

    def payload(self) -> str:
        """Everything but the method and request id, as stored in the outbox row."""
        # Not dataclasses.asdict: it deep-copies the blocks only for json.dumps to read them.
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in STORED_APART}
        return json.dumps({k: v for k, v in data.items() if v not in (None, [], "")})

    @classmethod
    def load(cls, method: str, request_id: str, payload: str) -> Message:
        """The message an outbox row holds."""
        return cls(Method(method), request_id, **json.loads(payload))
