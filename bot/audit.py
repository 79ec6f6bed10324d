"""The audit trail: events hash-chained in the database and echoed as JSON lines on stdout."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bot.logs import SECRETS
from bot.models import AuditRecord

GENESIS = "0" * 64
CORE_FIELDS = ("request_id", "actor", "team_id", "hook_id", "secret_name", "outcome")
# Any 64-bit number works: it only has to be the same in every replica.
PG_LOCK_KEY = 0x486F6F6B53656372


@dataclass(frozen=True)
class AuditEvent:
    """One audit event (CONTRACT §5); ``detail`` holds event-specific fields, never a value."""

    event: str
    actor: str | None = None
    team_id: str | None = None
    request_id: str | None = None
    hook_id: str | None = None
    secret_name: str | None = None
    outcome: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def canonical(record: dict[str, Any]) -> bytes:
    """The byte form that is hashed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(prev_hash: str, body: dict[str, Any]) -> str:
    """Hash of a record's content together with the previous record's hash."""
    return hashlib.sha256(prev_hash.encode() + canonical(body)).hexdigest()


def to_public(row: AuditRecord) -> dict[str, Any]:
    """The record as exported and printed: contract fields first, then detail, then the chain."""
    public: dict[str, Any] = {"audit": True, "id": row.seq, "event": row.event}
    public["timestamp"] = row.timestamp
    for name in CORE_FIELDS:
        public[name] = getattr(row, name)
    public.update(json.loads(row.detail))
    public["prev_hash"] = row.prev_hash
    public["hash"] = row.hash
    return public


def _hashed_body(row: AuditRecord) -> dict[str, Any]:
    body: dict[str, Any] = {"seq": row.seq, "event": row.event, "timestamp": row.timestamp}
    for name in CORE_FIELDS:
        body[name] = getattr(row, name)
    body["detail"] = json.loads(row.detail)
    return body


# Format and control characters, line and paragraph separators (bidi overrides, zero widths).
_HIDDEN = frozenset(("Cc", "Cf", "Zl", "Zp"))


class AuditSink:
    """Writes committed audit records to stdout, one JSON object per line."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def emit(self, record: dict[str, Any]) -> None:
        """Print one record; values were never in it, tokens are scrubbed anyway."""
        line = _visible(json.dumps(_scrubbed(record), ensure_ascii=False, separators=(",", ":")))
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(line + "\n")
            stream.flush()


def _visible(line: str) -> str:
    """The line with invisible and direction-changing characters as JSON escapes: it reads as
    typed once parsed, but a terminal can't be made to show it reordered or hidden."""
    return "".join(
        json.dumps(ch)[1:-1] if unicodedata.category(ch) in _HIDDEN else ch for ch in line
    )


def _scrubbed(item: Any) -> Any:
    """Registered values and token shapes replaced string by string, so the line stays JSON
    (a record may name the ``secret_value`` field, e.g. in a refusal's ``fields``)."""
    if isinstance(item, str):
        return SECRETS.scrub(item, drop_payloads=False)
    if isinstance(item, dict):
        return {key: _scrubbed(value) for key, value in item.items()}
    if isinstance(item, list):
        return [_scrubbed(value) for value in item]
    return item


def _storable(name: str, value: str | None) -> str | None:
    """A field as its column holds it: a refusal may quote hostile input, but PostgreSQL
    rejects NUL (shown as U+FFFD) and over-long strings (cut, marked with "…")."""
    if value is None:
        return None
    value = value.replace("\x00", "\ufffd")
    limit = getattr(AuditRecord.__table__.c[name].type, "length", None)
    return value if limit is None or len(value) <= limit else value[: limit - 1] + "…"


def append(session: Session, event: AuditEvent, now: datetime | None = None) -> dict[str, Any]:
    """Add ``event`` to the chain inside the caller's transaction and return its public form."""
    if session.get_bind().dialect.name == "postgresql":
        # Serialise appends across replicas so that the chain never forks.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
    last = session.execute(
        select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    row = AuditRecord(
        seq=seq,
        timestamp=moment.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        event=event.event,
        detail=json.dumps(event.detail, sort_keys=True, ensure_ascii=False),
        prev_hash=prev,
        hash="",
        **{name: _storable(name, getattr(event, name)) for name in CORE_FIELDS},
    )
    row.hash = record_hash(prev, _hashed_body(row))
    session.add(row)
    session.flush()
    return to_public(row)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of walking the chain: ``broken_at`` is the first bad record's id, if any."""

    checked: int
    broken_at: int | None = None
    problem: str | None = None


def verify(session: Session) -> VerifyResult:
    """Walk the chain from the first record; report the first altered, missing or forged one."""
    expected_prev, expected_seq, checked = GENESIS, 1, 0
    for row in _rows(session):
        if row.seq != expected_seq:
            return VerifyResult(checked, expected_seq, f"record {expected_seq} is missing")
        if row.prev_hash != expected_prev:
            return VerifyResult(checked, row.seq, "link to the previous record is broken")
        if record_hash(row.prev_hash, _hashed_body(row)) != row.hash:
            return VerifyResult(checked, row.seq, "content does not match its hash")
        expected_prev, expected_seq, checked = row.hash, row.seq + 1, checked + 1
    return VerifyResult(checked)


def export(session: Session, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Every record (from ``since`` on) in chain order, in its public form."""
    for row in _rows(session):
        if since is None or datetime.fromisoformat(row.timestamp) >= since:
            yield to_public(row)


def _rows(session: Session) -> Iterator[AuditRecord]:
    result = session.execute(
        select(AuditRecord).order_by(AuditRecord.seq).execution_options(yield_per=500)
    )
    yield from result.scalars()
