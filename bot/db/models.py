"""Database tables: secret change requests and the append-only audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite returns naive ones otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        """Store in UTC."""
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read back as aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the bot's tables."""


OPEN_CONDITION = text("state IN ('pending', 'approved')")


class SecretRequest(Base):
    """One requested change; the value is ciphertext while pending and NULL once decided."""

    __tablename__ = "secret_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    # Which implementation of ``bot.targets.Target`` applies it ("hook" for every older row).
    target_kind: Mapped[str] = mapped_column(String(16), default="hook", server_default="hook")
    # Which tenant the target lives in (``default`` without a policy file).
    tenant: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    state: Mapped[str] = mapped_column(String(16), index=True)
    team_id: Mapped[str] = mapped_column(String(32))
    requester: Mapped[str] = mapped_column(String(32))
    origin_channel: Mapped[str] = mapped_column(String(32))
    # A hook's or an action's id; the column keeps its first name (CONTRACT §5 calls it hook_id).
    target_id: Mapped[str] = mapped_column("hook_id", String(64))
    target_name: Mapped[str] = mapped_column("hook_name", String(255))
    secret_name: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    value_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    fingerprint: Mapped[str | None] = mapped_column(String(32), nullable=True)
    required_approvals: Mapped[int] = mapped_column(Integer)
    decided_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    decision_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    approval_channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    approval_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    apply_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The last phase of a multi-step apply (actions) and what it noted (JSON, never a value),
    # so that a resumed apply goes on from there.
    apply_phase: Mapped[str | None] = mapped_column(String(32), nullable=True)
    apply_progress: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The version the change was deployed in (actions), for the confirmation.
    target_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Set when Auth0 left an apply's outcome unknown: the sweep reads back until it is settled.
    unknown_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A MAC over the facts an apply acts on, under a key the database does not hold
    # (bot.approvals.seals, migration 0008_seals); null on rows written before it.
    seal: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # The rule that decided the request and a digest of it (migration 0009; null on older
    # rows: the variables' one rule, ``default``). A restart under another rule expires it.
    rule_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rule_digest: Mapped[str | None] = mapped_column(String(32), nullable=True)

    __table_args__ = (
        Index("ix_secret_requests_hook_name", "hook_id", "secret_name", "state"),
        # At most one open request per secret of a tenant (migrations 0006, 0009): two
        # submissions at once, on any replica, keep one.
        Index(
            "uq_secret_requests_open",
            "tenant",
            "hook_id",
            "secret_name",
            unique=True,
            sqlite_where=OPEN_CONDITION,
            postgresql_where=OPEN_CONDITION,
        ),
    )


class Approval(Base):
    """One person's approval of a request, sealed (``bot.approvals.seals``): a row written
    straight into the database does not count. One per person and request."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(32), index=True)
    approver: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The quorum term the latest matching seats this person in (None: none), so that messages
    # show progress without asking Slack; counting always matches afresh.
    term: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seal: Mapped[str] = mapped_column(String(80))

    __table_args__ = (UniqueConstraint("request_id", "approver", name="uq_approvals_once"),)


class OutboxState(StrEnum):
    """Lifecycle of an outbox row: queued until Slack took it, or it could not be delivered."""

    QUEUED = "queued"
    SENT = "sent"
    DEAD = "dead"  # a permanent error: logged, counted and shown to someone


class OutboxMessage(Base):
    """One Slack message a state change promised, written in that change's transaction."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(32), index=True)
    # What to do: post_stored_approval (post_approval when queued rendered), update_approval,
    # tell, dm or confirm (bot.outbox.messages.Method).
    method: Mapped[str] = mapped_column(String(32))
    # Channel, user, text and blocks as JSON; user text only, never a secret value.
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=OutboxState.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A worker holds the row until then; past it, another replica may take it over.
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Set while an attempt may have posted the message (a worker died mid-call, an answer was
    # lost): the start of the earliest such attempt, where a read-back looks from.
    unsure_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_outbox_due", "state", "due_at"),)


class AuditRecord(Base):
    """One audit event, linked to the previous record by its hash."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    timestamp: Mapped[str] = mapped_column(String(40), index=True)
    event: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    actor: Mapped[str | None] = mapped_column(String(32), nullable=True)
    team_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    hook_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    secret_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
