"""The database: engines, schema migration, health probes and write transactions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.db.audit import AuditEvent, AuditSink
from bot.db.audit_chain import ChainKeys
from bot.db.clock import Pinned, database_time
from bot.db.engine import create_sqlite_file, make_engine, sqlite_path
from bot.db.scrub import WalScrubber
from bot.db.tx import Tx
from bot.latency.group_commit import GroupCommit

MIGRATIONS = Path(__file__).parent / "migrations"
# Any 64-bit number works: it only has to be the same in every replica.
MIGRATE_LOCK = 0x486F6F6B4D696772


class Database:
    """The database: schema migration, health, and write transactions with their audit records."""

    def __init__(
        self, url: str, sink: AuditSink | None = None, chain: ChainKeys | None = None
    ) -> None:
        self.url = url
        self.engine = make_engine(url, writer=True)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: reads need no write lock (WAL lets them run beside the writer).
        sqlite = url.startswith("sqlite")
        self._read_engine = make_engine(url, writer=False) if sqlite else self.engine
        self._reads = sessionmaker(self._read_engine, expire_on_commit=False)
        # Writers queue in this process (not in SQLite's sleeping busy handler, nor on the
        # audit chain's lock in PostgreSQL) and share commits: see GroupCommit.
        self._writes = GroupCommit(self._sessions)
        self.sink = sink or AuditSink()
        # The audit chain's keys: without them records get the plain, unkeyed hash.
        self.chain = chain
        # Leases and expiry run on the database's clock; tests pin it to theirs.
        self.pinned: Pinned = None
        # SQLite: truncates the WAL soon after an erase (PostgreSQL: see migration 0007).
        path = sqlite_path(url)
        self.scrubber = WalScrubber(path) if path is not None else None
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
        if self.scrubber is not None:
            self.scrubber.close()
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
            if tx.erased and self.scrubber is not None:
                self.scrubber.erased()

        with self._writes.member(printed) as session:
            tx = Tx(session, self.pinned, self.chain)
            yield tx

    def now(self) -> datetime:
        """The database's current time (what leases and expiry are measured on)."""
        with self._read_engine.connect() as connection:
            return connection.execute(select(database_time(self.pinned))).scalar_one()

    def audit(self, event: AuditEvent) -> dict[str, Any]:
        """Record an event that changes no request (a refusal, a denial)."""
        with self.transaction() as tx:
            return tx.audit(event)

    def session(self) -> Session:
        """A plain session for read-only work (audit verify and export)."""
        return self._reads()
