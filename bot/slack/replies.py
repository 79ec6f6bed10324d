"""Replies to the person who acted when the payload has no ``response_url`` (a click in a
modal or on the Home tab): an ephemeral message where they clicked, else a direct message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookResponse


class DirectReply(Respond):
    """``respond()`` for a payload without a ``response_url``: the same call, answered through
    the Web API (Bolt's own ``respond`` raises there)."""

    def __init__(self, client: WebClient, user: str, channel: str | None) -> None:
        super().__init__(response_url=None)
        self._client = client
        self._user = user
        self._channel = channel

    def __call__(  # type: ignore[override]
        self,
        text: str | dict[str, Any] = "",
        blocks: Sequence[Any] | None = None,
        **_: Any,
    ) -> WebhookResponse:
        """Send ``text`` (and ``blocks``) to the person; replace/delete hints do not apply."""
        message = text if isinstance(text, dict) else {"text": text, "blocks": blocks}
        words, shown = str(message.get("text") or ""), message.get("blocks")
        if self._channel:
            self._client.chat_postEphemeral(
                channel=self._channel, user=self._user, text=words, blocks=shown
            )
        else:  # the app's direct message with the person
            self._client.chat_postMessage(channel=self._user, text=words, blocks=shown)
        return WebhookResponse(url="", status_code=200, body="ok", headers={})


def clicked_channel(body: dict[str, Any]) -> str | None:
    """The channel a payload came from, when it names one."""
    for holder, key in (("channel", "id"), ("container", "channel_id")):
        found = body.get(holder)
        value = found.get(key) if isinstance(found, dict) else None
        if isinstance(value, str) and value:
            return value
    value = body.get("channel_id")
    return value if isinstance(value, str) and value else None
