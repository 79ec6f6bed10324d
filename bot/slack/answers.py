"""What Slack is answered: pure mappings from outcomes to acks and field-error texts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.approvals.results import Outcome, Result
from bot.limits import MAX_SECRETS_PER_ACTION, MAX_SECRETS_PER_HOOK
from bot.slack import ids
from bot.slack.blocks.approval_message import describe_state
from bot.slack.blocks.parts import info_modal, request_label

NOT_A_REQUESTER = "You are not allowed to request hook secret changes."
NOT_AN_APPROVER = "You are not (or no longer) an approver, so this was not recorded."
SELF_DECISION = "You requested this change: another approver has to decide it."
NO_SUCH_REQUEST = "No such request."
UNKNOWN_TARGET = "The bot serves no such target. Pick one from the list."
NO_RULE = (
    "No rule of the bot's policy covers this target, so it cannot be requested. Ask a bot "
    "admin to add a rule for it."
)
RULE_UNKNOWN = "Auth0 did not answer in time to tell which rule covers this target. Submit again."
NO_REQUESTER_HERE = "You are not allowed to request changes to this target (its rule's requesters)."
REASON_NEEDED = "A reason is required: this target's changes are approved by others."
APPROVED_ALREADY = "You approved this request already; one approval per person counts."
NOT_COUNTED = (
    "Your approval would not count: every part of the quorum you could fill has its approvals "
    "already. Someone from another list has to approve."
)
POLICY_CHANGED = (
    "The policy's rule for this request changed since it was made, so it expired and its "
    "value was erased. The requester has to request it again."
)
HOOK_GONE = "That hook no longer exists in Auth0. Pick another."
NAME_EXISTS = (
    "This hook already has a secret with that name. Use `/hook-secret update` to rotate it."
)
HOOK_FULL = f"This hook already has {MAX_SECRETS_PER_HOOK} secrets, Auth0's maximum."
NAME_MISSING = "This hook has no secret with that name. Use `/hook-secret add` to create it."
ACTION_GONE = "That action no longer exists in Auth0. Pick another."
ACTION_FULL = f"This action already has {MAX_SECRETS_PER_ACTION} secrets, Auth0's maximum."


def name_exists(kind: str) -> str:
    """A name already on the target."""
    return NAME_EXISTS.replace("This hook", f"This {kind}")


def name_missing(kind: str) -> str:
    """A name the target lacks."""
    return NAME_MISSING.replace("This hook", f"This {kind}")


def full(kind: str) -> str:
    """The target holds as many secrets as Auth0 allows."""
    return ACTION_FULL if kind == "action" else HOOK_FULL


# Approvals that change nothing, answered under the comment field (the modal stays open).
REFUSED_APPROVALS = {
    Outcome.APPROVED_ALREADY: APPROVED_ALREADY,
    Outcome.NOT_COUNTED: NOT_COUNTED,
    Outcome.NOT_AN_APPROVER: NOT_AN_APPROVER,
}


@dataclass(frozen=True)
class DecisionAck:
    """How to answer a decision modal's submission, and whether follow-ups run."""

    ack: dict[str, Any]
    follow_up: bool


def decision_ack(result: Result) -> DecisionAck:
    """The ack for a decision's outcome: field errors, an "already decided" view, or none."""
    if result.outcome is Outcome.SELF_APPROVAL:
        return DecisionAck(errors(ids.BLOCK_COMMENT, SELF_DECISION), follow_up=False)
    refused = REFUSED_APPROVALS.get(result.outcome)
    if refused is not None:
        return DecisionAck(errors(ids.BLOCK_COMMENT, refused), follow_up=False)
    if result.outcome is Outcome.POLICY_CHANGED:
        view = info_modal("Request expired", POLICY_CHANGED)
        return DecisionAck({"response_action": "update", "view": view}, follow_up=False)
    if result.outcome is Outcome.NOT_FOUND or result.request is None:
        return DecisionAck(errors(ids.BLOCK_COMMENT, NO_SUCH_REQUEST), follow_up=False)
    if result.outcome in (Outcome.LOST_RACE, Outcome.EXPIRED):
        text = (
            f"Request {request_label(result.request)} was {describe_state(result.request)}. "
            "Nothing more to do."
        )
        view = info_modal("Already decided", text)
        return DecisionAck({"response_action": "update", "view": view}, follow_up=True)
    return DecisionAck({}, follow_up=True)


def errors(block_id: str, message: str) -> dict[str, Any]:
    """Ack arguments showing ``message`` under one input block."""
    return {"response_action": "errors", "errors": {block_id: message}}


def still_open(request_id: str) -> str:
    """Why a second request for the same secret waits (plain text: field errors show a
    <@U…> mention raw, so it names no one)."""
    return (
        f"Request {request_id} for this secret is still open; wait for it to be decided "
        "(see the approval channel)."
    )
