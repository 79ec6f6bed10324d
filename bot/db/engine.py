"""Engines: SQLite files checked to be the ones opened, PostgreSQL that fails fast."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, make_url

# Seconds to reach PostgreSQL: past it the database counts as down (Slack waits 3 s for us).
CONNECT_TIMEOUT = 2


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


def make_engine(url: str, *, writer: bool) -> Engine:
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
