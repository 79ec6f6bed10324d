"""Store and audit chain on SQLite and PostgreSQL: migrations, compare-and-set, tamper evidence."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import insert, text
from sqlalchemy import inspect as sa_inspect

from bot.approvals.states import State
from bot.db import audit
from bot.db.audit import AuditEvent, AuditSink
from bot.db.database import MIGRATIONS
from bot.db.engine import create_sqlite_file, sqlite_path
from bot.db.models import SecretRequest
from bot.db.requests import new_request_id
from bot.db.store import Store
from bot.db.tx import Taken


def _store(url: str) -> Store:
    store = Store(url, AuditSink(io.StringIO()))
    store.migrate()
    return store


def _request(state: State = State.PENDING) -> SecretRequest:
    now = datetime.now(UTC)
    return SecretRequest(
        id=new_request_id(),
        kind="add",
        state=state,
        team_id="T1",
        requester="U1",
        origin_channel="C1",
        target_id="h1",
        target_name="Hook",
        secret_name="API_KEY",
        reason="r",
        value_ciphertext=b"ciphertext",
        fingerprint="f",
        required_approvals=1,
        created_at=now,
        expires_at=now + timedelta(hours=1),
    )


def test_migrate_twice_keeps_rows(db_url: str) -> None:
    """Running the migration again on start loses no row."""
    store = _store(db_url)
    with store.transaction() as tx:
        tx.add(_request())
    store.migrate()
    with store.session() as session:
        assert session.execute(text("SELECT count(*) FROM secret_requests")).scalar() == 1
    store.close()


def test_concurrent_transitions_have_exactly_one_winner(db_url: str) -> None:
    """Eight threads racing to approve one request: exactly one compare-and-set succeeds."""
    store = _store(db_url)
    request = _request()
    with store.transaction() as tx:
        tx.add(request)
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def approve(actor: str) -> None:
        barrier.wait()
        with store.transaction() as tx:
            if tx.transition(request.id, [State.PENDING], State.APPROVED, decided_by=actor):
                tx.audit(AuditEvent("request.approved", actor=actor, request_id=request.id))
                winners.append(actor)

    threads = [threading.Thread(target=approve, args=(f"U{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    stored = store.get(request.id)
    assert stored is not None
    assert stored.decided_by == winners[0]
    with store.session() as session:
        assert audit.verify(session).broken_at is None
    store.close()


def test_concurrent_appends_never_fork_the_chain(db_url: str) -> None:
    """Audit records appended from many threads form one unbroken chain."""
    store = _store(db_url)

    def write(n: int) -> None:
        for i in range(5):
            store.audit(AuditEvent("request.denied", actor=f"U{n}", outcome=str(i)))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with store.session() as session:
        result = audit.verify(session)
    assert result.broken_at is None
    assert result.checked == 30
    store.close()


def _trail(store: Store, n: int = 5) -> None:
    for i in range(n):
        store.audit(AuditEvent("request.submitted", actor="U1", request_id=f"r{i}", outcome="ok"))


@pytest.mark.parametrize(
    ("tamper", "broken"),
    [
        ("UPDATE audit_log SET actor = 'U666' WHERE seq = 3", 3),
        ("DELETE FROM audit_log WHERE seq = 2", 2),
        (
            "SWAP 3 4",
            3,
        ),
        (
            "INSERT INTO audit_log (seq, timestamp, event, detail, prev_hash, hash) VALUES "
            "(6, '2026-01-01T00:00:00Z', 'secret.added', '{}', 'feed', 'beef')",
            6,
        ),
    ],
    ids=["edited", "deleted", "reordered", "forged"],
)
def test_verify_names_the_first_broken_record(db_url: str, tamper: str, broken: int) -> None:
    """An edited, deleted, reordered or forged record is reported by its id."""
    store = _store(db_url)
    _trail(store)
    with store.session() as session:
        assert audit.verify(session) == audit.VerifyResult(5)
    with store.engine.begin() as connection:
        if tamper == "SWAP 3 4":  # swap through a free number: the primary key forbids duplicates
            connection.execute(text("UPDATE audit_log SET seq = 99 WHERE seq = 3"))
            connection.execute(text("UPDATE audit_log SET seq = 3 WHERE seq = 4"))
            connection.execute(text("UPDATE audit_log SET seq = 4 WHERE seq = 99"))
        else:
            connection.execute(text(tamper))
    with store.session() as session:
        result = audit.verify(session)
    assert result.broken_at == broken
    store.close()


def test_audit_lines_print_only_after_commit(sqlite_url: str) -> None:
    """A rolled-back transaction leaves neither an audit row nor an audit line."""
    stream = io.StringIO()
    store = Store(sqlite_url, AuditSink(stream))
    store.migrate()

    def failing_change() -> None:
        with store.transaction() as tx:
            tx.audit(AuditEvent("request.submitted", actor="U1"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing_change()
    store.audit(AuditEvent("request.denied", actor="U2", team_id="T1", outcome="x"))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["request.denied"]
    assert lines[0]["audit"] is True
    assert {
        "timestamp",
        "request_id",
        "actor",
        "team_id",
        "hook_id",
        "secret_name",
        "outcome",
    } <= set(lines[0])
    with store.session() as session:
        exported = list(audit.export(session))
    assert exported == lines
    store.close()


def _older_store(url: str, revision: str) -> Store:
    """A store whose schema is migrated up to ``revision`` only (an older bot's database)."""
    store = Store(url, AuditSink(io.StringIO()))
    path = sqlite_path(url)
    if path is not None:
        create_sqlite_file(path)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return store


def _add_older(store: Store, *requests: SecretRequest) -> None:
    """Insert ``requests`` as an older bot wrote them: without the columns added since (the
    seal of migration 0008_seals); unset columns take the schema's defaults."""
    with store.engine.begin() as connection:
        for request in requests:
            row = {
                attribute.key: getattr(request, attribute.key)
                for attribute in sa_inspect(SecretRequest).column_attrs
                if attribute.key != "seal" and getattr(request, attribute.key) is not None
            }
            connection.execute(insert(SecretRequest).values(row))


def _open_count(store: Store) -> int:
    with store.session() as session:
        query = "SELECT COUNT(*) FROM secret_requests WHERE state IN ('pending', 'approved')"
        return int(session.execute(text(query)).scalar_one())


def test_the_database_keeps_one_open_request_per_secret(db_url: str) -> None:
    """Upgraded from the previous schema, the database itself refuses a second open request
    for a secret (``Taken``, and the writer's transaction leaves nothing); a decided request
    for it, or an open one for another secret, is no obstacle."""
    store = _older_store(db_url, "0005")
    _add_older(store, _request(State.REJECTED), _request())
    store.migrate()

    def audit_then_take() -> None:
        with store.transaction() as tx:
            tx.audit(AuditEvent("request.submitted", actor="U1"))
            tx.add(_request(State.APPROVED))

    with pytest.raises(Taken):
        audit_then_take()
    other = _request()
    other.secret_name = "OTHER_KEY"
    with store.transaction() as tx:
        tx.add(other)
    assert _open_count(store) == 2
    with store.session() as session:
        assert audit.verify(session).checked == 0  # the refused writer's record was rolled back
    store.close()


def test_an_older_database_with_two_open_requests_for_a_secret_is_not_upgraded(
    db_url: str,
) -> None:
    """The upgrade that adds the index stops, naming the secret, and changes nothing: the
    operator decides which request stays."""
    store = _older_store(db_url, "0005")
    _add_older(store, _request(), _request(State.APPROVED))
    with pytest.raises(RuntimeError, match="more than one open request for h1/API_KEY"):
        store.migrate()
    assert _open_count(store) == 2
    with store.session() as session:
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0005"
    store.close()
