"""Approved changes to one action applied together: one PATCH, one build, one deploy.

An apply of an action change waits for the action's lock (the bot's own earlier change to it
goes first; across replicas on PostgreSQL), then for room under the rate limit for its read and
PATCH. Then it leads: it takes over every other approved change to that action that nobody has
started yet, and sends them all as one batch. Every member request keeps its own row, phases,
audit records and confirmation; a change refused before the PATCH fails alone. A resumed
batch (after a crash) is led by the first member whose apply gets the lock: it takes the other
members back and goes on from the recorded phase, so nothing is patched or deployed twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import ExitStack
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bot.approvals.events import request_event
from bot.approvals.results import ApplyError, Failure, Outcome, Result
from bot.approvals.states import Kind, State
from bot.db import batches
from bot.db.encryption import VaultError
from bot.db.models import SecretRequest
from bot.logs import get_logger
from bot.targets import Applied, Change, Progress
from bot.targets.action_apply import BatchOutcome
from bot.targets.errors import TargetError, TargetUnavailable

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from bot.approvals.apply import Applier

log = get_logger(__name__)

# An action holds at most 30 secrets: a larger batch could only be refused.
MAX_BATCH = 30
# Kept in the rows for a resumed apply, but no use in the audit trail.
_UNAUDITED = frozenset({"expectation", "content", "intent", "batch"})


@runtime_checkable
class Batched(Protocol):
    """A target whose changes to one target go in batches (``bot.targets.ActionTarget``)."""

    def serialised(self, target_id: str) -> AbstractContextManager[None]: ...

    def ready_to_send(self) -> AbstractContextManager[None]: ...

    def apply_batch(self, changes: Mapping[str, Change], progress: Progress) -> BatchOutcome: ...


class Batches:
    """Leads batches of approved changes for an ``Applier``."""

    def __init__(self, applier: Applier) -> None:
        self.applier = applier

    def apply(self, claimed: SecretRequest, claim: list[datetime], target: Batched) -> Result:
        """Wait for the action's lock, gather what waits for it, send it all as one batch."""
        members = [claimed]
        try:
            with self.applier.heartbeat(claimed, claim, members), ExitStack() as held:
                held.enter_context(target.serialised(claimed.target_id))
                if self._still_mine(claimed, claim):  # what is approved during the wait joins
                    held.enter_context(target.ready_to_send())
                members[:] = self._screened(self._gather(claimed, claim), claim[0])
                if not members:  # a leader took this change over (and finished it)
                    return Result(Outcome.LOST_RACE, self.applier.store.get(claimed.id))
                log.info("action batch", action_id=claimed.target_id, changes=len(members))
                outcome, unreadable = self._send(target, members, claim)
        except TargetUnavailable as error:
            return self._unknown(claimed, members, claim[0], error)
        except TargetError as error:
            return self._finish_all(claimed, members, claim[0], error)
        except ApplyError as error:
            if error.reason != self.applier.lost_apply:
                return self._finish_all(claimed, members, claim[0], error)
            return Result(Outcome.LOST_RACE, self.applier.store.get(claimed.id))
        except Exception:
            log.exception("applying a batch failed unexpectedly", request_id=claimed.id)
            return self._finish_all(claimed, members, claim[0], self.applier.internal())
        refused: dict[str, Failure] = {**outcome.refused, **unreadable}
        results = [
            self._finish_one(m, claim[0], refused.get(m.id), outcome.applied) for m in members
        ]
        return next(r for m, r in zip(members, results, strict=True) if m.id == claimed.id)

    def _still_mine(self, claimed: SecretRequest, claim: list[datetime]) -> bool:
        """Whether this change is still this apply's once it has the lock (else a leader took
        it over, and it must not wait at the rate limit for a read it will not make)."""
        row = self.applier.store.get(claimed.id)
        return row is not None and row.state == State.APPROVED and row.apply_started_at == claim[0]

    def _gather(self, claimed: SecretRequest, claim: list[datetime]) -> list[SecretRequest]:
        """Under the lock: this change (if still this apply's) and the others that go with it."""
        with self.applier.claims, self.applier.store.transaction() as tx:
            moved = tx.renew(claimed.id, claim[0])  # still this apply's, by the database's clock
            if moved is None:
                return []
            claim[0] = moved
            # The row as it is now, not as the claim read it (before the wait for the lock): a
            # leader may have taken this change, sent it and released the lock without having
            # recorded it applied yet, and still hold it at this apply's claim time (claims
            # can be equal: PostgreSQL's now() is a transaction's start, and one group-commit
            # transaction may hold both claims). Then its recorded phase says where to go on.
            claimed = batches.current(tx, claimed.id)
            phase = claimed.apply_phase
            if phase is None:
                others = batches.waiting(tx, claimed, MAX_BATCH - 1)
            else:  # a resumed batch: its members are in the row
                recorded = json.loads(claimed.apply_progress or "{}").get("batch") or []
                others = [str(i) for i in recorded if i != claimed.id]
            target = (claimed.tenant, claimed.target_kind, claimed.target_id)
            taken = [batches.take(tx, other, claim[0], phase, target) for other in others]
        return [claimed, *(row for row in taken if row is not None)]

    def _screened(self, members: list[SecretRequest], claimed_at: datetime) -> list[SecretRequest]:
        """The members the guard lets go on (seals.py: sealed facts, requester re-checked);
        each one it refuses is finished alone. The leader was screened before its claim was
        routed here. A resumed batch's members are screened again: its list of members lives
        in an unsealed column, so anyone who can write the database could append to it."""
        kept: list[SecretRequest] = []
        for member in members:
            refused = None if member is members[0] else self.applier.guard(member)
            if refused is None:
                kept.append(member)
            else:
                self.applier.finish(member, claimed_at, refused)
        return kept

    def _send(
        self, target: Batched, members: list[SecretRequest], claim: list[datetime]
    ) -> tuple[BatchOutcome, dict[str, Failure]]:
        """Decrypt each value (one that can't be fails alone) and apply the batch."""
        changes: dict[str, Change] = {}
        unreadable: dict[str, Failure] = {}
        for member in members:
            try:
                changes[member.id] = self._change(member)
            except VaultError:
                unreadable[member.id] = self.applier.undecryptable()
        sending = [m for m in members if m.id in changes]
        if not sending:
            return BatchOutcome(None), unreadable
        outcome = target.apply_batch(changes, BatchPhases(self.applier, sending, claim))
        return outcome, unreadable

    def _change(self, request: SecretRequest) -> Change:
        change = Change(Kind(request.kind), request.target_id, request.secret_name, None)
        if change.kind is Kind.REMOVE:
            return change
        if request.value_ciphertext is None:
            raise RuntimeError(f"request {request.id} has no value to apply")
        return Change(
            change.kind,
            change.target_id,
            change.name,
            self.applier.vault.decrypt(request.value_ciphertext),
        )

    def _finish_one(
        self,
        member: SecretRequest,
        claimed_at: datetime,
        error: Failure | None,
        applied: Applied | None,
    ) -> Result:
        if error is None and applied is None:
            error = ApplyError("internal_error", "the batch ended without applying this change")
        # A change refused before the PATCH left nothing in the draft: say so.
        reset = {"apply_phase": None} if error is not None and applied is not None else {}
        return self.applier.finish(member, claimed_at, error, applied, **reset)

    def _finish_all(
        self, claimed: SecretRequest, members: list[SecretRequest], at: datetime, error: Failure
    ) -> Result:
        results = [self.applier.finish(m, at, error) for m in members]
        return next(r for m, r in zip(members, results, strict=True) if m.id == claimed.id)

    def _unknown(
        self,
        claimed: SecretRequest,
        members: list[SecretRequest],
        at: datetime,
        error: TargetUnavailable,
    ) -> Result:
        """Auth0 left the outcome unknown: hold every member (read back by the sweep)."""
        results = []
        for member in members:
            now = self.applier.now()
            if self.applier.unknowns.settled(member, now):
                results.append(self.applier.finish(member, at, error))
            else:
                results.append(self.applier.unknowns.hold(member, at, error))
        return next(r for m, r in zip(members, results, strict=True) if m.id == claimed.id)


class BatchPhases:
    """A batch's phases, kept in every member's row (``bot.targets.Progress``)."""

    def __init__(
        self, applier: Applier, members: list[SecretRequest], claim: list[datetime]
    ) -> None:
        self._applier = applier
        self._members = members
        self._claim = claim
        first = members[0]
        self.phase: str | None = first.apply_phase
        self.data: dict[str, Any] = json.loads(first.apply_progress or "{}")

    def record(self, phase: str, **data: Any) -> None:
        """Record ``phase`` on every member, each with its audit record, in one transaction."""
        merged = {**self.data, **data}
        text = json.dumps(merged, separators=(",", ":"))
        visible = {k: v for k, v in merged.items() if k not in _UNAUDITED}
        applier = self._applier
        with applier.claims, applier.store.transaction() as tx:
            for member in self._members:
                kept = tx.transition(
                    member.id,
                    [State.APPROVED],
                    State.APPROVED,
                    claimed_at=self._claim[0],
                    apply_phase=phase,
                    apply_progress=text,
                )
                if kept is None:
                    raise ApplyError(applier.lost_apply, "another apply took this request over")
                event = request_event("apply.phase", kept, member.decided_by, phase, **visible)
                tx.audit(event)
        self.phase, self.data = phase, merged
