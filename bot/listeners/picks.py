"""The request modal's target picker: a pick reads ahead what the submission's checks need."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot import ids
from bot.flow import Services


def register(app: App) -> None:
    """Attach the listener for a target picked in the request modal (``dispatch_action``)."""
    app.action(ids.BLOCK_HOOK)(on_target_picked)


def on_target_picked(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], services: Services
) -> None:
    """Ack at once; the target's secret names are read in the background, and kept fresh
    while this modal stays open, so that submitting it never waits for Auth0."""
    ack()
    value = (action.get("selected_option") or {}).get("value")
    viewer = (body.get("view") or {}).get("id")
    if isinstance(value, str) and isinstance(viewer, str):
        services.watch_target(value, viewer)
