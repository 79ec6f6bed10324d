"""The approval state machine: submit, decide, expire and reconcile requests (recording a
submission is ``submitting.py``; counting approvals, ``approving.py``; the apply itself,
``apply.py``; finishing a crashed one, ``recovery.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bot.approvals import recovery
from bot.approvals.apply import Applier, Timing
from bot.approvals.approving import Approving
from bot.approvals.events import outcome_event, request_event
from bot.approvals.messages import Messages, Teller
from bot.approvals.refusals import Refusals
from bot.approvals.results import ApplyError, Outcome, Result
from bot.approvals.rulebook import AnyApprover, Rulebook, still_deciding
from bot.approvals.rules import Rule
from bot.approvals.seals import Guard, Sealer
from bot.approvals.states import State
from bot.approvals.submitting import Draft, Submitting
from bot.db.encryption import Vault
from bot.db.models import SecretRequest
from bot.db.store import Store
from bot.db.tx import Tx
from bot.limits import Provenance
from bot.logs import get_logger
from bot.targets import DEFAULT_TENANT, Targets
from bot.targets.fleet import Fleet

log = get_logger(__name__)
T = TypeVar("T")


def _each(step: Callable[[str], T], ids: Sequence[str]) -> list[T]:
    """Run ``step`` for every id, logging (not raising) the failures of single items."""
    results = []
    for item in ids:
        try:
            results.append(step(item))
        except Exception:
            log.exception("periodic step failed for one request", request_id=item)
    return results


class Workflow:
    """Moves requests through their states; every transition is a CAS with its audit record and
    the messages it implies (an outbox in the same transaction)."""

    def __init__(
        self,
        store: Store,
        vault: Vault,
        targets: Targets | Fleet,
        *,
        ttl: timedelta,
        required_approvals: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        messages: Messages | None = None,
        rules: Rulebook | None = None,
    ) -> None:
        self._tell = Teller(now, messages)
        self.store = store
        self.vault = vault
        self.targets = targets if isinstance(targets, Fleet) else Fleet.single(targets)
        self.ttl = ttl
        # Who decides what (the policy); without one, ``required_approvals`` by anyone.
        self.rules: Rulebook = rules or AnyApprover(required_approvals)
        self.now = now
        self.applier = Applier(store, vault, self.targets, self._tell)
        self.refusals = Refusals(store)
        # Seals each submission and decision; refuses a tampered row or a requester no
        # longer allowed, at approval and before the apply (seals.py).
        self.guard = Guard(Sealer(vault.seal_keys), vault.made_by_a_key)
        self.guard.ended = store.ended
        self.applier.guard = self.guard.refusal
        self.approving = Approving(store, self.rules, self.guard, self._tell, now, self._fail_in)
        self.submitting = Submitting(self)

    @property
    def tell(self) -> Teller:
        """Queues a transition's messages in its transaction."""
        return self._tell

    @property
    def messages(self) -> Messages | None:
        """What each transition tells Slack (set once the notifier exists)."""
        return self._tell.messages

    @messages.setter
    def messages(self, messages: Messages | None) -> None:
        self._tell.messages = messages

    @property
    def timing(self) -> Timing:
        """The apply's heartbeat and slowness thresholds."""
        return self.applier.timing

    @timing.setter
    def timing(self, timing: Timing) -> None:
        self.applier.timing = timing

    def submit(self, draft: Draft) -> SecretRequest:
        """Record a valid request (``bot.approvals.submitting``): pending, or approved at once
        when its rule needs no approval; ``AlreadyOpen`` when the secret has an open one."""
        return self.submitting.submit(draft)

    def decide(self, request_id: str, actor: str, approve: bool, comment: str | None) -> Result:
        """Approve or reject a pending request under the rule that decides it now: a rejection
        ends it; an approval counts toward the quorum, and the one that meets it approves."""
        request, expired_now = self.touch(request_id)
        if request is None:
            return Result(Outcome.NOT_FOUND, None)
        if expired_now:
            return Result(Outcome.EXPIRED, request)
        if actor == request.requester:  # neither approve nor reject their own request
            self.store.audit(request_event("approval.denied", request, actor, "self_approval"))
            return Result(Outcome.SELF_APPROVAL, request)
        if request.state != State.PENDING:
            return Result(Outcome.LOST_RACE, request)
        rule, refused = self.current_rule(request, actor)
        if refused is not None or rule is None:
            return refused or Result(Outcome.LOST_RACE, request)
        if approve:
            if (screened := self.screen(request, actor, fresh=True)) is not None:
                return screened
            return self._lapsed(self.approving.approve(request, rule, actor, comment))
        return self._lapsed(self._reject(request, actor, comment))

    def _lapsed(self, result: Result) -> Result:
        """A decision that found its request still pending but no longer live (the TTL passed
        after ``touch``, by the database's clock): expire it now and say so, rather than
        answer that it "was still pending" and leave it to the sweep."""
        found = result.request
        if result.outcome is not Outcome.LOST_RACE or found is None:
            return result
        if found.state != State.PENDING:
            return result
        expired, expired_now = self.touch(found.id)
        return Result(Outcome.EXPIRED, expired) if expired_now else result

    def current_rule(self, request: SecretRequest, actor: str) -> tuple[Rule | None, Result | None]:
        """The rule ``actor`` decides a pending request under, or why they can't: the rule
        that decided it is gone or changed (the request expires), or they are not listed."""
        rule = self.rules.rule_of(request)
        if rule is None or not still_deciding(request, rule):
            expired = self.expire_changed(request.id)
            return None, Result(Outcome.POLICY_CHANGED, expired or self.store.get(request.id))
        if not self.rules.may_approve(actor, request.team_id, rule, fresh=True):
            self.store.audit(request_event("approval.denied", request, actor, "not_an_approver"))
            return None, Result(Outcome.NOT_AN_APPROVER, request)
        return rule, None

    def _reject(self, request: SecretRequest, actor: str, comment: str | None) -> Result:
        """One rejection ends the request; its value is erased."""
        now = self.now()
        values: dict[str, Any] = {
            "decided_by": actor,
            "decided_at": now,
            "decision_comment": comment,
            "value_ciphertext": None,
            "finished_at": now,
        }
        values["seal"] = self.guard.seal(request, state=State.REJECTED, **values)
        with self.store.transaction() as tx:
            decided = tx.transition(
                request.id, [State.PENDING], State.REJECTED, unexpired=True, **values
            )
            if decided is not None:
                self._tell(tx, "rejected", decided)
                tx.audit(
                    request_event(
                        "request.rejected",
                        decided,
                        actor,
                        "rejected",
                        **({"comment": comment} if comment else {}),
                    )
                )
        if decided is None:
            return Result(Outcome.LOST_RACE, self.store.get(request.id))
        return Result(Outcome.REJECTED, decided)

    def screen(self, request: SecretRequest, actor: str, *, fresh: bool = False) -> Result | None:
        """Before ``actor``'s approval counts: refuse a pending request whose seal does not
        verify or whose requester is no longer allowed (``fresh``: ask Slack again), failing
        it (value erased, requester and ``actor`` told); ``None`` when it may go on."""
        if request.state != State.PENDING:
            return None
        error = self.guard.refusal(request, fresh=fresh)
        return None if error is None else self._fail_pending(request, actor, error)

    def _fail_pending(self, request: SecretRequest, actor: str, error: ApplyError) -> Result:
        """Record a pending request as failed, with ``actor`` as the one who tried to decide."""
        now = self.now()
        with self.store.transaction() as tx:
            result = self._fail_in(tx, request, actor, error, now)
        if result.outcome is Outcome.LOST_RACE:
            return Result(Outcome.LOST_RACE, self.store.get(request.id))
        return result

    def _fail_in(
        self, tx: Tx, request: SecretRequest, actor: str, error: ApplyError, now: datetime
    ) -> Result:
        """In ``tx``: a pending request failed (value erased, requester and ``actor`` told)."""
        failed = tx.transition(
            request.id,
            [State.PENDING],
            State.FAILED,
            value_ciphertext=None,
            decided_by=actor,
            decided_at=now,
            finished_at=now,
            failure_reason=error.reason,
        )
        if failed is None:
            return Result(Outcome.LOST_RACE, request)
        self._tell(tx, "failed", failed, error)
        tx.audit(outcome_event(failed, failed, error, None))
        return Result(Outcome.FAILED, failed, error)

    def expire(self, request_id: str) -> SecretRequest | None:
        """Expire one pending request whose time is up, erasing its value."""
        return self._expire(request_id, "expired")

    def expire_changed(self, request_id: str) -> SecretRequest | None:
        """Expire a pending request whose deciding rule is gone or changed (outcome
        ``policy_changed``), erasing its value; the requester is told to request again."""
        return self._expire(request_id, "policy_changed")

    def _expire(self, request_id: str, outcome: str) -> SecretRequest | None:
        """Pending → expired, value erased, the transition's messages and audit record. For
        ``expired`` only once its time is up by the database's clock, whatever this replica's
        says; for ``policy_changed`` at once."""
        now = self.now()
        with self.store.transaction() as tx:
            expired = tx.transition(
                request_id,
                [State.PENDING],
                State.EXPIRED,
                due=outcome == "expired",
                value_ciphertext=None,
                finished_at=now,
            )
            if expired is not None:
                self._tell(tx, outcome, expired)
                tx.audit(request_event("request.expired", expired, None, outcome))
        return expired

    def expire_policy_changed(self) -> list[SecretRequest]:
        """At start: expire every pending request the policy would now decide by another rule,
        or a changed one (CONTRACT §6)."""

        def check(request_id: str) -> SecretRequest | None:
            request = self.store.get(request_id)
            if request is None or still_deciding(request, self.rules.rule_of(request)):
                return None
            return self.expire_changed(request_id)

        return [r for r in _each(check, self.store.pending_ids()) if r]

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
        return [r for r in _each(self.expire, self.store.due_for_expiry()) if r]

    def apply(self, request_id: str, *, reconciling: bool = False) -> Result:
        """Send an approved request to Auth0 once, record the outcome, erase the value."""
        return self.applier.apply(request_id, reconciling=reconciling)

    def reconcile(self) -> list[Result]:
        """Finish applies a crash left undone: read back, then apply at most once."""
        stranded = recovery.stranded(self.store, self.timing.apply_lease)
        return _each(lambda rid: self.apply(rid, reconciling=True), stranded)

    def open_request(
        self, target_id: str, secret_name: str, tenant: str = DEFAULT_TENANT
    ) -> SecretRequest | None:
        """The pending or approved request for this secret, if any."""
        return self.store.open_request_for(target_id, secret_name, tenant)

    def provenance(self, target_id: str, tenant: str = DEFAULT_TENANT) -> dict[str, Provenance]:
        """Who last set each of a target's secrets through the bot."""
        return self.store.provenance(target_id, tenant)

    def touch(self, request_id: str) -> tuple[SecretRequest | None, bool]:
        """The request, expired first if its time is up; True when this call expired it."""
        request = self.store.get(request_id)
        if request is None or request.state != State.PENDING:
            return request, False
        if request.expires_at > self.store.now():  # the database's clock, as expire's guard
            return request, False
        expired = self.expire(request_id)
        return (expired or self.store.get(request_id)), expired is not None
