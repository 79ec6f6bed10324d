"""Group commit on a real database: writers share commits, and one's failure is its own."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from bot.approvals.states import State
from bot.db import audit
from bot.db.audit import AuditEvent, AuditSink
from bot.db.models import SecretRequest
from bot.db.requests import new_request_id
from bot.db.store import Store

WRITERS = 24


def _store(url: str) -> tuple[Store, io.StringIO]:
    printed = io.StringIO()
    store = Store(url, AuditSink(printed))
    store.migrate()
    return store, printed


def _request(name: str) -> SecretRequest:
    now = datetime.now(UTC)
    return SecretRequest(
        id=new_request_id(),
        kind="add",
        state=State.PENDING,
        team_id="T1",
        requester="U1",
        origin_channel="C1",
        target_id="h1",
        target_name="Hook",
        secret_name=name,
        reason="r",
        value_ciphertext=b"ciphertext",
        fingerprint="f",
        required_approvals=1,
        created_at=now,
        expires_at=now + timedelta(hours=1),
    )


class Refused(Exception):
    """A writer's own failure inside its transaction."""


def test_writers_at_once_share_commits_and_each_failure_stays_its_own(db_url: str) -> None:
    """Two dozen writers at once: fewer commits than writers, every good write stored and
    audited once in one verified chain, and the writers that failed left nothing behind."""
    store, printed = _store(db_url)
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda _connection: commits.append(1))
    start = threading.Barrier(WRITERS)

    def write(n: int) -> str:
        start.wait()
        try:
            with store.transaction() as tx:
                request = _request(f"NAME_{n:02d}")
                tx.add(request)
                tx.audit(AuditEvent("request.submitted", request_id=request.id, outcome=str(n)))
                if n % 5 == 0:
                    raise Refused(n)
        except Refused:
            return "refused"
        return request.id

    with ThreadPoolExecutor(WRITERS) as pool:
        outcomes = list(pool.map(write, range(WRITERS)))
    kept = [o for o in outcomes if o != "refused"]
    assert len(kept) == WRITERS - len(range(0, WRITERS, 5))
    assert len(commits) < len(kept)  # some commits were shared (one each before)
    with store.session() as session:
        assert audit.verify(session).broken_at is None
        rows = session.query(SecretRequest).all()
        trail = list(audit.export(session))
    assert sorted(r.id for r in rows) == sorted(kept)
    assert sorted(r["request_id"] for r in trail) == sorted(kept)
    assert len(printed.getvalue().splitlines()) == len(kept)  # printed once committed
    store.close()


def test_objects_returned_by_a_write_are_its_own_snapshot(db_url: str) -> None:
    """What one writer read in its transaction is not changed by the next writer's work."""
    store, _ = _store(db_url)
    request = _request("API_KEY")
    with store.transaction() as tx:
        tx.add(request)
    seen: dict[str, Any] = {}
    with store.transaction() as tx:
        seen["first"] = tx.transition(request.id, [State.PENDING], State.APPROVED)
    with store.transaction() as tx:
        tx.transition(request.id, [State.APPROVED], State.REJECTED)
    assert seen["first"] is not None and seen["first"].state == State.APPROVED
    stored = store.get(request.id)
    assert stored is not None and stored.state == State.REJECTED
    store.close()


def test_a_failed_write_raises_to_its_writer_and_the_store_keeps_working(db_url: str) -> None:
    """An integrity error (a duplicate id) reaches the writer; later writes go through."""
    store, _ = _store(db_url)
    request = _request("API_KEY")
    with store.transaction() as tx:
        tx.add(request)
    duplicate = _request("OTHER")
    duplicate.id = request.id
    with pytest.raises(IntegrityError), store.transaction() as tx:
        tx.add(duplicate)
    with store.transaction() as tx:
        tx.audit(AuditEvent("request.denied", actor="U1"))
    with store.session() as session:
        assert audit.verify(session).checked == 1
    store.close()


def test_a_lone_writer_that_fails_leaves_nothing_and_the_chain_goes_on(db_url: str) -> None:
    """The first writer of a transaction needs no savepoint: its failure after writing a
    request and an audit record rolls both back, and the next writer starts afresh."""
    store, printed = _store(db_url)
    request = _request("API_KEY")

    def write_then_fail() -> None:
        with store.transaction() as tx:
            tx.add(request)
            tx.audit(AuditEvent("request.submitted", request_id=request.id))
            raise Refused

    with pytest.raises(Refused):
        write_then_fail()
    assert store.get(request.id) is None
    with store.transaction() as tx:
        tx.audit(AuditEvent("request.denied", actor="U1"))
    with store.session() as session:
        assert audit.verify(session).checked == 1
    assert "request.submitted" not in printed.getvalue()
    assert printed.getvalue().count("request.denied") == 1
    store.close()


def test_objects_a_lone_writer_adds_through_the_session_are_stored(db_url: str) -> None:
    """A writer may add ORM objects to its session: they are flushed and committed like the
    savepoint of a later writer would have them."""
    store, _ = _store(db_url)
    request = _request("API_KEY")
    with store.transaction() as tx:
        tx.session.add(request)
    stored = store.get(request.id)
    assert stored is not None and stored.secret_name == "API_KEY"
    store.close()
