"""The request modal's target picker: a pick reads ahead what the submission's checks need."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.slack import ids
from bot.slack.services import Services


def register(app: App) -> None:
    """Attach the listener for a target picked in the request modal (``dispatch_action``)."""
    app.action(ids.BLOCK_HOOK)(on_target_picked)
    for callback in ids.REQUEST_CALLBACKS:
        app.view_closed(callback)(on_form_closed)


def on_target_picked(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], services: Services
) -> None:
    """Ack at once; the target's secret names are read in the background, and kept fresh
    while this modal stays open, so that submitting it never waits for Auth0."""
    ack()
    value, viewer = _field(action, "selected_option", "value"), _field(body, "view", "id")
    if value and viewer:
        services.watch_target(value, viewer)


def on_form_closed(ack: Ack, body: dict[str, Any], services: Services) -> None:
    """The request form was cancelled: its target needs no more reading ahead for it."""
    ack()
    viewer = _field(body, "view", "id")
    if viewer:
        services.form_closed(viewer)


def _field(payload: dict[str, Any], outer: str, inner: str) -> str | None:
    """``payload[outer][inner]`` when it is a string (a crafted payload may hold anything)."""
    holder = payload.get(outer)
    value = holder.get(inner) if isinstance(holder, dict) else None
    return value if isinstance(value, str) else None
