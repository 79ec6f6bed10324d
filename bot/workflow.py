"""The approval state machine: submit, decide, apply, expire and reconcile requests."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import SecretStr

from bot.audit import AuditEvent
from bot.auth0.errors import Auth0Error
from bot.crypto import Vault, VaultError
from bot.domain import Provenance
from bot.logs import get_logger
from bot.models import Kind, SecretRequest, State
from bot.store import Store, Tx, new_request_id
from bot.targets import DEFAULT_TENANT, Applied, Change, TargetKind, Targets

log = get_logger(__name__)
T = TypeVar("T")

APPLIED_EVENT = {
    Kind.ADD: "secret.added",
    Kind.UPDATE: "secret.updated",
    Kind.REMOVE: "secret.removed",
}
# An apply that has not finished after this long is taken to have died with its process.
APPLY_LEASE = timedelta(minutes=5)
# The winner of an approval claims the apply within milliseconds; unclaimed after this, it died.
UNCLAIMED_GRACE = timedelta(seconds=30)


UNDECRYPTABLE = (
    "no configured encryption key decrypts the stored value (was a key removed from "
    "HOOK_SECRET_ENCRYPTION_KEY?)"
)
INTERNAL = "an unexpected error inside the bot (its logs have the details)"


class ApplyError(Exception):
    """Applying failed inside the bot, before anything was sent to Auth0."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _each(step: Callable[[str], T], ids: Sequence[str]) -> list[T]:
    """Run ``step`` for every id, logging (not raising) the failures of single items."""
    results = []
    for item in ids:
        try:
            results.append(step(item))
        except Exception:
            log.exception("periodic step failed for one request", request_id=item)
    return results


@dataclass(frozen=True)
class Draft:
    """A validated request as the requester submitted it."""

    kind: Kind
    team_id: str
    requester: str
    origin_channel: str
    hook_id: str
    hook_name: str
    secret_name: str
    value: SecretStr | None
    reason: str
    target_kind: TargetKind = TargetKind.HOOK
    tenant: str = DEFAULT_TENANT


class AlreadyOpen(Exception):
    """Another request for the same hook secret is still pending or being applied."""

    def __init__(self, request_id: str, requester: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id
        self.requester = requester


class Outcome(StrEnum):
    """How a decision or an apply ended, from the caller's point of view."""

    APPROVED = "approved"
    REJECTED = "rejected"
    APPLIED = "applied"
    FAILED = "failed"
    LOST_RACE = "lost_race"  # somebody else decided or applied first
    EXPIRED = "expired"
    NOT_FOUND = "not_found"
    SELF_APPROVAL = "self_approval"


@dataclass(frozen=True)
class Result:
    """An outcome and the request as it stands afterwards."""

    outcome: Outcome
    request: SecretRequest | None
    error: Auth0Error | ApplyError | None = None


class Workflow:
    """Moves requests through their states; every transition is a CAS with its audit record."""

    def __init__(
        self,
        store: Store,
        vault: Vault,
        targets: Targets,
        *,
        ttl: timedelta,
        required_approvals: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.vault = vault
        self.targets = targets
        self.ttl = ttl
        self.required_approvals = required_approvals
        self.now = now

    def submit(self, draft: Draft) -> SecretRequest:
        """Record a valid request: pending, or approved at once when no approval is required."""
        request = self._new_request(draft)
        with self.store.transaction() as tx:
            # Checked again where the row is inserted: of two submissions at once, one is kept.
            existing = tx.open_request_for(draft.hook_id, draft.secret_name)
            if existing is not None:
                raise AlreadyOpen(existing.id, existing.requester)
            tx.add(request)
            tx.audit(
                self._event(
                    "request.submitted",
                    request,
                    draft.requester,
                    "pending",
                    reason=draft.reason,
                    fingerprint=request.fingerprint,
                )
            )
            if self.required_approvals == 0:
                request = self._self_confirm(tx, request)
        return request

    def _new_request(self, draft: Draft) -> SecretRequest:
        now = self.now()
        return SecretRequest(
            id=new_request_id(),
            kind=draft.kind,
            target_kind=draft.target_kind,
            tenant=draft.tenant,
            state=State.PENDING,
            team_id=draft.team_id,
            requester=draft.requester,
            origin_channel=draft.origin_channel,
            hook_id=draft.hook_id,
            hook_name=draft.hook_name,
            secret_name=draft.secret_name,
            reason=draft.reason,
            value_ciphertext=self.vault.encrypt(draft.value) if draft.value else None,
            fingerprint=self.vault.fingerprint(draft.value) if draft.value else None,
            required_approvals=self.required_approvals,
            created_at=now,
            expires_at=now + self.ttl,
        )

    def _self_confirm(self, tx: Tx, request: SecretRequest) -> SecretRequest:
        """No approval required: the requester's own submission approves it."""
        approved = tx.transition(
            request.id,
            [State.PENDING],
            State.APPROVED,
            decided_by=request.requester,
            decided_at=request.created_at,
        )
        tx.audit(
            self._event(
                "request.approved", request, request.requester, "approved", self_confirmed=True
            )
        )
        return approved or request

    def decide(self, request_id: str, actor: str, approve: bool, comment: str | None) -> Result:
        """Approve or reject a pending request; exactly one decision wins."""
        request, expired_now = self.touch(request_id)
        if request is None:
            return Result(Outcome.NOT_FOUND, None)
        if expired_now:
            return Result(Outcome.EXPIRED, request)
        if actor == request.requester:  # neither approve nor reject their own request
            self.store.audit(self._event("approval.denied", request, actor, "self_approval"))
            return Result(Outcome.SELF_APPROVAL, request)
        now = self.now()
        target = State.APPROVED if approve else State.REJECTED
        values: dict[str, Any] = {
            "decided_by": actor,
            "decided_at": now,
            "decision_comment": comment,
        }
        if not approve:
            values.update(value_ciphertext=None, finished_at=now)
        with self.store.transaction() as tx:
            decided = tx.transition(request_id, [State.PENDING], target, unexpired_at=now, **values)
            if decided is not None:
                event = "request.approved" if approve else "request.rejected"
                tx.audit(
                    self._event(
                        event,
                        decided,
                        actor,
                        target.value,
                        **({"comment": comment} if comment else {}),
                    )
                )
        if decided is None:
            return Result(Outcome.LOST_RACE, self.store.get(request_id))
        return Result(Outcome.APPROVED if approve else Outcome.REJECTED, decided)

    def apply(self, request_id: str, *, reconciling: bool = False) -> Result:
        """Send an approved request to Auth0 once, record the outcome, erase the value."""
        now = self.now()
        with self.store.transaction() as tx:
            claimed = tx.claim(request_id, now, stale_before=now - APPLY_LEASE)
        if claimed is None:
            return Result(Outcome.LOST_RACE, self.store.get(request_id))
        try:
            applied = self._send(claimed, reconciling)
        except Auth0Error as error:
            return self._finish(claimed, error)
        except VaultError:
            return self._finish(claimed, ApplyError("undecryptable", UNDECRYPTABLE))
        except Exception:
            log.exception("applying failed unexpectedly", request_id=request_id)
            return self._finish(claimed, ApplyError("internal_error", INTERNAL))
        return self._finish(claimed, None, applied)

    def _send(self, request: SecretRequest, reconciling: bool) -> Applied:
        target = self.targets[request.target_kind]
        change = Change(Kind(request.kind), request.hook_id, request.secret_name, None)
        # After a crash the earlier attempt may have reached Auth0: read back before resending.
        if reconciling and target.landed(change):
            return Applied()
        if change.kind is not Kind.REMOVE:
            if request.value_ciphertext is None:
                raise RuntimeError(f"request {request.id} has no value to apply")
            change = replace(change, value=self.vault.decrypt(request.value_ciphertext))
        return target.apply(change, Phases(self, request))

    def record_phase(self, request: SecretRequest, phase: str, progress: Mapping[str, Any]) -> None:
        """Keep an apply's phase in the request's row, in one transaction with its audit
        record; raises ``ApplyError`` when the request is no longer this apply's."""
        with self.store.transaction() as tx:
            kept = tx.transition(
                request.id,
                [State.APPROVED],
                State.APPROVED,
                claimed_at=request.apply_started_at,
                apply_phase=phase,
                apply_progress=json.dumps(dict(progress), separators=(",", ":")),
            )
            if kept is None:
                raise ApplyError("lost_apply", "another apply took this request over")
            visible = {k: v for k, v in progress.items() if k != "expectation"}
            tx.audit(self._event("apply.phase", kept, request.decided_by, phase, **visible))

    def _finish(
        self,
        request: SecretRequest,
        error: Auth0Error | ApplyError | None,
        applied: Applied | None = None,
    ) -> Result:
        now = self.now()
        state = State.FAILED if error else State.APPLIED
        version = applied.version if applied else None
        with self.store.transaction() as tx:
            done = tx.transition(
                request.id,
                [State.APPROVED],
                state,
                claimed_at=request.apply_started_at,
                value_ciphertext=None,
                finished_at=now,
                failure_reason=error.reason if error else None,
                target_version=version,
            )
            if done is not None:
                tx.audit(self._outcome_event(done, request, error, version))
        if done is None:
            return Result(Outcome.LOST_RACE, self.store.get(request.id))
        return Result(Outcome.FAILED if error else Outcome.APPLIED, done, error)

    def _outcome_event(
        self,
        done: SecretRequest,
        request: SecretRequest,
        error: Auth0Error | ApplyError | None,
        version: int | None,
    ) -> AuditEvent:
        """``secret.*`` (with the deployed version for an action) or ``request.failed``."""
        if error is not None:
            return self._event(
                "request.failed", done, request.decided_by, error.reason, message=error.message
            )
        extra: dict[str, object] = {"requester": request.requester}
        if request.target_kind == TargetKind.ACTION:
            extra["action_version"] = version
        event = APPLIED_EVENT[Kind(request.kind)]
        return self._event(event, done, request.decided_by, "applied", **extra)

    def expire(self, request_id: str) -> SecretRequest | None:
        """Expire one pending request whose time is up, erasing its value."""
        now = self.now()
        with self.store.transaction() as tx:
            expired = tx.transition(
                request_id, [State.PENDING], State.EXPIRED, value_ciphertext=None, finished_at=now
            )
            if expired is not None:
                tx.audit(self._event("request.expired", expired, None, "expired"))
        return expired

    def expire_due(self) -> list[SecretRequest]:
        """Expire every pending request past its TTL (one failure does not stop the rest)."""
        return [r for r in _each(self.expire, self.store.due_for_expiry(self.now())) if r]

    def reconcile(self) -> list[Result]:
        """Finish applies a crash left undone: read back, then apply at most once."""
        now = self.now()
        stranded = self.store.stranded(now - UNCLAIMED_GRACE, now - APPLY_LEASE)
        return _each(lambda rid: self.apply(rid, reconciling=True), stranded)

    def unposted(self, min_age: timedelta) -> Sequence[SecretRequest]:
        """Pending requests at least ``min_age`` old whose approval message was never posted."""
        now = self.now()
        return self.store.unposted(now - min_age, now)

    def open_request(self, hook_id: str, secret_name: str) -> SecretRequest | None:
        """The pending or approved request for this hook secret, if any."""
        return self.store.open_request_for(hook_id, secret_name)

    def provenance(self, hook_id: str) -> dict[str, Provenance]:
        """Who last set each of a hook's secrets through the bot."""
        return self.store.provenance(hook_id)

    def touch(self, request_id: str) -> tuple[SecretRequest | None, bool]:
        """The request, expired first if its time is up; True when this call expired it."""
        request = self.store.get(request_id)
        if request is None or request.state != State.PENDING or request.expires_at > self.now():
            return request, False
        expired = self.expire(request_id)
        return (expired or self.store.get(request_id)), expired is not None

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

    @staticmethod
    def _event(
        event: str, request: SecretRequest, actor: str | None, outcome: str, **detail: object
    ) -> AuditEvent:
        # An action's id is ``action_id``; ``hook_id`` stays null (CONTRACT §5).
        action = request.target_kind == TargetKind.ACTION
        where: dict[str, object] = {"action_id": request.hook_id} if action else {}
        return AuditEvent(
            event=event,
            actor=actor,
            team_id=request.team_id,
            request_id=request.id,
            hook_id=None if action else request.hook_id,
            secret_name=request.secret_name,
            outcome=outcome,
            detail={
                "kind": request.kind,
                "target": request.target_kind,
                "hook_name": request.hook_name,
                **where,
                **detail,
            },
        )


class Phases:
    """An apply's phases as the request's row keeps them (``bot.targets.Progress``)."""

    def __init__(self, workflow: Workflow, request: SecretRequest) -> None:
        self._workflow = workflow
        self._request = request
        self.phase: str | None = request.apply_phase
        self.data: dict[str, Any] = json.loads(request.apply_progress or "{}")

    def record(self, phase: str, **data: Any) -> None:
        """Record ``phase`` and what it noted, with its audit record."""
        merged = {**self.data, **data}
        self._workflow.record_phase(self._request, phase, merged)
        self.phase, self.data = phase, merged
