"""What people are told while the database is down: nothing was recorded, try again."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import BoltResponse
from slack_sdk.models.blocks import SectionBlock
from slack_sdk.models.views import View
from slack_sdk.webhook import WebhookClient
from sqlalchemy import exc

from bot.logs import get_logger

log = get_logger(__name__)
NOT_RECORDED = (
    "Nothing was recorded: the bot's database is unavailable right now. "
    "Please try again in a few minutes."
)
# The response URL is Slack's; a slow answer there must not hold up the ack for long.
TELL_TIMEOUT = 2
# Errors that mean the database could not be reached or used, not a bug in the bot.
OUTAGES = (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError, exc.TimeoutError)


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the database is unreachable."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OUTAGES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def answer(body: dict[str, Any]) -> BoltResponse:
    """The ack for a Slack request the bot can't record: modal errors for a submission, an
    ephemeral message for a click, the text itself for a command."""
    if body.get("type") == "view_submission":
        return _json(_submission_answer(body.get("view") or {}))
    if body.get("type") == "block_actions":
        _tell(body.get("response_url"))
        return BoltResponse(status=200, body="")
    if "command" in body:
        return BoltResponse(status=200, body=f":warning: {NOT_RECORDED}")
    return BoltResponse(status=200, body="")


def _submission_answer(view: dict[str, Any]) -> dict[str, Any]:
    inputs = [
        block["block_id"]
        for block in view.get("blocks") or []
        if isinstance(block, dict) and block.get("type") == "input" and block.get("block_id")
    ]
    if inputs:
        # Shown under the first field, where the person reads from; the form keeps its input.
        return {"response_action": "errors", "errors": {inputs[0]: NOT_RECORDED}}
    notice = View(
        type="modal",
        title="Not recorded",
        blocks=[SectionBlock(text=NOT_RECORDED)],
    )
    return {"response_action": "update", "view": notice.to_dict()}


def _tell(response_url: object) -> None:
    if not isinstance(response_url, str) or not response_url:
        return
    try:
        WebhookClient(response_url, timeout=TELL_TIMEOUT).send(
            text=f":warning: {NOT_RECORDED}", response_type="ephemeral", replace_original=False
        )
    except Exception as error:  # the person is told nothing more; the log says why
        log.warning("could not tell about the database outage", error=type(error).__name__)


def _json(content: dict[str, Any]) -> BoltResponse:
    return BoltResponse(
        status=200, body=json.dumps(content), headers={"content-type": "application/json"}
    )
