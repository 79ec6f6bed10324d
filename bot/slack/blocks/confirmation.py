"""The redacted confirmation posted once a change is applied, what a failed apply left, and
why a message about a request came as a DM rather than in its channel."""

from __future__ import annotations

from typing import Any

from bot.approvals.states import Kind
from bot.db.models import SecretRequest
from bot.slack.blocks.parts import DONE, message, note, section, target_noun
from bot.slack.text import esc, shown
from bot.targets import TargetKind


def confirmation(
    request: SecretRequest, approvers: list[str] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The redacted confirmation: who, which hook, which secret, never the value; approved by
    ``approvers`` (default: the one who decided)."""
    kind = Kind(request.kind)
    approvers = approvers or ([request.decided_by] if request.decided_by else [])
    approver = (
        "approved by " + ", ".join(f"<@{a}>" for a in approvers)
        if approvers and approvers != [request.requester]
        else "self-confirmed (no approval required)"
    )
    noun = target_noun(request)
    deployed = (
        f" and deployed as version {request.target_version}"
        if request.target_kind == TargetKind.ACTION and request.target_version is not None
        else ""
    )
    text = (
        f"Secret `{esc(request.secret_name)}` {DONE[kind]} on {noun} {shown(request.target_name)}"
        f"{deployed} by <@{request.requester}>, {approver}."
    )
    said = f"Request `{request.id}` · {noun} id `{request.target_id}` · the value is never shown"
    return message(text, [section(f":white_check_mark: {text}"), note(said)])


def failure_effect(request: SecretRequest, unknown: bool) -> str:
    """What a failed apply left behind, as people are told it."""
    if unknown:  # a timeout or a lost answer: don't promise nothing changed
        return ""
    if request.apply_phase in ("deploy_requested", "deployed"):
        return ""  # the deploy was sent: the failure itself says what runs
    if request.target_kind == TargetKind.ACTION and request.apply_phase not in (None, "planned"):
        return " Nothing was deployed; the action's draft in Auth0 holds the change."
    if request.target_kind == TargetKind.ACTION and request.failure_reason == "concurrent_edit":
        # Seen in the PATCH answer (or a read after it): the PATCH itself may have landed.
        return " Nothing was deployed; the action's draft in Auth0 may hold the change."
    return " Nothing was changed by it."


def shared_channel(channel: str) -> str:
    """Why a message about a request came as a DM: its channel is shared with another
    organization (Slack Connect)."""
    return (
        f"Sent to you directly: <#{channel}> is shared with another organization, "
        "so the bot posts nothing about secrets there."
    )


def unchecked_channel(channel: str, code: str) -> str:
    """Why a message about a request came as a DM: Slack would not say whether its channel is
    shared with another organization."""
    return (
        f"Sent to you directly: the bot could not check whether <#{channel}> is shared with "
        f"another organization (Slack answered `{esc(code)}`), so it posts nothing about "
        "secrets there."
    )


def sent_directly(
    text: str, blocks: list[dict[str, Any]], why: str
) -> tuple[str, list[dict[str, Any]]]:
    """A message meant for a channel, as a DM that says why it came there instead."""
    if not blocks:
        return f"{text}\n_{why}_", []
    return f"{text}\n{why}", [*blocks, note(why).to_dict()]
