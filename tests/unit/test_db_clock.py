"""Leases and expiry run on the database's clock: replicas whose clocks disagree agree on them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from bot.approvals.recovery import APPLY_LEASE
from bot.approvals.results import Outcome
from bot.approvals.states import State
from bot.approvals.workflow import Workflow
from bot.db.encryption import Vault, generate_key
from bot.db.store import Store
from bot.targets import Targets
from tests.unit.test_workflow import MemoryTarget, draft

KEY = generate_key()
TTL = timedelta(hours=1)


@contextmanager
def replica(url: str, skew: timedelta) -> Iterator[tuple[Workflow, MemoryTarget]]:
    """A replica on its own store instance whose wall clock is off by ``skew`` (the store
    keeps the database's clock: nothing pins it)."""
    store, target = Store(url), MemoryTarget()
    store.migrate()
    workflow = Workflow(
        store,
        Vault([KEY]),
        Targets(target),
        ttl=TTL,
        required_approvals=1,
        now=lambda: datetime.now(UTC) + skew,
    )
    try:
        yield workflow, target
    finally:
        store.close()


def test_the_database_clock_is_the_database_servers(db_url: str) -> None:
    """Unpinned, the store reads the database's time (here the same host's clock)."""
    with replica(db_url, timedelta(0)) as (workflow, _):
        assert abs(workflow.store.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_a_replica_whose_clock_runs_ahead_does_not_take_over_a_live_lease(db_url: str) -> None:
    """One replica holds the apply; another, its clock ten minutes ahead (far past the lease),
    neither finds it stranded nor claims it: no second send."""
    with (
        replica(db_url, timedelta(0)) as (first, _),
        replica(db_url, timedelta(minutes=10)) as (ahead, ahead_target),
    ):
        request = first.submit(draft())
        first.decide(request.id, "U0APP", True, None)
        with first.store.transaction() as tx:  # the first replica's apply is running
            claimed = tx.claim(request.id, APPLY_LEASE)
        assert claimed is not None and claimed.apply_started_at is not None
        assert ahead.store.stranded(timedelta(seconds=15), APPLY_LEASE) == []
        assert ahead.store.stranded(timedelta(0), timedelta(0)) == [request.id]  # lease 0: lapsed
        assert ahead.reconcile() == []
        assert ahead.apply(request.id).outcome is Outcome.LOST_RACE
        assert ahead_target.sent == []
        with ahead.store.transaction() as tx:  # the claim is still the first replica's
            assert tx.renew(request.id, claimed.apply_started_at) is not None
        with ahead.store.transaction() as tx:  # a lapsed lease (none here) is taken over
            assert tx.claim(request.id, timedelta(0)) is not None


def test_a_replica_whose_clock_runs_ahead_does_not_expire_a_live_request(db_url: str) -> None:
    """A replica two hours ahead (past the one-hour TTL) neither expires a request the database
    still counts as open nor refuses its approval."""
    with (
        replica(db_url, timedelta(0)) as (first, _),
        replica(db_url, timedelta(hours=2)) as (ahead, _),
    ):
        request = first.submit(draft())
        assert ahead.expire_due() == []
        assert ahead.expire(request.id) is None
        result = ahead.decide(request.id, "U0APP", True, None)
        assert result.outcome is Outcome.APPROVED
        assert result.request is not None and result.request.state == State.APPROVED


def test_a_replica_whose_clock_runs_behind_still_expires_on_time(db_url: str) -> None:
    """A request past its TTL by the database's clock is expired by a replica whose own clock
    says it has time left, and its approval is refused as expired."""
    with (
        replica(db_url, timedelta(hours=-2)) as (behind, _),
        replica(db_url, timedelta(0)) as (other, _),
    ):
        request = behind.submit(draft())  # expires, by the database, an hour ago
        assert other.store.due_for_expiry() == [request.id]
        assert behind.decide(request.id, "U0APP", True, None).outcome is Outcome.EXPIRED
