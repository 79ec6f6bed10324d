"""The approval state machine: submit, decide, apply, expire and reconcile requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from pydantic import SecretStr

from bot.approvals.heartbeat import Heartbeat
from bot.approvals.states import Kind, State
from bot.auth0.errors import Auth0Error, Auth0Unavailable
from bot.db.audit import AuditEvent
from bot.db.encryption import Vault, VaultError
from bot.db.models import SecretRequest
from bot.db.store import Store, Taken, Tx, new_request_id
from bot.limits import Provenance
from bot.logs import get_logger
from bot.outbox.messages import Message
from bot.targets import DEFAULT_TENANT, Applied, Change, TargetKind, Targets

log = get_logger(__name__)
T = TypeVar("T")

APPLIED_EVENT = {
    Kind.ADD: "secret.added",
    Kind.UPDATE: "secret.updated",
    Kind.REMOVE: "secret.removed",
}
# A running apply renews its claim every HEARTBEAT; one not renewed for APPLY_LEASE died with
# its process (with a sweep every 10 s, a crashed apply is taken over within 30 s).
APPLY_LEASE = timedelta(seconds=20)
HEARTBEAT = timedelta(seconds=5)
# The winner of an approval claims the apply within milliseconds; unclaimed after this, it died.
UNCLAIMED_GRACE = timedelta(seconds=15)
# The requester hears that an apply is still going once it has run this long.
SLOW_APPLY = timedelta(seconds=30)
# An outcome Auth0 left unknown is read back for this long before it is recorded as failed.
SETTLE_WITHIN = timedelta(hours=1)


UNDECRYPTABLE = (
    "no configured encryption key decrypts the stored value (was a key removed from "
    "HOOK_SECRET_ENCRYPTION_KEY?)"
)
LOST_APPLY = "lost_apply"
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
    target_id: str  # a hook's id or an action's id
    target_name: str
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
    CHECKING = "checking"  # Auth0 left the outcome unknown: the sweep reads it back
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


class Messages(Protocol):
    """The Slack messages each transition implies (``bot.outbox.notify.Notifier``), queued
    with it."""

    def submitted(self, request: SecretRequest) -> list[Message]:
        """A request waits for approval."""

    def rejected(self, request: SecretRequest) -> list[Message]:
        """An approver rejected it."""

    def expired(self, request: SecretRequest) -> list[Message]:
        """Nobody decided in time."""

    def applied(self, request: SecretRequest) -> list[Message]:
        """Auth0 has the change."""

    def failed(
        self, request: SecretRequest, error: Auth0Error | ApplyError | None
    ) -> list[Message]:
        """Applying failed."""

    def checking(self, request: SecretRequest) -> list[Message]:
        """Auth0 left the outcome unknown; it is being read back."""

    def still_applying(self, request: SecretRequest) -> list[Message]:
        """The apply has been running for a while."""

    def stale_copy(self, request: SecretRequest, channel: str, ts: str) -> list[Message]:
        """Someone clicked a duplicate approval message of a decided request."""


@dataclass
class Timing:
    """How often a running apply renews its claim, when it counts as slow, and when its claim
    lapses (tests shorten them; the defaults are the product's)."""

    heartbeat: timedelta = HEARTBEAT
    slow_apply: timedelta = SLOW_APPLY
    apply_lease: timedelta = APPLY_LEASE


class Workflow:
    """Moves requests through their states; every transition is a CAS with its audit record and
    the messages it implies (an outbox in the same transaction)."""

    def __init__(
        self,
        store: Store,
        vault: Vault,
        targets: Targets,
        *,
        ttl: timedelta,
        required_approvals: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        messages: Messages | None = None,
    ) -> None:
        self.messages = messages
        self.timing = Timing()
        # Serialises moving an apply's claim (heartbeat) with recording its phases.
        self._claims = threading.Lock()
        self.store = store
        self.vault = vault
        self.targets = targets
        self.ttl = ttl
        self.required_approvals = required_approvals
        self.now = now

    def submit(self, draft: Draft) -> SecretRequest:
        """Record a valid request: pending, or approved at once when no approval is required."""
        try:
            return self._record(draft)
        except Taken:
            pass  # the database keeps one open request per secret, on any replica
        existing = self.store.open_request_for(draft.target_id, draft.secret_name)
        if existing is not None:
            raise AlreadyOpen(existing.id, existing.requester)
        # Decided between the clash and that read: the secret is free again (a third writer
        # taking it meanwhile leaves ``Taken`` raised).
        return self._record(draft)

    def _record(self, draft: Draft) -> SecretRequest:
        """Insert the request, its audit record and its messages in one transaction."""
        request = self._new_request(draft)
        with self.store.transaction() as tx:
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
            else:
                self._tell(tx, "submitted", request)
        return request

    def _tell(self, tx: Tx, transition: str, request: SecretRequest, *args: Any) -> None:
        """Queue the messages ``transition`` implies, in the transaction that makes it."""
        if self.messages is not None:
            tx.enqueue(getattr(self.messages, transition)(request, *args), self.now())

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
            target_id=draft.target_id,
            target_name=draft.target_name,
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
                if not approve:
                    self._tell(tx, "rejected", decided)
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
            claimed = tx.claim(request_id, now, stale_before=now - self.timing.apply_lease)
        if claimed is None:
            return Result(Outcome.LOST_RACE, self.store.get(request_id))
        claim = [now]  # the heartbeat moves it; the outcome is recorded against the latest
        try:
            recheck = reconciling or claimed.unknown_since is not None
            with self._heartbeat(claimed, claim):
                applied = self._send(claimed, recheck, claim)
        except Auth0Unavailable as error:
            return self._unknown(claimed, claim[0], error)
        except Auth0Error as error:
            return self._finish(claimed, claim[0], error)
        except VaultError:
            return self._finish(claimed, claim[0], ApplyError("undecryptable", UNDECRYPTABLE))
        except Exception as error:
            if isinstance(error, ApplyError) and error.reason == LOST_APPLY:
                return Result(Outcome.LOST_RACE, self.store.get(request_id))  # taken over
            log.exception("applying failed unexpectedly", request_id=request_id)
            return self._finish(claimed, claim[0], ApplyError("internal_error", INTERNAL))
        return self._finish(claimed, claim[0], None, applied)

    def _heartbeat(self, request: SecretRequest, claim: list[datetime]) -> Heartbeat:
        """Renew the claim while the apply runs; tell the requester when it is slow."""

        def renew() -> None:
            now = self.now()
            with self._claims:
                with self.store.transaction() as tx:
                    moved = tx.renew(request.id, claim[0], now)
                if moved:  # only once committed: a failed commit leaves the claim where it was
                    claim[0] = now

        def slow() -> None:
            with self.store.transaction() as tx:
                self._tell(tx, "still_applying", request)

        return Heartbeat(
            renew,
            slow,
            every=self.timing.heartbeat.total_seconds(),
            slow_after=self.timing.slow_apply.total_seconds(),
        )

    def _unknown(
        self, request: SecretRequest, claimed_at: datetime, error: Auth0Unavailable
    ) -> Result:
        """Auth0 left the outcome unknown: keep the request open (and its value, to re-send),
        say it is being checked, and let the sweep read Auth0 back."""
        now = self.now()
        since = request.unknown_since or now
        if now - since > SETTLE_WITHIN:
            return self._finish(request, claimed_at, error)
        with self.store.transaction() as tx:
            held = tx.transition(
                request.id,
                [State.APPROVED],
                State.APPROVED,
                claimed_at=claimed_at,
                apply_started_at=None,
                unknown_since=since,
            )
            if held is not None and request.unknown_since is None:
                self._tell(tx, "checking", held)
        log.warning("auth0 left the outcome unknown: reading back", request_id=request.id)
        return Result(Outcome.CHECKING, held or self.store.get(request.id), error)

    def _send(self, request: SecretRequest, reconciling: bool, claim: list[datetime]) -> Applied:
        target = self.targets[request.target_kind]
        change = Change(Kind(request.kind), request.target_id, request.secret_name, None)
        # After a crash the earlier attempt may have reached Auth0: read back before resending.
        if reconciling and target.landed(change):
            return Applied()
        if change.kind is not Kind.REMOVE:
            if request.value_ciphertext is None:
                raise RuntimeError(f"request {request.id} has no value to apply")
            change = replace(change, value=self.vault.decrypt(request.value_ciphertext))
        return target.apply(change, Phases(self, request, claim))

    def record_phase(
        self,
        request: SecretRequest,
        phase: str,
        progress: Mapping[str, Any],
        claim: list[datetime],
    ) -> None:
        """Keep an apply's phase in the request's row, in one transaction with its audit
        record; raises ``ApplyError`` when the request is no longer this apply's."""
        # Under the claims lock: the heartbeat may be moving the claim at the same moment.
        with self._claims, self.store.transaction() as tx:
            kept = tx.transition(
                request.id,
                [State.APPROVED],
                State.APPROVED,
                claimed_at=claim[0],
                apply_phase=phase,
                apply_progress=json.dumps(dict(progress), separators=(",", ":")),
            )
            if kept is None:
                raise ApplyError(LOST_APPLY, "another apply took this request over")
            visible = {k: v for k, v in progress.items() if k != "expectation"}
            tx.audit(self._event("apply.phase", kept, request.decided_by, phase, **visible))

    def _finish(
        self,
        request: SecretRequest,
        claimed_at: datetime,
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
                claimed_at=claimed_at,
                value_ciphertext=None,
                finished_at=now,
                failure_reason=error.reason if error else None,
                target_version=version,
            )
            if done is not None:
                self._tell(tx, "failed" if error else "applied", done, *([error] if error else []))
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
                self._tell(tx, "expired", expired)
                tx.audit(self._event("request.expired", expired, None, "expired"))
        return expired

    def stale_copy(self, request: SecretRequest, channel: str, ts: str) -> None:
        """Queue the update of a duplicate approval message (not the one whose ts is stored)."""
        if request.state == State.PENDING or (request.approval_channel, request.approval_ts) == (
            channel,
            ts,
        ):
            return
        with self.store.transaction() as tx:
            self._tell(tx, "stale_copy", request, channel, ts)

    def expire_due(self) -> list[SecretRequest]:
        """Expire every pending request past its TTL (one failure does not stop the rest)."""
        return [r for r in _each(self.expire, self.store.due_for_expiry(self.now())) if r]

    def reconcile(self) -> list[Result]:
        """Finish applies a crash left undone: read back, then apply at most once."""
        now = self.now()
        stranded = self.store.stranded(now - UNCLAIMED_GRACE, now - self.timing.apply_lease)
        return _each(lambda rid: self.apply(rid, reconciling=True), stranded)

    def open_request(self, target_id: str, secret_name: str) -> SecretRequest | None:
        """The pending or approved request for this hook secret, if any."""
        return self.store.open_request_for(target_id, secret_name)

    def provenance(self, target_id: str) -> dict[str, Provenance]:
        """Who last set each of a hook's secrets through the bot."""
        return self.store.provenance(target_id)

    def touch(self, request_id: str) -> tuple[SecretRequest | None, bool]:
        """The request, expired first if its time is up; True when this call expired it."""
        request = self.store.get(request_id)
        if request is None or request.state != State.PENDING or request.expires_at > self.now():
            return request, False
        expired = self.expire(request_id)
        return (expired or self.store.get(request_id)), expired is not None

    def deny(self, request_id: str, actor: str, team_id: str, outcome: str) -> None:
        """Audit someone not allowed to decide a request (``approval.denied``), with the
        request's target as every event about a request carries it."""
        request = self.store.get(request_id) if request_id else None
        if request is None:
            self.refuse("approval.denied", actor, team_id, outcome, request_id=request_id or None)
        else:
            self.store.audit(self._event("approval.denied", request, actor, outcome))

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
                "kind": request.kind,
                "target": request.target_kind,
                "hook_name": request.target_name,
                **where,
                **detail,
            },
        )


class Phases:
    """An apply's phases as the request's row keeps them (``bot.targets.Progress``)."""

    def __init__(self, workflow: Workflow, request: SecretRequest, claim: list[datetime]) -> None:
        self._workflow = workflow
        self._request = request
        self._claim = claim  # the apply's claim, as the heartbeat renews it
        self.phase: str | None = request.apply_phase
        self.data: dict[str, Any] = json.loads(request.apply_progress or "{}")

    def record(self, phase: str, **data: Any) -> None:
        """Record ``phase`` and what it noted, with its audit record."""
        merged = {**self.data, **data}
        self._workflow.record_phase(self._request, phase, merged, self._claim)
        self.phase, self.data = phase, merged
