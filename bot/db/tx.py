"""One write transaction: request inserts and transitions, outbox rows, audit records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exc, insert, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session, make_transient_to_detached

from bot.approvals.states import State
from bot.db import audit
from bot.db.audit import AuditEvent
from bot.db.audit_chain import ChainKeys
from bot.db.clock import Pinned, database_time
from bot.db.models import Approval, OutboxMessage, OutboxState, SecretRequest
from bot.outbox.messages import Message

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
# How each database names a second approval by the same person (migration 0009).
APPROVAL_CLASH = ("uq_approvals_once", "approvals.request_id, approvals.approver")


class Taken(Exception):
    """A request was not inserted: the secret has an open request already."""

    def __init__(self, target_id: str, secret_name: str) -> None:
        super().__init__(f"{target_id}/{secret_name}")
        self.target_id = target_id
        self.secret_name = secret_name


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


class ApprovedAlready(Exception):
    """The person's approval of this request is recorded already (a double click, or the same
    person on two replicas at once): the transaction must end."""


class Tx:
    """One open transaction: request writes and the audit records that go with them."""

    def __init__(
        self, session: Session, pinned: Pinned = None, chain: ChainKeys | None = None
    ) -> None:
        self.session = session
        self.chain = chain  # the audit chain's keys (None: plain, unkeyed hashes)
        self.pinned = pinned  # tests' clock in place of the database's (None: the database's)
        self.audited: list[dict[str, Any]] = []
        self.enqueued = 0
        self.erased = False  # a value was erased: SQLite's WAL is scrubbed once this commits

    def audit(self, event: AuditEvent) -> dict[str, Any]:
        """Append an event to the chain in this transaction."""
        record = audit.append(self.session, event, keys=self.chain)
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
        unexpired: bool = False,
        due: bool = False,
        claimed_at: datetime | None = None,
        **values: Any,
    ) -> SecretRequest | None:
        """Compare-and-set: move the request only if it is still in ``from_states`` (and, if
        asked, not expired / expired by the database's clock, or still claimed by the apply of
        ``claimed_at``)."""
        conditions = [SecretRequest.id == request_id, SecretRequest.state.in_(from_states)]
        if unexpired:
            conditions.append(SecretRequest.expires_at > database_time(self.pinned))
        if due:
            conditions.append(SecretRequest.expires_at <= database_time(self.pinned))
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
        if "value_ciphertext" in values and values["value_ciphertext"] is None:
            self.erased = True
        row = self.session.get(SecretRequest, request_id, populate_existing=True)
        return row

    def hold_pending(self, request_id: str) -> SecretRequest | None:
        """Lock a pending, unexpired request's row for the rest of this transaction (a no-op
        write: PostgreSQL's row lock, SQLite's write lock), so that approvals of one request
        are counted one transaction after another; the row as locked, or None when it is no
        longer pending."""
        result = self.session.execute(
            update(SecretRequest)
            .where(
                SecretRequest.id == request_id,
                SecretRequest.state == State.PENDING,
                SecretRequest.expires_at > database_time(self.pinned),
            )
            .values(state=State.PENDING)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            return None
        return self.session.get(SecretRequest, request_id, populate_existing=True)

    def approvals(self, request_id: str) -> list[Approval]:
        """The request's approval rows as this transaction sees them, oldest first."""
        query = select(Approval).where(Approval.request_id == request_id).order_by(Approval.id)
        return list(self.session.execute(query).scalars())

    def seat_approvals(self, request_id: str, seats: dict[str, int | None]) -> None:
        """Record the term each approver of the request fills now (None: none)."""
        for approver, term in seats.items():
            self.session.execute(
                update(Approval)
                .where(Approval.request_id == request_id, Approval.approver == approver)
                .values(term=term)
                .execution_options(synchronize_session=False)
            )

    def add_approval(self, approval: Approval) -> None:
        """Insert one approval; ``ApprovedAlready`` when this person's is there already."""
        try:
            with self.session.begin_nested():
                self.session.add(approval)
                self.session.flush()
        except exc.IntegrityError as error:
            if any(name in str(error.orig) for name in APPROVAL_CLASH):
                raise ApprovedAlready(approval.approver) from None
            raise

    def renew(self, request_id: str, claimed_at: datetime) -> datetime | None:
        """Move a running apply's claim to the database's time, if it is still the one taken
        at ``claimed_at``: the new claim (None: the lease lapsed and another process took it
        over)."""
        return self.session.execute(
            update(SecretRequest)
            .where(
                SecretRequest.id == request_id,
                SecretRequest.state == State.APPROVED,
                SecretRequest.apply_started_at == claimed_at,
            )
            .values(apply_started_at=database_time(self.pinned))
            .returning(SecretRequest.apply_started_at)
            .execution_options(synchronize_session=False)
        ).scalar()

    def claim(self, request_id: str, lease: timedelta) -> SecretRequest | None:
        """Take the right to apply an approved request, unclaimed or not renewed for ``lease``
        by the database's clock; only one caller at a time gets it (its ``apply_started_at``
        is the claim, for ``renew`` and ``transition``)."""
        result = self.session.execute(
            update(SecretRequest)
            .where(
                SecretRequest.id == request_id,
                SecretRequest.state == State.APPROVED,
                (SecretRequest.apply_started_at.is_(None))
                | (SecretRequest.apply_started_at <= database_time(self.pinned, -lease)),
            )
            .values(apply_started_at=database_time(self.pinned))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            return None
        return self.session.get(SecretRequest, request_id, populate_existing=True)
