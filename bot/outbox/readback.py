"""Finding a post that may already be in Slack before sending it again.

Every channel post the outbox makes carries message ``metadata`` naming its request and outbox
row. When an earlier attempt's fate is unknown (the process died mid-call, or the answer was
lost), the next attempt reads the channel back with ``conversations.history`` and, if the copy
is there, takes its ``ts`` instead of posting a second one. That needs the ``channels:history``
(public channels), ``groups:history`` (private ones) or ``im:history`` (direct messages) scope;
without it Slack answers ``missing_scope``, and the message is posted again (at least once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.logs import get_logger

log = get_logger(__name__)

EVENT_TYPE = "hook_secret_bot_message"
# The optional bot scopes the read-back needs: public and private channels, and the direct
# messages the bot sends (the manifest offers them commented out).
SCOPES = ("channels:history", "groups:history", "im:history")
# Slack's smallest page: non-Marketplace apps distributed commercially get at most 15 messages
# per call (and one call a minute); everyone else accepts it too.
PAGE = 15
PAGES = 20
# Clocks differ between this host and Slack's: look this much before the row was queued.
SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class Identity:
    """Who the bot is in Slack (``auth.test``'s ``bot_id`` and ``app_id``): only a message
    carrying them is the bot's own. Any app in the workspace can post matching metadata."""

    bot_id: str
    app_id: str | None = None

    @classmethod
    def of(cls, auth_test: Any) -> Identity | None:
        """From an ``auth.test`` answer; None when it names no bot (a user token)."""
        bot_id, app_id = auth_test.get("bot_id"), auth_test.get("app_id")
        if not isinstance(bot_id, str) or not bot_id:
            return None
        return cls(bot_id, app_id if isinstance(app_id, str) and app_id else None)

    def posted(self, message: dict[str, Any]) -> bool:
        """Whether this bot posted ``message`` (an app id, when both sides know it, too)."""
        app_id = message.get("app_id")
        same_app = self.app_id is None or app_id is None or app_id == self.app_id
        return message.get("bot_id") == self.bot_id and same_app


class OwnIdentity:
    """The bot's identity, looked up (``auth.test``) once when a read-back first needs it."""

    def __init__(self, lookup: Callable[[], Identity | None]) -> None:
        self._lock = threading.Lock()
        self._lookup = lookup
        self._known: Identity | None = None

    def get(self) -> Identity | None:
        """The identity, None when it can't be known (then nothing is adopted)."""
        with self._lock:
            if self._known is None:
                try:
                    self._known = self._lookup()
                except Exception as error:  # asked again at the next read-back
                    log.warning("auth.test failed; adopting no earlier copy", error=str(error))
            return self._known


def tag(request_id: str, outbox_id: int) -> dict[str, Any]:
    """The metadata a post carries: ids only (any app in the workspace may read it)."""
    return {
        "event_type": EVENT_TYPE,
        "event_payload": {"request_id": request_id, "outbox_id": outbox_id},
    }


class CannotRead(Exception):
    """Slack refused the read-back for good; the code says why (``missing_scope``: the history
    scopes were not granted, ``not_in_channel``, ``channel_not_found``, ``unknown_method``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class ReadTooSlow(Exception):
    """The pages did not come back before the deadline: look again on the next attempt."""


def earlier_copy(
    history: Callable[..., Any],
    channel: str,
    request_id: str,
    outbox_id: int,
    since: datetime,
    deadline: float | None = None,
    *,
    own: Identity | None,
) -> str | None:
    """The ``ts`` of this row's copy already in ``channel``, None when there is none.

    Only a post of the bot's own (``own``) is a copy: when the bot's identity
    can't be known, none is adopted and the message is posted again (at least once).
    ``history`` calls ``conversations.history``, raising ``CannotRead`` when Slack refuses it
    for good; anything else it raises (a retry) propagates: the post waits until the copy
    can be looked for."""
    if own is None:
        return None
    oldest = f"{(since - SKEW).timestamp():.6f}"
    cursor: str | None = None
    for _ in range(PAGES):
        if deadline is not None and time.monotonic() > deadline:
            raise ReadTooSlow(channel)
        page = history(
            channel=channel,
            oldest=oldest,
            limit=PAGE,
            include_all_metadata=True,
            **({"cursor": cursor} if cursor else {}),
        )
        for message in page.get("messages") or []:
            if own.posted(message) and _is_copy(message, request_id, outbox_id):
                return str(message["ts"])
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not page.get("has_more") or not cursor:
            return None
    log.warning("gave up looking for an earlier copy", channel=channel, pages=PAGES)
    return None


def _is_copy(message: dict[str, Any], request_id: str, outbox_id: int) -> bool:
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    return (
        isinstance(payload, dict)
        and payload.get("request_id") == request_id
        and str(payload.get("outbox_id")) == str(outbox_id)
    )
