"""Per-target locks: one change to a target at a time, across threads and replicas."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text


def _lock_id(key: str) -> int:
    """A stable signed 64-bit id for PostgreSQL's advisory locks."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


class TargetLocks:
    """A process lock per key, and on PostgreSQL a session advisory lock held beside it (on
    SQLite there is one process, so its lock is enough)."""

    def __init__(self, engine: Engine | None = None) -> None:
        self._engine = (
            engine if engine is not None and engine.dialect.name == "postgresql" else None
        )
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold ``key`` for the duration of the block; waits while anyone else holds it."""
        with self._guard:
            local = self._locks.setdefault(key, threading.Lock())
        with local:
            if self._engine is None:
                yield
                return
            # A dedicated connection: the lock lives as long as its session, so a replica that
            # dies releases it with its connection.
            with self._engine.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _lock_id(key)})
                connection.commit()
                try:
                    yield
                finally:
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:id)"), {"id": _lock_id(key)}
                    )
                    connection.commit()
