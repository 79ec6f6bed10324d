"""The audit record of each transition of a request (CONTRACT §5's events and fields)."""

from __future__ import annotations

from bot.approvals.results import Failure
from bot.approvals.rulebook import DEFAULT_RULE
from bot.approvals.states import Kind
from bot.db.audit import AuditEvent
from bot.db.models import SecretRequest
from bot.targets import TargetKind

APPLIED_EVENT = {
    Kind.ADD: "secret.added",
    Kind.UPDATE: "secret.updated",
    Kind.REMOVE: "secret.removed",
}


def request_event(
    event: str, request: SecretRequest, actor: str | None, outcome: str, **detail: object
) -> AuditEvent:
    """An event about ``request``, carrying its target as every such event does."""
    # An action's id is ``action_id``; ``hook_id`` stays null (CONTRACT §5).
    action = request.target_kind == TargetKind.ACTION
    where: dict[str, object] = {"action_id": request.target_id} if action else {}
    return AuditEvent(
        event=event,
        actor=actor,
        team_id=request.team_id,
        request_id=request.id,
        hook_id=None if action else request.target_id,
        secret_name=request.secret_name,
        outcome=outcome,
        detail={
            "tenant": request.tenant,
            "rule": request.rule_name or DEFAULT_RULE,
            "kind": request.kind,
            "target": request.target_kind,
            "hook_name": request.target_name,
            **where,
            **detail,
        },
    )


def outcome_event(
    done: SecretRequest, request: SecretRequest, error: Failure | None, version: int | None
) -> AuditEvent:
    """``secret.*`` (with the deployed version for an action) or ``request.failed``."""
    if error is not None:
        return request_event(
            "request.failed", done, request.decided_by, error.reason, message=error.message
        )
    extra: dict[str, object] = {"requester": request.requester}
    if request.target_kind == TargetKind.ACTION:
        extra["action_version"] = version
    event = APPLIED_EVENT[Kind(request.kind)]
    return request_event(event, done, request.decided_by, "applied", **extra)
