"""Options loads for the target picker, answered from the cached hook and action lists."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.slack import blocks, ids
from bot.slack.services import Services
from bot.targets.errors import TargetError

# Options loads must answer inside 3 s.
OPTIONS_DEADLINE = 2.0


def register(app: App) -> None:
    """Attach the hook picker's options listener."""
    app.options(ids.BLOCK_HOOK)(on_hook_options)


def on_hook_options(ack: Ack, payload: dict[str, Any], services: Services) -> None:
    """Actions and hooks matching what the user typed; one unusable option when Auth0 can't
    answer."""
    try:
        person = payload.get("user")
        user = person.get("id") if isinstance(person, dict) else None
        # Only what this person may request (nobody named: nothing, fail closed).
        offers = services.offers(payload.get("value") or "", OPTIONS_DEADLINE, user=str(user or ""))
    except TargetError as error:
        ack(options=[blocks.unavailable_option(error.reason).to_dict()])
        return
    ack(**blocks.target_options(offers, by_tenant=services.fleet.named))
