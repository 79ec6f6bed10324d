"""Modals opened and updated after an ack, with the one short try a trigger id allows."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.logs import get_logger
from bot.slack.web_client import short_lived

log = get_logger(__name__)
# A trigger_id dies about 3 s after the click or command.
TRIGGER_SECONDS = 3


class Modals:
    """Opens modals through a client built once: a short timeout and no rate-limit retries,
    because a retry that sleeps out a rate limit outlives the trigger."""

    def __init__(self, client: WebClient) -> None:
        self._client = client
        self._once = short_lived(client, TRIGGER_SECONDS)

    def open(
        self, respond: Respond, trigger_id: str, view: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Open a modal and return it; when Slack refuses (rate limit, stale trigger), say so."""
        try:
            opened: dict[str, Any] = self._once.views_open(trigger_id=trigger_id, view=view)["view"]
        except (SlackApiError, SlackClientError, OSError) as error:
            code = error.response.get("error") if isinstance(error, SlackApiError) else "timeout"
            log.warning("views.open refused", error=code)
            respond(
                text=f":warning: Slack did not open the form ({code}). Please try again.",
                response_type="ephemeral",
                replace_original=False,
            )
            return None
        return opened

    def update(self, opened: dict[str, Any], view: dict[str, Any]) -> None:
        """Replace an open modal's content (no trigger involved: the usual retries apply)."""
        self._client.views_update(view_id=opened["id"], hash=opened.get("hash"), view=view)
