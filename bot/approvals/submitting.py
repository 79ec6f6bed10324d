"""Recording a submission: the request row under the rule that decides its target, sealed, with
its audit record and messages in one transaction (or approved at once by a self-service rule)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import SecretStr

from bot.approvals.events import request_event
from bot.approvals.states import Kind, State
from bot.db.models import SecretRequest
from bot.db.requests import new_request_id
from bot.db.tx import Taken, Tx
from bot.targets import DEFAULT_TENANT, TargetKind

if TYPE_CHECKING:
    from bot.approvals.workflow import Workflow


@dataclass(frozen=True)
class Draft:
    """A validated request as the requester submitted it."""

    kind: Kind
    team_id: str
    requester: str
    origin_channel: str
    target_id: str  # a hook's id or an action's id
    target_name: str
    secret_name: str
    value: SecretStr | None
    reason: str
    target_kind: TargetKind = TargetKind.HOOK
    tenant: str = DEFAULT_TENANT


class NoRule(Exception):
    """No rule of the policy covers the target: it cannot be requested (CONTRACT §6)."""


class AlreadyOpen(Exception):
    """Another request for the same hook secret is still pending or being applied."""

    def __init__(self, request_id: str, requester: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id
        self.requester = requester


class Submitting:
    """Records requests for a workflow (its store, vault, rules, seals and messages)."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow

    def submit(self, draft: Draft) -> SecretRequest:
        """Record a valid request: pending, or approved at once when no approval is required."""
        try:
            return self._record(draft)
        except Taken:
            pass  # the database keeps one open request per secret, on any replica
        existing = self.workflow.store.open_request_for(
            draft.target_id, draft.secret_name, draft.tenant
        )
        if existing is not None:
            raise AlreadyOpen(existing.id, existing.requester)
        # Decided between the clash and that read: the secret is free again (a third writer
        # taking it meanwhile leaves ``Taken`` raised).
        return self._record(draft)

    def _record(self, draft: Draft) -> SecretRequest:
        """Insert the request, its audit record and its messages in one transaction."""
        request = self._new_request(draft)
        with self.workflow.store.transaction() as tx:
            tx.add(request)
            tx.audit(
                request_event(
                    "request.submitted",
                    request,
                    draft.requester,
                    "pending",
                    reason=draft.reason,
                    fingerprint=request.fingerprint,
                )
            )
            if request.required_approvals == 0:
                request = self._self_confirm(tx, request)
            else:
                self.workflow.tell(tx, "submitted", request)
        return request

    def _new_request(self, draft: Draft) -> SecretRequest:
        rule = self.workflow.rules.rule_for(draft.tenant, draft.target_kind, draft.target_name)
        if rule is None:
            raise NoRule(f"{draft.tenant}/{draft.target_kind}:{draft.target_name}")
        now = self.workflow.now()
        ttl = timedelta(seconds=rule.ttl) if rule.ttl else self.workflow.ttl
        request = SecretRequest(
            id=new_request_id(),
            kind=draft.kind,
            target_kind=draft.target_kind,
            tenant=draft.tenant,
            state=State.PENDING,
            team_id=draft.team_id,
            requester=draft.requester,
            origin_channel=draft.origin_channel,
            target_id=draft.target_id,
            target_name=draft.target_name,
            secret_name=draft.secret_name,
            reason=draft.reason,
            value_ciphertext=self.workflow.vault.encrypt(draft.value) if draft.value else None,
            fingerprint=self.workflow.vault.fingerprint(draft.value) if draft.value else None,
            required_approvals=rule.required,
            rule_name=rule.name,
            rule_digest=rule.digest(),
            created_at=now,
            expires_at=now + ttl,
        )
        request.seal = self.workflow.guard.seal(request)
        return request

    def _self_confirm(self, tx: Tx, request: SecretRequest) -> SecretRequest:
        """No approval required: the requester's own submission approves it."""
        approved = tx.transition(
            request.id,
            [State.PENDING],
            State.APPROVED,
            decided_by=request.requester,
            decided_at=request.created_at,
            seal=self.workflow.guard.seal(
                request, state=State.APPROVED, decided_by=request.requester
            ),
        )
        tx.audit(
            request_event(
                "request.approved",
                request,
                request.requester,
                "approved",
                self_confirmed=True,
                approvers=[],  # a quorum of none, met without anyone (the requester never counts)
            )
        )
        return approved or request
