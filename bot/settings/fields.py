"""What the settings are made of: id patterns, value checks, modes and the problem type."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    Field,
)
from pydantic_settings import NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    pass

SLACK_PRINCIPAL = re.compile(r"^[UWS][A-Z0-9]{2,}$")
SLACK_CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,}$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class Mode(Enum):
    """What the settings are needed for: each command needs a different subset."""

    STORE = "store"  # audit verify/export: the database only
    CHECK = "check"  # connectivity checks: Slack and Auth0, no signing secret needed
    RUN = "run"  # serving Slack: everything the chosen transport needs
    POLICY = "policy"  # `policy`: the tenants and rules only (no Slack, no database)


class SettingsError(Exception):
    """Settings are missing or invalid; ``problems`` holds one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _split_ids(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _check_ids(ids: list[str]) -> list[str]:
    for item in ids:
        if not SLACK_PRINCIPAL.match(item):
            raise ValueError(f'"{item}" is not a Slack user or group id (U…, W… or S…)')
    return ids


IdList = Annotated[list[str], NoDecode]
CONFIG = SettingsConfigDict(
    env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
)
# The drivers a DATABASE_URL scheme may name: we ship psycopg 3 and the standard library's sqlite3.
SHIPPED_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
PSYCOPG_ALIASES = ("postgres", "postgresql")  # Heroku and libpq spellings of the same thing


def _blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()


def _sqlite_file(url: str) -> Path | None:
    """The database file a sqlite:/// URL names (None for anything else)."""
    path = url.split("///", 1)[1] if url.startswith("sqlite") and "///" in url else ""
    return Path(path).expanduser().absolute() if path and path != ":memory:" else None


def _database_files(database: Path) -> set[Path]:
    """The files SQLite keeps a database in."""
    return {database, *(Path(f"{database}{suffix}") for suffix in ("-wal", "-shm", "-journal"))}


def _database_url(value: str) -> str:
    scheme, separator, rest = value.strip().partition("://")
    scheme = scheme.lower()
    if scheme in PSYCOPG_ALIASES and separator:
        # The bare scheme would make SQLAlchemy pick psycopg2, which is not installed.
        return "postgresql+psycopg://" + rest
    if scheme.startswith("postgresql+") and scheme not in SHIPPED_SCHEMES:
        raise ValueError(
            f"the {scheme.partition('+')[2]} driver is not installed: write the URL as "
            "postgresql+psycopg://… (psycopg 3 ships with the bot)"
        )
    if scheme not in SHIPPED_SCHEMES or not separator:
        raise ValueError("must be a sqlite:///FILE or postgresql+psycopg://… URL")
    return value.strip()


def _testing_knob(default: float, meaning: str) -> Any:
    """A timing only the test suite sets: positive, finite, documented as testing-only."""
    return Field(
        default=default,
        gt=0,
        allow_inf_nan=False,
        description=f"Testing only, never set in production: {meaning}; default {default:g} s.",
    )


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s):// URL")
    return value
