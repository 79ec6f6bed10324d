"""Shared fixtures: databases (SQLite always, PostgreSQL when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.logs import SECRETS

PG_URL = os.environ.get("TEST_DATABASE_URL")
# Every PostgreSQL case skips with a reason that starts so; the summary shows them as one line.
NO_PG = "TEST_DATABASE_URL is not set"
NO_PG_SUMMARY = f"{NO_PG}: the PostgreSQL cases are skipped (CI sets it)"
# The folded summary line points at NO_PG's definition.
_NO_PG_LINE = Path(__file__).read_text().splitlines().index(f'NO_PG = "{NO_PG}"') + 1


def _schema_sql(url: str, statement: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(statement))
    engine.dispose()


def private_schema_url(url: str, schema: str) -> str:
    """The same database, with every connection's search_path set to ``schema``."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each supported kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.db'}"
        return
    if not PG_URL:
        pytest.skip(f"{NO_PG}: PostgreSQL store tests skipped (CI sets it)")
    with pg_schema(PG_URL) as url:
        yield url


@contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A PostgreSQL schema of its own, dropped afterwards: concurrent runs on one database never
    meet."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _schema_sql(url, f"CREATE SCHEMA {schema}")
    try:
        yield private_schema_url(url, schema)
    finally:
        _schema_sql(url, f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture(autouse=True)
def _forget_registered_secrets() -> Iterator[None]:
    yield
    SECRETS.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """One place and reason for every PostgreSQL skip, so ``-ra`` folds them into one line."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple):
        _, _, reason = report.longrepr
        if reason.removeprefix("Skipped: ").startswith(NO_PG):
            report.longrepr = (__file__, _NO_PG_LINE, NO_PG_SUMMARY)
    return report
