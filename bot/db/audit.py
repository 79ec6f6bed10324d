"""The audit trail: events hash-chained in the database and echoed as JSON lines on stdout."""

from __future__ import annotations

import json
import sys
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from bot.db.audit_chain import (
    GENESIS,
    ChainKeys,
    Check,
    canonical,
    check,
    key_id,
    record_hash,
)
from bot.db.models import AuditRecord
from bot.logs import SECRETS
from bot.slack.text import cut

# The chain's hashing lives in bot.db.audit_chain; its names stay importable from here.
__all__ = [
    "CORE_FIELDS",
    "GENESIS",
    "AuditEvent",
    "AuditSink",
    "VerifyResult",
    "append",
    "as_printed",
    "canonical",
    "export",
    "record_hash",
    "to_public",
    "verify",
]
CORE_FIELDS = ("request_id", "actor", "team_id", "hook_id", "secret_name", "outcome")
# Any 64-bit number works: it only has to be the same in every replica.
PG_LOCK_KEY = 0x486F6F6B53656372
COLUMNS = ("seq", "timestamp", "event", *CORE_FIELDS, "detail", "prev_hash", "hash")
# Built once: SQLAlchemy caches each statement's compiled form by its structure.
PG_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
LAST = select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)
INSERT = insert(AuditRecord)
LIMITS: dict[str, int] = {
    name: length
    for name in CORE_FIELDS
    if (length := getattr(AuditRecord.__table__.c[name].type, "length", None)) is not None
}


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


def to_public(row: AuditRecord) -> dict[str, Any]:
    """The record as exported and printed: contract fields first, then detail, then the chain."""
    return _public(_columns(row))


def _columns(row: AuditRecord) -> dict[str, Any]:
    return {name: getattr(row, name) for name in COLUMNS}


def _public(values: dict[str, Any]) -> dict[str, Any]:
    public: dict[str, Any] = {"audit": True, "id": values["seq"], "event": values["event"]}
    public["timestamp"] = values["timestamp"]
    for name in CORE_FIELDS:
        public[name] = values[name]
    public.update(json.loads(values["detail"]))
    public["prev_hash"] = values["prev_hash"]
    public["hash"] = values["hash"]
    return public


def _hashed_body(values: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "seq": values["seq"],
        "event": values["event"],
        "timestamp": values["timestamp"],
    }
    for name in CORE_FIELDS:
        body[name] = values[name]
    body["detail"] = json.loads(values["detail"])
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
        line = _visible(json.dumps(_clean(record), ensure_ascii=False, separators=(",", ":")))
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(line + "\n")
            stream.flush()


def as_printed(record: dict[str, Any]) -> dict[str, Any]:
    """A record as its printed line reads once parsed (tokens scrubbed as on stdout)."""
    return _clean(record)


def _visible(line: str) -> str:
    """The line with invisible and direction-changing characters as JSON escapes: it reads as
    typed once parsed, but a terminal can't be made to show it reordered or hidden."""
    if line.isascii() and line.isprintable():  # the usual line: no such character in it
        return line
    return "".join(
        json.dumps(ch)[1:-1] if unicodedata.category(ch) in _HIDDEN else ch for ch in line
    )


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` scrubbed; when its strings, scrubbed together, hold nothing to scrub (the
    usual record), as it is: one pass over them instead of one per string."""
    together = "\n".join(_strings(record))
    if SECRETS.scrub(together, drop_payloads=False) == together:
        return record
    scrubbed: dict[str, Any] = _scrubbed(record)
    return scrubbed


def _strings(item: Any) -> Iterator[str]:
    if isinstance(item, str):
        yield item
    elif isinstance(item, dict):
        for value in item.values():
            yield from _strings(value)
    elif isinstance(item, list):
        for value in item:
            yield from _strings(value)


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
    limit = LIMITS.get(name)
    return value if limit is None else cut(value, limit)


def append(
    session: Session,
    event: AuditEvent,
    now: datetime | None = None,
    keys: ChainKeys | None = None,
) -> dict[str, Any]:
    """Add ``event`` to the chain inside the caller's transaction and return its public form;
    with ``keys`` its hash is an HMAC under the newest key (else the plain, unkeyed hash)."""
    # Core statements on the transaction's connection: the ORM's unit of work costs several
    # times more CPU per row, inside the one writer's turn (see bot.latency.group_commit).
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Serialise appends across replicas so that the chain never forks.
        connection.execute(PG_LOCK, {"key": PG_LOCK_KEY})
    last = connection.execute(LAST).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    values: dict[str, Any] = {
        "seq": seq,
        "timestamp": moment.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "event": event.event,
        "detail": json.dumps(event.detail, sort_keys=True, ensure_ascii=False),
        "prev_hash": prev,
        **{name: _storable(name, getattr(event, name)) for name in CORE_FIELDS},
    }
    body = _hashed_body(values)
    values["hash"] = keys.seal(prev, body) if keys else record_hash(prev, body)
    connection.execute(INSERT, values)
    return _public(values)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of walking the chain: ``broken_at`` is the first bad record's id, if any.

    ``keyed`` records had their HMAC checked, ``unkeyed`` ones (written before the chain was
    keyed) their plain hash; ``unchecked`` keyed records could not be, for want of a key.
    """

    checked: int
    broken_at: int | None = None
    problem: str | None = None
    keyed: int = field(default=0, compare=False)
    unkeyed: int = field(default=0, compare=False)
    unchecked: int = field(default=0, compare=False)


class _Walk:
    """The chain walked record by record: where it should be, and what it has seen."""

    def __init__(self, keys: ChainKeys | None) -> None:
        self.keys = keys
        self.prev, self.seq = GENESIS, 1
        self.counts = dict.fromkeys(Check, 0)

    def step(self, row: AuditRecord) -> str | None:
        """The problem with ``row``, if any; else move past it."""
        if row.seq != self.seq:
            return f"record {self.seq} is missing"
        if row.prev_hash != self.prev:
            return "link to the previous record is broken"
        found = check(row.hash, row.prev_hash, _hashed_body(_columns(row)), self.keys)
        if found is Check.BAD:
            return "content does not match its hash"
        if found is Check.UNKNOWN_KEY:
            return (
                f"it is keyed under key id {key_id(row.hash)}, which none of the given keys has "
                "(HOOK_SECRET_ENCRYPTION_KEY, or SQLite's key file; a retired key must stay "
                "listed, last, for its records to verify)"
            )
        if found is Check.PLAIN and self.counts[Check.KEYED] + self.counts[Check.NO_KEY]:
            return "its hash is unkeyed after keyed records: rewritten without the key"
        self.counts[found] += 1
        self.prev, self.seq = row.hash, row.seq + 1
        return None

    def result(self, broken: int | None = None, problem: str | None = None) -> VerifyResult:
        """What the walk found so far."""
        counts = self.counts
        checked = counts[Check.PLAIN] + counts[Check.KEYED] + counts[Check.NO_KEY]
        return VerifyResult(
            checked, broken, problem, counts[Check.KEYED], counts[Check.PLAIN], counts[Check.NO_KEY]
        )


UNKEYED_TAIL = (
    "no record is keyed although a key is given: the whole trail was rehashed without the "
    "key (or the bot has written nothing since the chain was keyed)"
)


def verify(session: Session, keys: ChainKeys | None = None) -> VerifyResult:
    """Walk the chain from the first record; report the first altered, missing or forged one.
    Without ``keys`` the keyed records' links are checked, but not their HMACs."""
    walk = _Walk(keys)
    for row in _rows(session):
        problem = walk.step(row)
        if problem is not None:
            broken = walk.seq if problem.endswith("is missing") else row.seq
            return walk.result(broken, problem)
    if keys is not None and walk.counts[Check.PLAIN] and not walk.counts[Check.KEYED]:
        # The bot seals every record it writes with the key: a trail with no keyed record at
        # all, checked with the key, was rehashed whole with the public scheme.
        return walk.result(walk.seq - 1, UNKEYED_TAIL)
    return walk.result()


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
