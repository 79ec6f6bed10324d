"""The outbox queue: rows claimed with a compare-and-set lease, settled by their holder."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Integer, String, bindparam, case, func, select, update
from sqlalchemy.engine import Row

from bot.db.database import Database
from bot.db.models import OutboxMessage, OutboxState, SecretRequest, UTCDateTime
from bot.outbox.messages import APPROVAL_POSTS, Message


def _deliverable(now: datetime | BindParameter[datetime]) -> Any:
    """Queued, due, and not held by a live worker."""
    return (
        (OutboxMessage.state == OutboxState.QUEUED)
        & (OutboxMessage.due_at <= now)
        & (OutboxMessage.leased_until.is_(None) | (OutboxMessage.leased_until <= now))
    )


_NOW = bindparam("p_now", type_=UTCDateTime())
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


class OutboxQueue(Database):
    """The outbox's queries: what is ready, claim, and settle (sent, retry, dead, rewrite)."""

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
