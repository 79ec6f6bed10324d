"""The queries that gather approved changes to one target into one batch (in the caller's Tx)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from bot.approvals.states import State
from bot.db.models import SecretRequest
from bot.db.tx import Tx


def waiting(tx: Tx, besides: SecretRequest, limit: int) -> list[str]:
    """Approved changes to the target of ``besides`` (same tenant, kind and id) that nobody
    has started (no phase, no unknown outcome), oldest decision first, other than it."""
    query = (
        select(SecretRequest.id)
        .where(
            SecretRequest.state == State.APPROVED,
            SecretRequest.tenant == besides.tenant,
            SecretRequest.target_kind == besides.target_kind,
            SecretRequest.target_id == besides.target_id,
            SecretRequest.apply_phase.is_(None),
            SecretRequest.unknown_since.is_(None),
            SecretRequest.id != besides.id,
        )
        .order_by(SecretRequest.decided_at, SecretRequest.id)
        .limit(limit)
    )
    return list(tx.session.execute(query).scalars())


def current(tx: Tx, request_id: str) -> SecretRequest:
    """The request's row as the database has it now (a claim's copy may be older)."""
    row = tx.session.get(SecretRequest, request_id, populate_existing=True)
    if row is None:
        raise RuntimeError(f"request {request_id} is gone")
    return row


def take(
    tx: Tx, request_id: str, claim: datetime, phase: str | None, target: tuple[str, str, str]
) -> SecretRequest | None:
    """Move an approved request's claim to ``claim`` if its recorded phase is ``phase`` and it
    changes ``target`` (tenant, kind, id: a batch's list of members is not sealed), whoever claimed
    it before (the caller holds the target's lock, so no other apply of it can be sending
    anything); the row, or None."""
    recorded = (
        SecretRequest.apply_phase.is_(None) if phase is None else SecretRequest.apply_phase == phase
    )
    result = tx.session.execute(
        update(SecretRequest)
        .where(
            SecretRequest.id == request_id,
            SecretRequest.state == State.APPROVED,
            recorded,
            SecretRequest.tenant == target[0],
            SecretRequest.target_kind == target[1],
            SecretRequest.target_id == target[2],
        )
        .values(apply_started_at=claim)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        return None
    return tx.session.get(SecretRequest, request_id, populate_existing=True)


def move_claims(tx: Tx, request_ids: list[str], claimed_at: datetime, moved: datetime) -> None:
    """Move the claims of a batch's other members, still at ``claimed_at``, to ``moved``: the
    time the leader's renewal took from the database's clock, so the batch keeps one claim."""
    if not request_ids:
        return
    tx.session.execute(
        update(SecretRequest)
        .where(
            SecretRequest.id.in_(request_ids),
            SecretRequest.state == State.APPROVED,
            SecretRequest.apply_started_at == claimed_at,
        )
        .values(apply_started_at=moved)
        .execution_options(synchronize_session=False)
    )
