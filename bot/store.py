"""Persistence: requests and audit records in one transaction, transitions as compare-and-set."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, exc, func, make_url, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from bot import audit
from bot.audit import AuditEvent, AuditSink
from bot.commits import GroupCommit
from bot.domain import Provenance
from bot.models import OPEN_STATES, AuditRecord, SecretRequest, State

MIGRATIONS = Path(__file__).parent / "migrations"
# approval_ts holds this marker and a time while a replica posts the approval message.
POSTING = "posting:"
POST_LEASE = timedelta(minutes=2)
# Any 64-bit number works: it only has to be the same in every replica.
MIGRATE_LOCK = 0x486F6F6B4D696772
# Seconds to reach PostgreSQL: past it the database counts as down (Slack waits 3 s for us).
CONNECT_TIMEOUT = 2


def new_request_id() -> str:
    """A short unguessable request id, safe in button values and private_metadata."""
    return "hsr_" + secrets.token_hex(8)


class Store:
    """The database: schema migration, transactions, request transitions and the audit chain."""

    def __init__(self, url: str, sink: AuditSink | None = None) -> None:
        self.url = url
        self.engine = _make_engine(url, writer=True)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: reads need no write lock (WAL lets them run beside the writer).
        sqlite = url.startswith("sqlite")
        self._read_engine = _make_engine(url, writer=False) if sqlite else self.engine
        self._reads = sessionmaker(self._read_engine, expire_on_commit=False)
        # Writers queue in this process (not in SQLite's sleeping busy handler, nor on the
        # audit chain's lock in PostgreSQL) and share commits: see GroupCommit.
        self._writes = GroupCommit(self._sessions)
        self.sink = sink or AuditSink()

    def migrate(self) -> None:
        """Create (the one place a database file is created) or upgrade the schema without
        losing rows; safe with replicas starting at once."""
        path = sqlite_path(self.url)
        if path is not None and not path.exists():
            create_sqlite_file(path)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def ping(self, *, schema: bool = True) -> bool:
        """Whether the database answers; with ``schema``, with the bot's tables in it."""
        probe = "SELECT 1 FROM secret_requests LIMIT 1" if schema else "SELECT 1"
        try:
            with self._read_engine.connect() as connection:
                connection.execute(text(probe))
        except Exception:  # any failure means "not healthy"
            return False
        return True

    def writable(self) -> bool:
        """Whether a request could be recorded now: the schema answers inside the writers'
        transaction (SQLite: the write lock is held; PostgreSQL: not a read-only server)."""
        try:
            with self._writes.member() as session:
                for table in ("secret_requests", "audit_log"):  # a request writes both
                    session.execute(text(f"SELECT 1 FROM {table} LIMIT 1"))  # noqa: S608 - fixed names
                if session.get_bind().dialect.name == "postgresql":
                    read_only = session.execute(text("SHOW transaction_read_only")).scalar()
                    if read_only != "off":
                        return False
        except Exception:  # any failure means "requests can't be recorded"
            return False
        return True

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()
        self._read_engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction; its audit records are printed only once it commits."""

        def printed() -> None:
            for record in tx.audited:
                self.sink.emit(record)

        with self._writes.member(printed) as session:
            tx = Tx(session)
            yield tx

    def audit(self, event: AuditEvent) -> dict[str, Any]:
        """Record an event that changes no request (a refusal, a denial)."""
        with self.transaction() as tx:
            return tx.audit(event)

    def get(self, request_id: str) -> SecretRequest | None:
        """The request with this id, if any."""
        with self._reads() as session:
            return session.get(SecretRequest, request_id)

    def open_request_for(self, hook_id: str, secret_name: str) -> SecretRequest | None:
        """A pending or approved request for the same hook and secret name, if any."""
        with self._reads() as session:
            query = select(SecretRequest).where(
                SecretRequest.hook_id == hook_id,
                SecretRequest.secret_name == secret_name,
                SecretRequest.state.in_(OPEN_STATES),
            )
            return session.execute(query.limit(1)).scalar_one_or_none()

    def due_for_expiry(self, now: datetime) -> Sequence[str]:
        """Ids of pending requests whose time is up."""
        with self._reads() as session:
            query = select(SecretRequest.id).where(
                SecretRequest.state == State.PENDING, SecretRequest.expires_at <= now
            )
            return list(session.execute(query).scalars())

    def unposted(self, created_before: datetime, now: datetime) -> Sequence[SecretRequest]:
        """Pending requests awaiting approval whose approval message was never posted (or whose
        poster died before saying where)."""
        with self._reads() as session:
            query = select(SecretRequest).where(
                SecretRequest.state == State.PENDING,
                SecretRequest.required_approvals > 0,
                _postable(now - POST_LEASE),
                SecretRequest.created_at <= created_before,
            )
            return list(session.execute(query).scalars())

    def claim_post(self, request_id: str, now: datetime) -> bool:
        """Take the right to post a request's approval message: one replica posts it."""
        with self._writes.member() as session:
            result = session.execute(
                update(SecretRequest)
                .where(SecretRequest.id == request_id, _postable(now - POST_LEASE))
                .values(approval_ts=_posting(now))
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # UPDATE's CursorResult

    def release_post(self, request_id: str) -> None:
        """Give the claim back after a failed post, so that a later sweep tries again."""
        with self._writes.member() as session:
            session.execute(
                update(SecretRequest)
                .where(SecretRequest.id == request_id, SecretRequest.approval_ts.like("posting:%"))
                .values(approval_ts=None)
            )

    def stranded(self, unclaimed_before: datetime, started_before: datetime) -> Sequence[str]:
        """Approved requests nobody is applying: never claimed, or claimed by a dead process."""
        with self._reads() as session:
            query = select(SecretRequest.id).where(
                SecretRequest.state == State.APPROVED,
                (
                    SecretRequest.apply_started_at.is_(None)
                    & (SecretRequest.decided_at <= unclaimed_before)
                )
                | (SecretRequest.apply_started_at <= started_before),
            )
            return list(session.execute(query).scalars())

    def count_pending(self) -> int:
        """How many requests wait for a decision (for metrics)."""
        with self._reads() as session:
            query = select(func.count()).where(SecretRequest.state == State.PENDING)
            return int(session.execute(query).scalar_one())

    @staticmethod
    def approval_message(request: SecretRequest) -> tuple[str, str] | None:
        """Where the request's approval message was posted, or None (never, or still posting)."""
        channel, ts = request.approval_channel, request.approval_ts
        if not channel or not ts or ts.startswith(POSTING):
            return None
        return channel, ts

    def set_approval_message(self, request_id: str, channel: str, ts: str) -> None:
        """Remember where the approval request was posted, to update it once decided."""
        with self._writes.member() as session:
            session.execute(
                update(SecretRequest)
                .where(SecretRequest.id == request_id)
                .values(approval_channel=channel, approval_ts=ts)
            )

    def provenance(self, hook_id: str) -> dict[str, Provenance]:
        """For each secret name on a hook, who last added or rotated it, and when."""
        events = ("secret.added", "secret.updated", "secret.removed")
        query = (
            select(AuditRecord)
            .where(AuditRecord.hook_id == hook_id, AuditRecord.event.in_(events))
            .order_by(AuditRecord.seq)
        )
        latest: dict[str, Provenance] = {}
        with self._reads() as session:
            for record in session.execute(query).scalars():
                if record.secret_name is None:
                    continue
                if record.event == "secret.removed":
                    latest.pop(record.secret_name, None)
                else:
                    latest[record.secret_name] = _provenance(record)
        return latest

    def session(self) -> Session:
        """A plain session for read-only work (audit verify and export)."""
        return self._reads()


class Tx:
    """One open transaction: request writes and the audit records that go with them."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.audited: list[dict[str, Any]] = []

    def audit(self, event: AuditEvent) -> dict[str, Any]:
        """Append an event to the chain in this transaction."""
        record = audit.append(self.session, event)
        self.audited.append(record)
        return record

    def add(self, request: SecretRequest) -> None:
        """Insert a new request."""
        self.session.add(request)
        self.session.flush()

    def open_request_for(self, hook_id: str, secret_name: str) -> SecretRequest | None:
        """The open request for this hook secret, read once earlier writers of it committed
        (PostgreSQL: a lock per hook secret; SQLite's BEGIN IMMEDIATE serialises writers)."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"hook-secret:{hook_id}/{secret_name}"},
            )
        query = select(SecretRequest).where(
            SecretRequest.hook_id == hook_id,
            SecretRequest.secret_name == secret_name,
            SecretRequest.state.in_(OPEN_STATES),
        )
        return self.session.execute(query.limit(1)).scalar_one_or_none()

    def transition(
        self,
        request_id: str,
        from_states: Sequence[State],
        to_state: State,
        *,
        unexpired_at: datetime | None = None,
        claimed_at: datetime | None = None,
        **values: Any,
    ) -> SecretRequest | None:
        """Compare-and-set: move the request only if it is still in ``from_states`` (and, if
        given, not expired at ``unexpired_at`` / still claimed by the apply of ``claimed_at``)."""
        conditions = [SecretRequest.id == request_id, SecretRequest.state.in_(from_states)]
        if unexpired_at is not None:
            conditions.append(SecretRequest.expires_at > unexpired_at)
        if claimed_at is not None:
            conditions.append(SecretRequest.apply_started_at == claimed_at)
        result = self.session.execute(
            update(SecretRequest)
            .where(*conditions)
            .values(state=to_state, **values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            return None
        row = self.session.get(SecretRequest, request_id, populate_existing=True)
        return row

    def claim(self, request_id: str, now: datetime, stale_before: datetime) -> SecretRequest | None:
        """Take the right to apply an approved request; only one caller at a time gets it."""
        result = self.session.execute(
            update(SecretRequest)
            .where(
                SecretRequest.id == request_id,
                SecretRequest.state == State.APPROVED,
                (SecretRequest.apply_started_at.is_(None))
                | (SecretRequest.apply_started_at <= stale_before),
            )
            .values(apply_started_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            return None
        return self.session.get(SecretRequest, request_id, populate_existing=True)


def _provenance(record: AuditRecord) -> Provenance:
    """Read a ``secret.added``/``updated`` record: the requester is in its detail, the actor
    approved."""
    requester = json.loads(record.detail).get("requester") or record.actor
    return Provenance(record.event == "secret.added", requester, record.actor, record.timestamp)


def _posting(moment: datetime) -> str:
    # Fixed-width epoch seconds compare as text, and fit the 32-character column.
    return f"{POSTING}{moment.timestamp():017.6f}"


def _postable(stale_before: datetime) -> ColumnElement[bool]:
    """No approval message yet, and nobody (alive) posting one."""
    marker = SecretRequest.approval_ts
    return marker.is_(None) | (marker.like("posting:%") & (marker < _posting(stale_before)))


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (``None`` for other databases and ``:memory:``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database or "").absolute()


def create_sqlite_file(path: Path) -> None:
    """Create an empty SQLite database file (``run`` does, on start, before migrating)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(path.as_uri() + "?mode=rwc", uri=True).close()


def _make_engine(url: str, *, writer: bool) -> Engine:
    path = sqlite_path(url)
    if not url.startswith("sqlite"):
        # Connections that fail fast when the server is unreachable: a click waits on them.
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=10,
            connect_args={"connect_timeout": CONNECT_TIMEOUT},
        )
    engine = _sqlite_engine(url, path)
    if writer:
        # SQLAlchemy's documented recipe: let SQLAlchemy emit BEGIN, and make it IMMEDIATE
        # so that concurrent writers (other processes too) serialise instead of forking the
        # audit chain.
        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _sqlite_engine(url: str, path: Path | None) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=8,
        max_overflow=24,
        # mode=rw: a missing file is an outage to report, never a new empty audit trail.
        **({"creator": lambda: _open_existing(path)} if path else {}),
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA busy_timeout=30000")
        dbapi_connection.execute("PRAGMA secure_delete=ON")
        if path:
            record.info["file"] = _identity(path)

    if path:
        # A pooled connection keeps working on a file renamed away or replaced, and whatever it
        # wrote would be lost with that inode: check it is still the file at the path.
        @event.listens_for(engine, "checkout")
        def _checkout(_: Any, record: Any, __: Any) -> None:
            if _identity(path) != record.info.get("file"):
                raise exc.DisconnectionError(f"the SQLite database {path} is gone or replaced")

    return engine


def _open_existing(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(
        path.as_uri() + "?mode=rw", uri=True, check_same_thread=False, timeout=30
    )


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino
