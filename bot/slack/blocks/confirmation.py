"""The redacted confirmation posted once a change is applied, and what a failed apply left."""

from __future__ import annotations

from typing import Any

from bot.approvals.states import Kind
from bot.db.models import SecretRequest
from bot.slack.blocks.parts import DONE, message, note, section, target_noun
from bot.slack.text import esc, shown
from bot.targets import TargetKind


def confirmation(request: SecretRequest) -> tuple[str, list[dict[str, Any]]]:
    """The redacted confirmation: who, which hook, which secret, never the value."""
    kind = Kind(request.kind)
    approver = (
        f"approved by <@{request.decided_by}>"
        if request.decided_by and request.decided_by != request.requester
        else "self-confirmed (no approval required)"
    )
    noun = target_noun(request)
    deployed = (
        f" and deployed as version {request.target_version}"
        if noun == TargetKind.ACTION and request.target_version is not None
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
    if request.target_kind == TargetKind.ACTION and request.apply_phase not in (None, "planned"):
        return " Nothing was deployed; the action's draft in Auth0 holds the change."
    return " Nothing was changed by it."
