"""Approve and Reject buttons: check the clicker, then open the decision modal."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.approvals.rulebook import DEFAULT_RULE, still_deciding
from bot.approvals.rules import Rule
from bot.approvals.states import State
from bot.db.models import SecretRequest
from bot.slack import answers, blocks, ids
from bot.slack.blocks.parts import named_tenant, request_label
from bot.slack.services import Services
from bot.slack.text import esc


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
    user = body["user"]["id"]
    request = services.pending(str(action.get("value", ""))[:32])
    if request is None:
        _say(respond, "That request does not exist.")
        return
    approve = action.get("action_id") == ids.ACTION_APPROVE
    rule = services.policy.rule_of(request)
    if not _may_decide(services, respond, request, rule, user, approve):
        return
    if request.state != State.PENDING:
        _decided_already(services, respond, body, request)
        return
    count = services.workflow.approving.would_count
    refused = count(request, rule, user) if approve and rule is not None else None
    if refused is not None:
        _say(respond, f":information_source: {answers.REFUSED_APPROVALS[refused]}")
        return
    trigger = body.get("trigger_id") or ""
    services.modals.open(respond, trigger, blocks.decision_modal(request, approve))


def _may_decide(
    services: Services,
    respond: Respond,
    request: SecretRequest,
    rule: Rule | None,
    user: str,
    approve: bool,
) -> bool:
    """Whether ``user`` may go on deciding ``request``; if not, they are told why (and the
    denial audited, a request under a changed rule expired, a tampered one failed)."""
    team = services.team_id  # the team guard pinned it
    pending = request.state == State.PENDING
    if pending and not still_deciding(request, rule):  # the policy changed since: expire it
        services.workflow.expire_changed(request.id)
        _say(respond, f":hourglass: {answers.POLICY_CHANGED}")
        return False
    mine = user == request.requester
    if mine or not services.policy.may_approve(user, team, rule if pending else None):
        why = "you requested it" if mine else _not_listed(request, rule)
        _say(respond, f":no_entry: You can't decide request {request_label(request)}: {why}.")
        services.deny(request.id, user, team, "self_approval" if mine else "not_an_approver")
        return False
    # seals.py: an Approve click on a tampered request, or one whose requester is no longer
    # allowed, fails it (both told) instead of opening the modal.
    return not (approve and services.workflow.screen(request, user))


def _not_listed(request: SecretRequest, rule: Rule | None) -> str:
    """Why someone may not decide: not on the variable's list, or not in the rule's."""
    if rule is None or (not named_tenant(request) and rule.name == DEFAULT_RULE):
        return "you are not in HOOK_SECRET_APPROVERS"
    return f"you are not among the approvers of its rule `{esc(rule.name)}`"


def _decided_already(
    services: Services, respond: Respond, body: dict[str, Any], request: SecretRequest
) -> None:
    """Say how the request ended; a stale copy of its message loses its buttons too."""
    _say(respond, f"Request {request_label(request)} was {blocks.describe_state(request)}.")
    clicked = body.get("container") or {}
    services.stale_copy(request, clicked.get("channel_id"), clicked.get("message_ts"))


def _say(respond: Respond, text: str) -> None:
    respond(text=text, response_type="ephemeral", replace_original=False)
