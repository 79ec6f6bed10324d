"""The database's clock in SQL, which apply leases and request expiry are measured on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from bot.db.models import UTCDateTime

# What tests pin the database's clock to (their controllable clock); None in production.
Pinned = Callable[[], datetime] | None


class db_now(FunctionElement[datetime]):
    """The database server's current time plus an offset in seconds (its one argument)."""

    type = UTCDateTime()
    inherit_cache = True
    name = "db_now"


@compiles(db_now, "postgresql")
def _postgresql(element: db_now, compiler: Any, **kw: Any) -> str:
    # now(): the transaction's start on the server's clock, the same for every replica.
    offset = compiler.process(element.clauses, **kw)
    return f"(now() + make_interval(secs => {offset}))"


@compiles(db_now, "sqlite")
def _sqlite(element: db_now, compiler: Any, **kw: Any) -> str:
    # The host's clock (every process using the file shares it), in the text form SQLAlchemy
    # stores (microseconds: SQLite gives milliseconds), so that comparisons are exact.
    offset = compiler.process(element.clauses, **kw)
    return f"(strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.6f seconds', {offset})) || '000')"


def database_time(pinned: Pinned, offset: timedelta = timedelta(0)) -> ColumnElement[datetime]:
    """The database's time plus ``offset``, as a SQL expression; ``pinned`` (tests only)
    replaces the database's clock with theirs."""
    if pinned is not None:
        return literal(pinned() + offset, UTCDateTime())
    return db_now(literal(offset.total_seconds(), Float()))
