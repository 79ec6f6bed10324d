"""``Workflow`` on a real SQLite file, through the target seam with an in-memory target."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.approvals.apply import Timing
from bot.approvals.recovery import APPLY_LEASE, SETTLE_WITHIN, UNCLAIMED_GRACE
from bot.approvals.results import Outcome
from bot.approvals.states import Kind, State
from bot.approvals.submitting import AlreadyOpen, Draft
from bot.approvals.workflow import Workflow
from bot.auth0.errors import Auth0Unavailable, SecretConflict
from bot.db.audit import AuditSink
from bot.db.encryption import Vault, generate_key
from bot.db.models import OutboxMessage, SecretRequest
from bot.db.store import Store
from bot.outbox.messages import Method
from bot.outbox.notify import Notifier
from bot.targets import (
    Applied,
    Change,
    Described,
    Inventory,
    Offer,
    Progress,
    TargetKind,
    TargetRef,
    Targets,
)
from bot.targets.errors import TargetError, translate
from tests.waiting import wait_until

VALUE = "s3cr3t-value-never-stored"


@dataclass
class MemoryTarget:
    """A target holding secrets in a dict; records every change sent and can fail once."""

    kind: TargetKind = TargetKind.HOOK
    secrets: dict[str, dict[str, str]] = field(default_factory=lambda: {"h1": {"OLD": "x"}})
    sent: list[Change] = field(default_factory=list)
    fail_with: Exception | None = None
    forgotten: int = 0
    on_apply: Callable[[Change], None] | None = None  # runs instead of the change (slow ones)

    max_secrets: int = 20

    def offer(self, deadline: float | None = None) -> Offer:
        return Offer(self.kind, self.listing())

    def listing(self, deadline: float | None = None) -> list[Described]:
        return [self.describe(h) for h in self.secrets]

    def find(self, key: str) -> Described | None:
        return next((h for h in self.listing() if h.id == key), None)

    def known(self, target_id: str) -> Described | None:
        return self.find(target_id)

    def search(self, query: str, deadline: float) -> list[Described]:
        return [h for h in self.listing() if query in h.id]

    def describe(self, target_id: str) -> Described:
        return Described(TargetRef(self.kind, target_id), target_id, "t")

    def secret_names(self, target_id: str) -> list[str]:
        return list(self.secrets[target_id])

    def inventory(self, target_id: str) -> Inventory:
        return Inventory(self.secret_names(target_id))

    def apply(self, change: Change, progress: Progress) -> Applied:
        self.sent.append(change)
        if self.fail_with is not None:
            raise self.fail_with
        if self.on_apply is not None:
            self.on_apply(change)
            return Applied()
        held = self.secrets[change.target_id]
        if change.kind is Kind.REMOVE:
            del held[change.name]
        else:
            assert change.value is not None
            held[change.name] = change.value.get_secret_value()
        return Applied()

    def landed(self, change: Change) -> bool:
        present = change.name in self.secrets[change.target_id]
        if change.kind is Kind.UPDATE:
            return False  # a rotation can't be told from the names alone
        return present if change.kind is Kind.ADD else not present

    def forget(self) -> None:
        self.forgotten += 1


@dataclass
class Clock:
    moment: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@dataclass
class World:
    workflow: Workflow
    target: MemoryTarget
    store: Store
    clock: Clock
    stream: io.StringIO

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def events(self) -> list[str]:
        return [record["event"] for record in self.audit()]


def world(url: str, approvals: int) -> Iterator[World]:
    stream = io.StringIO()
    store = Store(url, AuditSink(stream))
    store.migrate()
    target, clock = MemoryTarget(), Clock()
    store.pinned = clock  # leases and expiry run on the database's clock: pinned to the test's
    workflow = Workflow(
        store,
        Vault([generate_key()]),
        Targets(target),
        ttl=timedelta(hours=1),
        required_approvals=approvals,
        now=clock,
    )
    try:
        yield World(workflow, target, store, clock, stream)
    finally:
        store.close()


@pytest.fixture
def w(sqlite_url: str) -> Iterator[World]:
    yield from world(sqlite_url, approvals=1)


def draft(kind: Kind = Kind.ADD, name: str = "API_KEY", value: str | None = VALUE) -> Draft:
    return Draft(
        kind=kind,
        team_id="T0",
        requester="U0REQ",
        origin_channel="C0",
        target_id="h1",
        target_name="Hook one",
        secret_name=name,
        value=SecretStr(value) if value is not None else None,
        reason="because",
    )


def test_submit_stores_a_pending_request_with_the_value_encrypted(w: World) -> None:
    """A submission is pending, knows its target kind, and holds only ciphertext."""
    request = w.workflow.submit(draft())
    assert request.state == State.PENDING and request.target_kind == "hook"
    assert request.value_ciphertext is not None and VALUE.encode() not in request.value_ciphertext
    assert request.expires_at == w.clock() + timedelta(hours=1)
    [submitted] = w.audit()
    assert submitted["event"] == "request.submitted" and submitted["target"] == "hook"
    assert VALUE not in w.stream.getvalue()


def test_a_second_open_request_for_the_same_secret_is_refused(w: World) -> None:
    """One open request per hook secret: the second raises AlreadyOpen naming the first."""
    first = w.workflow.submit(draft())
    with pytest.raises(AlreadyOpen) as clash:
        w.workflow.submit(draft())
    assert clash.value.request_id == first.id
    assert w.workflow.open_request("h1", "API_KEY") is not None


def test_approve_then_apply_sends_one_change_and_erases_the_value(w: World) -> None:
    """Approval, then apply: the target gets the value once, the row keeps no value."""
    request = w.workflow.submit(draft())
    decided = w.workflow.decide(request.id, "U0APP", True, "ok")
    assert decided.outcome is Outcome.APPROVED
    result = w.workflow.apply(request.id)
    assert result.outcome is Outcome.APPLIED and result.request is not None
    assert result.request.value_ciphertext is None and result.request.state == State.APPLIED
    assert w.target.secrets["h1"]["API_KEY"] == VALUE and len(w.target.sent) == 1
    assert w.events() == ["request.submitted", "approval.added", "request.approved", "secret.added"]
    assert w.workflow.apply(request.id).outcome is Outcome.LOST_RACE
    assert len(w.target.sent) == 1


def test_the_requester_cannot_decide_their_own_request(w: World) -> None:
    """Neither approve nor reject by the requester; it is audited as approval.denied."""
    request = w.workflow.submit(draft())
    for approve in (True, False):
        assert (
            w.workflow.decide(request.id, "U0REQ", approve, None).outcome is Outcome.SELF_APPROVAL
        )
    assert w.events()[1:] == ["approval.denied", "approval.denied"]


def test_only_the_first_decision_wins(w: World) -> None:
    """A second decision loses the race and changes nothing."""
    request = w.workflow.submit(draft())
    assert w.workflow.decide(request.id, "U0APP", False, "no").outcome is Outcome.REJECTED
    lost = w.workflow.decide(request.id, "U0APP2", True, None)
    assert lost.outcome is Outcome.LOST_RACE and lost.request is not None
    assert lost.request.state == State.REJECTED and lost.request.value_ciphertext is None


def test_a_decision_after_the_ttl_expires_the_request(w: World) -> None:
    """Deciding an overdue request expires it instead, erasing the value."""
    request = w.workflow.submit(draft())
    w.clock.advance(hours=1, seconds=1)
    result = w.workflow.decide(request.id, "U0APP", True, None)
    assert result.outcome is Outcome.EXPIRED and result.request is not None
    assert result.request.value_ciphertext is None
    assert w.events()[-1] == "request.expired"


def test_expire_due_expires_only_overdue_requests(w: World) -> None:
    """The sweep's expiry takes requests past their TTL, not younger ones."""
    old = w.workflow.submit(draft(name="OLD_ONE"))
    w.clock.advance(minutes=30)
    w.workflow.submit(draft(name="NEW_ONE"))
    w.clock.advance(minutes=31)
    assert [r.id for r in w.workflow.expire_due()] == [old.id]


def test_an_auth0_refusal_fails_the_request_with_its_reason(w: World) -> None:
    """A refused change ends failed, audited with the reason, value erased."""
    request = w.workflow.submit(draft())
    w.workflow.decide(request.id, "U0APP", True, None)
    w.target.fail_with = translate(SecretConflict())
    result = w.workflow.apply(request.id)
    assert result.outcome is Outcome.FAILED and isinstance(result.error, TargetError)
    assert result.error.message == SecretConflict.default_message
    assert result.request is not None and result.request.failure_reason == "conflict"
    failed = w.audit()[-1]
    assert (failed["event"], failed["outcome"]) == ("request.failed", "conflict")


def test_reconcile_reads_back_and_does_not_resend_what_landed(w: World) -> None:
    """A stranded apply whose change already landed is finished without a second send."""
    request = w.workflow.submit(draft())
    w.workflow.decide(request.id, "U0APP", True, None)
    w.target.secrets["h1"]["API_KEY"] = VALUE  # the crashed attempt reached Auth0
    w.clock.advance(seconds=UNCLAIMED_GRACE.total_seconds() + 1)
    [result] = w.workflow.reconcile()
    assert result.outcome is Outcome.APPLIED and w.target.sent == []


def test_reconcile_resends_what_did_not_land_once_the_lease_is_over(w: World) -> None:
    """A claim whose process died is taken over after the lease, and the change is sent."""
    request = w.workflow.submit(draft(Kind.REMOVE, name="OLD", value=None))
    w.workflow.decide(request.id, "U0APP", True, None)
    with w.store.transaction() as tx:
        assert tx.claim(request.id, APPLY_LEASE)
    assert w.workflow.reconcile() == []  # inside the lease: someone may still be applying
    w.clock.advance(seconds=APPLY_LEASE.total_seconds() + 1)
    [result] = w.workflow.reconcile()
    assert result.outcome is Outcome.APPLIED and "OLD" not in w.target.secrets["h1"]
    assert [c.kind for c in w.target.sent] == [Kind.REMOVE]


def test_unknown_outcome_stays_open_until_read_back_settles_it(w: World) -> None:
    """Auth0 not answering leaves the request approved, its value kept and marked unknown; the
    reconcile reads back and, once the change is visible, records secret.added."""
    request = w.workflow.submit(draft())
    w.workflow.decide(request.id, "U0APP", True, None)
    w.target.fail_with = translate(Auth0Unavailable())
    result = w.workflow.apply(request.id)
    assert result.outcome is Outcome.CHECKING and result.request is not None
    row = result.request
    assert row.state == State.APPROVED and row.value_ciphertext is not None
    assert row.unknown_since == w.clock() and row.apply_started_at is None
    assert "request.failed" not in w.events()
    w.target.fail_with = None
    w.target.secrets["h1"]["API_KEY"] = VALUE  # the lost write had landed
    w.clock.advance(seconds=UNCLAIMED_GRACE.total_seconds() + 1)
    [settled] = w.workflow.reconcile()
    assert settled.outcome is Outcome.APPLIED
    assert len(w.target.sent) == 1  # the lost attempt only: what landed is not sent again
    assert w.events()[-1] == "secret.added"


def test_unknown_outcome_fails_once_it_could_not_be_settled_in_time(w: World) -> None:
    """Auth0 still not answering after SETTLE_WITHIN fails the apply with auth0_unavailable."""
    request = w.workflow.submit(draft())
    w.workflow.decide(request.id, "U0APP", True, None)
    w.target.fail_with = translate(Auth0Unavailable())
    assert w.workflow.apply(request.id).outcome is Outcome.CHECKING
    w.clock.advance(seconds=SETTLE_WITHIN.total_seconds() + 1)
    [result] = w.workflow.reconcile()
    assert result.outcome is Outcome.FAILED and result.request is not None
    assert result.request.failure_reason == "auth0_unavailable"
    assert result.request.value_ciphertext is None


def test_a_running_apply_renews_its_claim_and_says_when_it_is_slow(w: World) -> None:
    """While the target is slow the heartbeat moves the claim forward, so no sweep takes it
    over, and queues one still-applying notice for the requester."""
    w.workflow.messages = Notifier("C0APPROVE", None)
    w.workflow.timing = Timing(heartbeat=timedelta(seconds=0.05), slow_apply=timedelta(0))
    request = w.workflow.submit(draft())
    w.workflow.decide(request.id, "U0APP", True, None)
    seen: list[datetime | None] = []

    def slow_apply(change: Change) -> None:
        for _ in range(3):
            w.clock.advance(seconds=APPLY_LEASE.total_seconds() - 1)
            # The 0.05 s heartbeat renews to the clock's time.
            row = wait_until(
                lambda: _renewed_to(w, request.id), 5, every=0.02, what="the claim renewed"
            )
            seen.append(row.apply_started_at)
            assert w.workflow.reconcile() == []  # renewed: nobody else takes it over
        w.target.secrets["h1"][change.name] = "x"

    w.target.on_apply = slow_apply
    assert w.workflow.apply(request.id).outcome is Outcome.APPLIED
    assert len(set(seen)) == 3
    assert [m for m in _outbox(w.store) if m[1] == Method.TELL] == [(request.id, Method.TELL)]


def _renewed_to(w: World, request_id: str) -> SecretRequest | None:
    """The request's row once its apply's claim is at the clock's time."""
    row = w.store.get(request_id)
    return row if row is not None and row.apply_started_at == w.clock() else None


def test_without_approvals_the_requester_confirms_at_once(sqlite_url: str) -> None:
    """With 0 required approvals a submission is approved by its requester right away."""
    for w in world(sqlite_url, approvals=0):
        request = w.workflow.submit(draft())
        assert request.state == State.APPROVED and request.decided_by == "U0REQ"
        approved = w.audit()[-1]
        assert approved["event"] == "request.approved" and approved["self_confirmed"] is True


def test_each_transition_queues_its_messages_in_its_own_transaction(w: World) -> None:
    """The approval post is queued with the submission, the update and the requester's notice
    with the rejection; a submission refused as already open queues nothing."""
    w.workflow.messages = Notifier("C0APPROVE", None)
    request = w.workflow.submit(draft())
    assert _outbox(w.store) == [(request.id, Method.POST_STORED_APPROVAL)]
    with pytest.raises(AlreadyOpen):
        w.workflow.submit(draft())
    assert len(_outbox(w.store)) == 1
    w.workflow.decide(request.id, "U0APP", approve=False, comment="no")
    assert _outbox(w.store)[1:] == [
        (request.id, Method.UPDATE_APPROVAL),
        (request.id, Method.TELL),
    ]
    assert len(w.store.outbox_ready(w.clock(), 10)) == 3


def _outbox(store: Store) -> list[tuple[str, str]]:
    with store.session() as session:
        rows = session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars()
        return [(row.request_id, row.method) for row in rows]
