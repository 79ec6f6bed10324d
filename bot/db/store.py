"""Persistence: requests and audit records in one transaction, transitions as compare-and-set."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    BindParameter,
    Engine,
    Integer,
    String,
    bindparam,
    case,
    create_engine,
    event,
    exc,
    func,
    insert,
    make_url,
    select,
    text,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session, make_transient_to_detached, sessionmaker

from bot.approvals.states import OPEN_STATES, State
from bot.db import audit
from bot.db.audit import AuditEvent, AuditSink
from bot.db.group_commit import GroupCommit
from bot.db.models import AuditRecord, Base, OutboxMessage, OutboxState, SecretRequest, UTCDateTime
from bot.limits import Provenance
from bot.outbox.messages import APPROVAL_POSTS, Message

MIGRATIONS = Path(__file__).parent / "migrations"
# Any 64-bit number works: it only has to be the same in every replica.
MIGRATE_LOCK = 0x486F6F6B4D696772
# Seconds to reach PostgreSQL: past it the database counts as down (Slack waits 3 s for us).
CONNECT_TIMEOUT = 2
M = TypeVar("M", bound=Base)
# Built once: SQLAlchemy caches each statement's compiled form by its structure.
# Each column with the attribute that holds it (``target_id`` is the column ``hook_id``).
REQUEST_COLUMNS = tuple(
    (column, sa_inspect(SecretRequest).get_property_by_column(column).key)
    for column in SecretRequest.__table__.columns
)
INSERT_REQUEST = insert(SecretRequest)
INSERT_OUTBOX = insert(OutboxMessage)
INSERT_HELD = insert(OutboxMessage).returning(*OutboxMessage.__table__.columns)
# How each database names a clash on the one-open-request index (migration 0006).
OPEN_CLASH = ("uq_secret_requests_open", "secret_requests.hook_id, secret_requests.secret_name")


def _deliverable(now: datetime | BindParameter[datetime]) -> Any:
    """Queued, due, and not held by a live worker."""
    return (
        (OutboxMessage.state == OutboxState.QUEUED)
        & (OutboxMessage.due_at <= now)
        & (OutboxMessage.leased_until.is_(None) | (OutboxMessage.leased_until <= now))
    )


_NOW = bindparam("p_now", type_=UTCDateTime())
GET_REQUEST = select(*(column.label(key) for column, key in REQUEST_COLUMNS)).where(
    SecretRequest.id == bindparam("p_id")
)
READY = (
    select(OutboxMessage.id)
    .where(_deliverable(_NOW))
    .order_by(OutboxMessage.id)
    .limit(bindparam("p_limit", type_=Integer()))
)
CLAIM = (
    update(OutboxMessage)
    .where(OutboxMessage.id == bindparam("p_row"), _deliverable(_NOW))
    .values(
        leased_until=bindparam("p_until", type_=UTCDateTime()),
        attempts=OutboxMessage.attempts + 1,
        # While held, due_at is when this attempt began. A lease still set on a deliverable
        # row lapsed: its worker died mid-attempt, which began at the old due_at (SET reads
        # the row as it was) and may have posted the message.
        due_at=_NOW,
        unsure_since=case(
            (
                OutboxMessage.leased_until.is_not(None),
                func.coalesce(OutboxMessage.unsure_since, OutboxMessage.due_at),
            ),
            else_=OutboxMessage.unsure_since,
        ),
    )
    .returning(*OutboxMessage.__table__.columns)
)
# Settling a row needs the lease its worker took: one that lapsed and was taken over is not
# the worker's to settle any more.
_HELD = bindparam("p_held", type_=UTCDateTime())
SENT = (
    update(OutboxMessage)
    .where(OutboxMessage.id == bindparam("p_row"), OutboxMessage.leased_until == _HELD)
    .values(
        state=OutboxState.SENT,
        sent_at=_NOW,
        leased_until=None,
        last_error=bindparam("p_note", type_=String()),
        unsure_since=None,
    )
    .returning(OutboxMessage.request_id)
)
APPROVAL_POSTED = (
    update(SecretRequest)
    .where(SecretRequest.id == bindparam("p_id"))
    .values(approval_channel=bindparam("p_channel"), approval_ts=bindparam("p_ts"))
)


def _detached(model: type[M], row: Row[Any]) -> M:
    """A row read with Core as the detached object a closed session would have left."""
    instance = model(**row._asdict())
    make_transient_to_detached(instance)
    return instance


class Taken(Exception):
    """A request was not inserted: the secret has an open request already."""

    def __init__(self, target_id: str, secret_name: str) -> None:
        super().__init__(f"{target_id}/{secret_name}")
        self.target_id = target_id
        self.secret_name = secret_name


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
        # Called after a commit that queued outbox messages (the delivery worker's wake-up).
        self.on_enqueue: Callable[[], None] = lambda: None

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

    def writers_waiting(self) -> int:
        """Writers of this process queued for their turn in the shared transaction now."""
        return self._writes.waiting

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction; its audit records are printed only once it commits."""

        def printed() -> None:
            for record in tx.audited:
                self.sink.emit(record)
            if tx.enqueued:
                self.on_enqueue()

        with self._writes.member(printed) as session:
            tx = Tx(session)
            yield tx

    def audit(self, event: AuditEvent) -> dict[str, Any]:
        """Record an event that changes no request (a refusal, a denial)."""
        with self.transaction() as tx:
            return tx.audit(event)

    def get(self, request_id: str) -> SecretRequest | None:
        """The request with this id, if any (a detached copy, every column loaded)."""
        with self._read_engine.connect() as connection:
            row = connection.execute(GET_REQUEST, {"p_id": request_id}).first()
        return _detached(SecretRequest, row) if row is not None else None

    def open_request_for(self, target_id: str, secret_name: str) -> SecretRequest | None:
        """A pending or approved request for the same hook and secret name, if any."""
        with self._reads() as session:
            query = select(SecretRequest).where(
                SecretRequest.target_id == target_id,
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

    def provenance(self, target_id: str) -> dict[str, Provenance]:
        """For each secret name on a hook, who last added or rotated it, and when."""
        events = ("secret.added", "secret.updated", "secret.removed")
        query = (
            select(AuditRecord)
            # By the requests' target id: an action's records leave ``hook_id`` null.
            .where(
                AuditRecord.request_id.in_(
                    select(SecretRequest.id).where(SecretRequest.target_id == target_id)
                ),
                AuditRecord.event.in_(events),
            )
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

    # -- the outbox: rows are claimed with a compare-and-set lease, so any replica may send them

    def outbox_ready(self, now: datetime, limit: int) -> Sequence[int]:
        """Ids of queued messages due now that nobody (alive) holds, oldest first."""
        with self._read_engine.connect() as connection:
            return list(connection.execute(READY, {"p_now": now, "p_limit": limit}).scalars())

    def outbox_claim(self, row_id: int, now: datetime, until: datetime) -> Row[Any] | None:
        """Take one message until ``until``: its row (the outbox's columns, read only), or
        None when another worker has it or it is done.

        Every settlement clears the lease, so one still set on a deliverable row lapsed: the
        worker died (or hung) mid-attempt, and the row becomes ``unsure_since`` that attempt
        began (the message may be in Slack already)."""
        with self._writes.member() as session:
            claimed = (
                session.connection()
                .execute(CLAIM, {"p_row": row_id, "p_now": now, "p_until": until})
                .first()
            )
        return claimed

    def outbox_done(
        self,
        row_id: int,
        held: datetime,
        now: datetime,
        then: Sequence[Message] = (),
        approval: tuple[str, str] | None = None,
        note: str | None = None,
        *,
        hold_until: datetime,
    ) -> list[Row[Any]]:
        """Slack took the message: mark it sent, remember where an approval post landed and
        queue what follows it, all in one transaction. What follows is queued already claimed
        by this worker until ``hold_until``, and its rows are returned (the worker sends them
        next, without a claim of their own)."""
        with self.transaction() as tx:
            connection = tx.session.connection()
            where = {"p_row": row_id, "p_held": held, "p_now": now, "p_note": note}
            sent = connection.execute(SENT, where)
            request_id = sent.scalar()
            if request_id is None:  # taken over after our lease lapsed: the other worker settles
                return []
            if approval is not None:
                where = {"p_id": request_id, "p_channel": approval[0], "p_ts": approval[1]}
                connection.execute(APPROVAL_POSTED, where)
            return tx.enqueue_held(then, now, hold_until)

    def outbox_retry(
        self,
        row_id: int,
        held: datetime | None,
        now: datetime,
        due: datetime,
        error: str,
        then: Sequence[Message] = (),
        unsure_since: datetime | None = None,
    ) -> None:
        """Slack could not take it now: try again at ``due`` (what it implies is due now);
        ``unsure_since`` says whether (since when) the message may be in Slack already."""
        values = {"due_at": due, "last_error": error, "unsure_since": unsure_since}
        self._outbox_set(row_id, held, now, then, leased_until=None, **values)

    def outbox_release(self, row_id: int, held: datetime | None) -> None:
        """Give the message back untried (its approval post is still on its way)."""
        attempts = OutboxMessage.attempts - 1
        self._outbox_set(row_id, held, None, (), leased_until=None, attempts=attempts)

    def outbox_dead(
        self,
        row_id: int,
        held: datetime | None,
        now: datetime,
        error: str,
        then: Sequence[Message],
    ) -> None:
        """A permanent error: stop trying, and queue whatever tells a person about it."""
        values = {"state": OutboxState.DEAD, "last_error": error}
        self._outbox_set(row_id, held, now, then, leased_until=None, **values)

    def outbox_rewrite(
        self, row_id: int, held: datetime | None, message: Message, now: datetime
    ) -> None:
        """Deliver the row differently from now on (a DM instead of the channel)."""
        self._outbox_set(
            row_id,
            held,
            now,
            (),
            unsure_since=None,
            method=message.method,
            payload=message.payload(),
            due_at=now,
            attempts=0,
            leased_until=None,
        )

    def _outbox_set(
        self,
        row_id: int,
        held: datetime | None,
        now: datetime | None,
        then: Sequence[Message],
        **values: Any,
    ) -> None:
        """Update one row, if this worker still holds it (``held``: its lease; None: anyone)."""
        query = update(OutboxMessage).where(OutboxMessage.id == row_id)
        if held is not None:
            query = query.where(OutboxMessage.leased_until == held)
        with self.transaction() as tx:
            changed = tx.session.connection().execute(query.values(**values))
            if then and now is not None and changed.rowcount == 1:
                tx.enqueue(then, now)

    def outbox_posting(self, request_id: str) -> bool:
        """Whether the request's approval post is still queued (an update must wait for it)."""
        with self._reads() as session:
            query = select(OutboxMessage.id).where(
                OutboxMessage.request_id == request_id,
                OutboxMessage.method.in_(APPROVAL_POSTS),
                OutboxMessage.state == OutboxState.QUEUED,
            )
            return session.execute(query.limit(1)).first() is not None

    def outbox_counts(self) -> dict[str, int]:
        """Outbox rows by state (for metrics: dead ones are messages nobody received)."""
        with self._reads() as session:
            query = select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
            return {str(state): int(n) for state, n in session.execute(query)}


def _queued(message: Message, now: datetime) -> dict[str, Any]:
    """An outbox row for ``message``, due now."""
    return {
        "request_id": message.request_id,
        "method": message.method,
        "payload": message.payload(),
        "state": OutboxState.QUEUED,
        "attempts": 0,
        "due_at": now,
        "created_at": now,
    }


class Tx:
    """One open transaction: request writes and the audit records that go with them."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.audited: list[dict[str, Any]] = []
        self.enqueued = 0

    def audit(self, event: AuditEvent) -> dict[str, Any]:
        """Append an event to the chain in this transaction."""
        record = audit.append(self.session, event)
        self.audited.append(record)
        return record

    def enqueue(self, messages: Sequence[Message], now: datetime) -> None:
        """Queue Slack messages in this transaction: they exist exactly if the change does."""
        if messages:
            rows = [_queued(message, now) for message in messages]
            self.session.connection().execute(INSERT_OUTBOX, rows)
        self.enqueued += len(messages)

    def enqueue_held(
        self, messages: Sequence[Message], now: datetime, until: datetime
    ) -> list[Row[Any]]:
        """Queue messages claimed by the caller until ``until``, as its claim would have left
        them (nobody is woken: the caller sends them); their rows. If the caller dies first,
        the lease lapses and the next claim takes them as unsure (maybe posted): free for an
        ephemeral note, a history read (or a repost without the scopes) for a post."""
        connection = self.session.connection()
        held = {"leased_until": until, "attempts": 1}
        return [
            connection.execute(INSERT_HELD, _queued(message, now) | held).one()
            for message in messages
        ]

    def add(self, request: SecretRequest) -> None:
        """Insert a new request (a Core insert: the ORM's unit of work costs several times
        more); ``request`` is then a detached copy of the row, every column set. ``Taken``
        when the secret has an open request already: the transaction must end (PostgreSQL
        refuses any further statement in it)."""
        state = request.__dict__
        for column, key in REQUEST_COLUMNS:
            if key not in state:
                default = column.default
                setattr(request, key, getattr(default, "arg", None))  # a scalar default
        try:
            self.session.connection().execute(
                INSERT_REQUEST, {column.key: state[key] for column, key in REQUEST_COLUMNS}
            )
        except exc.IntegrityError as error:
            if any(name in str(error.orig) for name in OPEN_CLASH):
                raise Taken(request.target_id, request.secret_name) from None
            raise
        make_transient_to_detached(request)

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

    def renew(self, request_id: str, claimed_at: datetime, now: datetime) -> bool:
        """Move a running apply's claim to ``now``, if it is still the one taken at
        ``claimed_at`` (False: the lease lapsed and another process took it over)."""
        result = self.session.execute(
            update(SecretRequest)
            .where(
                SecretRequest.id == request_id,
                SecretRequest.state == State.APPROVED,
                SecretRequest.apply_started_at == claimed_at,
            )
            .values(apply_started_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # UPDATE's CursorResult

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
        # wrote would be lost with that inode: check it is still the file at the path when a
        # connection is taken from the pool, and again before a commit (a group commit's
        # transaction takes in writers for a while after its checkout).
        @event.listens_for(engine, "checkout")
        def _checkout(_: Any, record: Any, __: Any) -> None:
            _still_there(path, record.info.get("file"))

        @event.listens_for(engine, "commit")
        def _commit(connection: Any) -> None:
            try:
                _still_there(path, connection.info.get("file"))
            except exc.DisconnectionError as error:
                # Raised before SQLAlchemy's own error handling: without this the connection
                # would go back to the pool inside its transaction, holding the write lock.
                connection.invalidate(error)
                raise

    return engine


def _still_there(path: Path, opened: tuple[int, int] | None) -> None:
    if _identity(path) != opened:
        raise exc.DisconnectionError(f"the SQLite database {path} is gone or replaced")


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
