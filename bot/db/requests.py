"""Reads of requests: by id, open, due for expiry, stranded, and who last set a secret."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import make_transient_to_detached

from bot.approvals.states import OPEN_STATES, State
from bot.db.clock import database_time
from bot.db.database import Database
from bot.db.models import Approval, AuditRecord, Base, SecretRequest
from bot.db.tx import REQUEST_COLUMNS
from bot.limits import Provenance
from bot.targets.base import DEFAULT_TENANT

M = TypeVar("M", bound=Base)
# The events that end a request: nothing of it may be approved or applied after one.
ENDING_EVENTS = (
    "secret.added",
    "secret.updated",
    "secret.removed",
    "request.failed",
    "request.rejected",
    "request.expired",
)
GET_REQUEST = select(*(column.label(key) for column, key in REQUEST_COLUMNS)).where(
    SecretRequest.id == bindparam("p_id")
)


def _detached(model: type[M], row: Row[Any]) -> M:
    """A row read with Core as the detached object a closed session would have left."""
    instance = model(**row._asdict())
    make_transient_to_detached(instance)
    return instance


def new_request_id() -> str:
    """A short unguessable request id, safe in button values and private_metadata."""
    return "hsr_" + secrets.token_hex(8)


class RequestQueries(Database):
    """Read-only queries on requests (writes go through a ``Tx``)."""

    def get(self, request_id: str) -> SecretRequest | None:
        """The request with this id, if any (a detached copy, every column loaded)."""
        with self._read_engine.connect() as connection:
            row = connection.execute(GET_REQUEST, {"p_id": request_id}).first()
        return _detached(SecretRequest, row) if row is not None else None

    def open_request_for(
        self, target_id: str, secret_name: str, tenant: str = DEFAULT_TENANT
    ) -> SecretRequest | None:
        """A pending or approved request for the same secret of the same target, if any."""
        with self._reads() as session:
            query = select(SecretRequest).where(
                SecretRequest.tenant == tenant,
                SecretRequest.target_id == target_id,
                SecretRequest.secret_name == secret_name,
                SecretRequest.state.in_(OPEN_STATES),
            )
            return session.execute(query.limit(1)).scalar_one_or_none()

    def due_for_expiry(self) -> Sequence[str]:
        """Ids of pending requests whose time is up by the database's clock."""
        with self._reads() as session:
            query = select(SecretRequest.id).where(
                SecretRequest.state == State.PENDING,
                SecretRequest.expires_at <= database_time(self.pinned),
            )
            return list(session.execute(query).scalars())

    def stranded(self, grace: timedelta, lease: timedelta) -> Sequence[str]:
        """Approved requests nobody is applying, by the database's clock: never claimed
        ``grace`` after the decision, or claimed and not renewed for ``lease`` (a dead
        process)."""
        unclaimed_before = database_time(self.pinned, -grace)
        started_before = database_time(self.pinned, -lease)
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

    def pending_ids(self) -> Sequence[str]:
        """Ids of every request waiting for a decision (checked against the policy at start)."""
        with self._reads() as session:
            query = select(SecretRequest.id).where(SecretRequest.state == State.PENDING)
            return list(session.execute(query.order_by(SecretRequest.created_at)).scalars())

    def ended(self, request_id: str) -> bool:
        """Whether the audit trail records an end of this request (applied, failed, rejected,
        expired): a row of it that is open again was written back from an earlier copy."""
        query = (
            select(AuditRecord.seq)
            .where(AuditRecord.request_id == request_id, AuditRecord.event.in_(ENDING_EVENTS))
            .limit(1)
        )
        with self._reads() as session:
            return session.execute(query).first() is not None

    def approvals_of(self, request_id: str) -> list[Approval]:
        """A request's approval rows, in the order they were given (seals unchecked here)."""
        with self._reads() as session:
            query = select(Approval).where(Approval.request_id == request_id)
            return list(session.execute(query.order_by(Approval.id)).scalars())

    def count_pending(self) -> int:
        """How many requests wait for a decision (for metrics)."""
        with self._reads() as session:
            query = select(func.count()).where(SecretRequest.state == State.PENDING)
            return int(session.execute(query).scalar_one())

    def provenance(self, target_id: str, tenant: str = DEFAULT_TENANT) -> dict[str, Provenance]:
        """For each secret name on a hook, who last added or rotated it, and when."""
        events = ("secret.added", "secret.updated", "secret.removed")
        query = (
            select(AuditRecord)
            # By the requests' target id: an action's records leave ``hook_id`` null.
            .where(
                AuditRecord.request_id.in_(
                    select(SecretRequest.id).where(
                        SecretRequest.target_id == target_id, SecretRequest.tenant == tenant
                    )
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


def _provenance(record: AuditRecord) -> Provenance:
    """Read a ``secret.added``/``updated`` record: the requester is in its detail, the actor
    approved."""
    requester = json.loads(record.detail).get("requester") or record.actor
    return Provenance(record.event == "secret.added", requester, record.actor, record.timestamp)
