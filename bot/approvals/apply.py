"""The apply of an approved request: claim it, keep the claim alive, send it through its target
once, record its phases and its outcome, erase the value."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.approvals import recovery
from bot.approvals.batching import Batched, Batches
from bot.approvals.events import outcome_event, request_event
from bot.approvals.heartbeat import Heartbeat
from bot.approvals.messages import Teller
from bot.approvals.results import UNDECRYPTABLE, ApplyError, Failure, Outcome, Result
from bot.approvals.states import Kind, State
from bot.db import batches
from bot.db.encryption import Vault, VaultError
from bot.db.models import SecretRequest
from bot.db.store import Store
from bot.logs import get_logger
from bot.targets import Applied, Change
from bot.targets.errors import TargetError, TargetUnavailable
from bot.targets.fleet import Fleet

log = get_logger(__name__)

# A running apply renews its claim this often (``recovery.APPLY_LEASE`` says when it died).
HEARTBEAT = timedelta(seconds=5)
# The requester hears that an apply is still going once it has run this long.
SLOW_APPLY = timedelta(seconds=30)

LOST_APPLY = "lost_apply"
INTERNAL = "an unexpected error inside the bot (its logs have the details)"


@dataclass
class Timing:
    """How often a running apply renews its claim, when it counts as slow, and when its claim
    lapses (tests shorten them; the defaults are the product's)."""

    heartbeat: timedelta = HEARTBEAT
    slow_apply: timedelta = SLOW_APPLY
    apply_lease: timedelta = recovery.APPLY_LEASE


class Applier:
    """Applies approved requests at most once each, every step a CAS on the request's row."""

    def __init__(self, store: Store, vault: Vault, targets: Fleet, tell: Teller) -> None:
        self.store = store
        self.vault = vault
        self.targets = targets
        self.tell = tell
        self.now: Callable[[], datetime] = tell.now
        self.timing = Timing()
        self.unknowns = recovery.Unknowns(store, tell)
        # seals.py: why a claimed request may not be applied (tampered, requester no longer
        # allowed); ``Workflow`` sets it.
        self.guard: Callable[[SecretRequest], ApplyError | None] = lambda request: None
        # Serialises moving an apply's claim (heartbeat) with recording its phases.
        self.claims = threading.Lock()
        self.batches = Batches(self)
        self.lost_apply = LOST_APPLY

    def apply(self, request_id: str, *, reconciling: bool = False) -> Result:
        """Send an approved request to Auth0 once, record the outcome, erase the value."""
        with self.store.transaction() as tx:
            claimed = tx.claim(request_id, self.timing.apply_lease)  # the database's clock
        if claimed is None or claimed.apply_started_at is None:
            return Result(Outcome.LOST_RACE, self.store.get(request_id))
        # The heartbeat moves it; the outcome is recorded against the latest.
        claim = [claimed.apply_started_at]
        refused = self.guard(claimed)  # seals.py: sealed facts, requester re-checked
        if refused is not None:
            return self.finish(claimed, claim[0], refused)
        target = self.targets.target(claimed.tenant, claimed.target_kind)
        if isinstance(target, Batched):  # actions: changes to one action go together
            return self.batches.apply(claimed, claim, target)
        try:
            recheck = reconciling or claimed.unknown_since is not None
            with self.heartbeat(claimed, claim):
                applied = self._send(claimed, recheck, claim)
        except TargetUnavailable as error:
            if self.unknowns.settled(claimed, self.now()):
                return self.finish(claimed, claim[0], error)
            return self.unknowns.hold(claimed, claim[0], error)
        except TargetError as error:
            return self.finish(claimed, claim[0], error)
        except VaultError:
            return self.finish(claimed, claim[0], self.undecryptable())
        except Exception as error:
            if isinstance(error, ApplyError) and error.reason == LOST_APPLY:
                return Result(Outcome.LOST_RACE, self.store.get(request_id))  # taken over
            log.exception("applying failed unexpectedly", request_id=request_id)
            return self.finish(claimed, claim[0], self.internal())
        return self.finish(claimed, claim[0], None, applied)

    def undecryptable(self) -> ApplyError:
        """The failure of a value no configured key decrypts."""
        return ApplyError("undecryptable", UNDECRYPTABLE)

    def internal(self) -> ApplyError:
        """The failure of an unexpected error inside the bot."""
        return ApplyError("internal_error", INTERNAL)

    def heartbeat(
        self,
        request: SecretRequest,
        claim: list[datetime],
        members: list[SecretRequest] | None = None,
    ) -> Heartbeat:
        """Renew the claim (of every member of a batch, ``members`` as it grows) while the
        apply runs; tell the requester when it is slow."""

        def renew() -> None:
            with self.claims:
                with self.store.transaction() as tx:
                    moved = tx.renew(request.id, claim[0])
                    if moved is not None:  # a batch's members move with it, to the same time
                        others = [m.id for m in members or () if m.id != request.id]
                        batches.move_claims(tx, others, claim[0], moved)
                if moved is not None:  # once committed: a failed commit leaves the claim as it was
                    claim[0] = moved

        def slow() -> None:
            with self.store.transaction() as tx:
                self.tell(tx, "still_applying", request)

        return Heartbeat(
            renew,
            slow,
            every=self.timing.heartbeat.total_seconds(),
            slow_after=self.timing.slow_apply.total_seconds(),
        )

    def _send(self, request: SecretRequest, reconciling: bool, claim: list[datetime]) -> Applied:
        target = self.targets.target(request.tenant, request.target_kind)
        change = Change(Kind(request.kind), request.target_id, request.secret_name, None)
        # After a crash the earlier attempt may have reached Auth0: read back before resending.
        if recovery.landed(target, change, reconciling):
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
        with self.claims, self.store.transaction() as tx:
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
            tx.audit(request_event("apply.phase", kept, request.decided_by, phase, **visible))

    def finish(
        self,
        request: SecretRequest,
        claimed_at: datetime,
        error: Failure | None,
        applied: Applied | None = None,
        **values: Any,
    ) -> Result:
        """Record the outcome (applied or failed) with its audit record and messages."""
        state = State.FAILED if error else State.APPLIED
        version = applied.version if applied else None
        with self.store.transaction() as tx:
            done = tx.transition(
                request.id,
                [State.APPROVED],
                state,
                claimed_at=claimed_at,
                value_ciphertext=None,
                finished_at=self.now(),
                failure_reason=error.reason if error else None,
                target_version=version,
                **values,
            )
            if done is not None:
                self.tell(tx, "failed" if error else "applied", done, *([error] if error else []))
                tx.audit(outcome_event(done, request, error, version))
        if done is None:
            return Result(Outcome.LOST_RACE, self.store.get(request.id))
        return Result(Outcome.FAILED if error else Outcome.APPLIED, done, error)


class Phases:
    """An apply's phases as the request's row keeps them (``bot.targets.Progress``)."""

    def __init__(self, applier: Applier, request: SecretRequest, claim: list[datetime]) -> None:
        self._applier = applier
        self._request = request
        self._claim = claim  # the apply's claim, as the heartbeat renews it
        self.phase: str | None = request.apply_phase
        self.data: dict[str, Any] = json.loads(request.apply_progress or "{}")

    def record(self, phase: str, **data: Any) -> None:
        """Record ``phase`` and what it noted, with its audit record."""
        merged = {**self.data, **data}
        self._applier.record_phase(self._request, phase, merged, self._claim)
        self.phase, self.data = phase, merged
