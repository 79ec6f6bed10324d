"""Approve and Reject buttons: check the clicker, then open the decision modal."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.approvals.states import State
from bot.db.models import SecretRequest
from bot.slack import blocks, ids
from bot.slack.services import Services


def register(app: App) -> None:
    """Attach the button listeners."""
    app.action(ids.ACTION_APPROVE)(on_button)
    app.action(ids.ACTION_REJECT)(on_button)


def on_button(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond, services: Services
) -> None:
    """Ack the click; checking and opening the modal run after it."""
    ack()
    services.later_for(respond, open_decision, services, respond, body, action)


def open_decision(
    services: Services, respond: Respond, body: dict[str, Any], action: dict[str, Any]
) -> None:
    """Open the approval or rejection modal, or say why this user can't decide."""
    user, team = body["user"]["id"], services.team_id  # the team guard pinned it
    request = services.pending(str(action.get("value", ""))[:32])
    if request is None:
        _say(respond, "That request does not exist.")
        return
    if user == request.requester or not services.policy.may_approve(user, team):
        mine = user == request.requester
        why = "you requested it" if mine else "you are not in HOOK_SECRET_APPROVERS"
        _say(respond, f":no_entry: You can't decide request `{request.id}`: {why}.")
        services.deny(request.id, user, team, "self_approval" if mine else "not_an_approver")
        return
    # seals.py: an Approve click on a tampered request, or one whose requester is no longer
    # allowed, fails it (both told) instead of opening the modal.
    if action.get("action_id") == ids.ACTION_APPROVE and services.workflow.screen(request, user):
        return
    if request.state != State.PENDING:
        _decided_already(services, respond, body, request)
        return
    approve = action.get("action_id") == ids.ACTION_APPROVE
    trigger = body.get("trigger_id") or ""
    services.modals.open(respond, trigger, blocks.decision_modal(request, approve))


def _decided_already(
    services: Services, respond: Respond, body: dict[str, Any], request: SecretRequest
) -> None:
    """Say how the request ended; a stale copy of its message loses its buttons too."""
    _say(respond, f"Request `{request.id}` was {blocks.describe_state(request)}.")
    clicked = body.get("container") or {}
    services.stale_copy(request, clicked.get("channel_id"), clicked.get("message_ts"))


def _say(respond: Respond, text: str) -> None:
    respond(text=text, response_type="ephemeral", replace_original=False)
