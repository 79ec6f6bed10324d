"""Auditing refusals and denials: someone asked for something they may not do; nothing changes."""

from __future__ import annotations

from bot.approvals.events import request_event
from bot.db.audit import AuditEvent
from bot.db.store import Store


class Refusals:
    """Writes the audit record of a refusal (``request.denied``, ``approval.denied``, ...)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def deny(self, request_id: str, actor: str, team_id: str, outcome: str) -> None:
        """Audit someone not allowed to decide a request (``approval.denied``), with the
        request's target as every event about a request carries it."""
        request = self.store.get(request_id) if request_id else None
        if request is None:
            self.refuse("approval.denied", actor, team_id, outcome, request_id=request_id or None)
        else:
            self.store.audit(request_event("approval.denied", request, actor, outcome))

    def refuse(
        self,
        event: str,
        actor: str,
        team_id: str,
        outcome: str,
        *,
        request_id: str | None = None,
        hook_id: str | None = None,
        secret_name: str | None = None,
        **detail: object,
    ) -> None:
        """Audit a refusal or denial that changes nothing."""
        self.store.audit(
            AuditEvent(
                event=event,
                actor=actor,
                team_id=team_id,
                outcome=outcome,
                request_id=request_id,
                hook_id=hook_id,
                secret_name=secret_name,
                detail=dict(detail),
            )
        )
