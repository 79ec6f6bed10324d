"""Settings: the only reader of the environment, validated once at start."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from cryptography.fernet import Fernet
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from bot.approvals.policy_file import Policy

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


class StoreSettings(BaseSettings):
    """What every command needs: the database, encryption at rest and logging."""

    model_config = CONFIG

    database_url: str = "sqlite:///hook-secret-bot.db"
    hook_secret_encryption_key: SecretStr | None = None
    hook_secret_key_file: Path | None = Field(
        default=None,
        description=(
            "Where the generated encryption key is kept when HOOK_SECRET_ENCRYPTION_KEY is "
            "unset (SQLite only). Default: beside the database file, with the suffix .key "
            "(hook-secret-bot.db → hook-secret-bot.key). Keep the key apart from the database "
            "(another volume, not in the same backup): whoever holds both can read pending "
            "values and forge approvals. Created once with mode 0600 if missing."
        ),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, values: Any) -> Any:
        """``NAME=`` (as in .env templates) means unset: the default, or ``required``."""
        if not isinstance(values, dict):
            return values
        return {key: value for key, value in values.items() if not _blank(value)}

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    _db = field_validator("database_url")(_database_url)

    @field_validator("hook_secret_encryption_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        keys = [k.strip() for k in value.get_secret_value().split(",") if k.strip()]
        if not keys:
            raise ValueError("is empty; run `hook-secret-bot keygen` for a key")
        for position, key in enumerate(keys, start=1):
            try:
                Fernet(key.encode())
            except ValueError:
                raise ValueError(
                    f"key #{position} is not a Fernet key; run `hook-secret-bot keygen`"
                ) from None
        return value

    @field_validator("hook_secret_key_file")
    @classmethod
    def _key_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        if str(info.data.get("database_url", "")).startswith("postgresql"):
            raise ValueError("is for SQLite only: PostgreSQL needs HOOK_SECRET_ENCRYPTION_KEY")
        if info.data.get("hook_secret_encryption_key") is not None:
            raise ValueError("is not used when HOOK_SECRET_ENCRYPTION_KEY is set: unset one")
        value = value.expanduser()
        if value.is_dir():
            raise ValueError(f"{value} is a directory: name the key file itself")
        database = _sqlite_file(str(info.data.get("database_url", "")))
        if database is not None and value.absolute() in _database_files(database):
            raise ValueError("must not be the database file: keep the key apart from it")
        return value

    @property
    def is_postgres(self) -> bool:
        """Whether the store is PostgreSQL (several replicas may share it)."""
        return self.database_url.startswith("postgresql")

    @property
    def encryption_keys(self) -> list[str]:
        """Fernet keys, newest first; empty when a key file is to be used."""
        if self.hook_secret_encryption_key is None:
            return []
        raw = self.hook_secret_encryption_key.get_secret_value()
        return [k.strip() for k in raw.split(",") if k.strip()]


class _TtlSettings(StoreSettings):
    """How long a pending request lives: the default TTL with or without a policy file."""

    hook_secret_request_ttl: int = Field(default=86400, ge=60, le=30 * 86400)


class TenantSettings(_TtlSettings):
    """One tenant and one rule from variables (no policy file): the ``default`` tenant and rule."""

    auth0_domain: str
    auth0_client_id: str = Field(min_length=1)
    auth0_client_secret: SecretStr
    auth0_base_url: str | None = None
    hook_secret_requesters: IdList
    hook_secret_approvers: IdList = Field(default_factory=list)
    hook_secret_approval_channel: str | None = None
    hook_secret_required_approvals: Literal[0, 1] = 1

    _split = field_validator("hook_secret_requesters", "hook_secret_approvers", mode="before")(
        _split_ids
    )

    @field_validator("hook_secret_required_approvals", mode="before")
    @classmethod
    def _approvals(cls, value: Any) -> Any:
        # Settings arrive as strings, and pydantic does not coerce "0" into Literal[0, 1].
        text = str(value).strip()
        if text not in ("0", "1"):
            raise ValueError(
                "must be 1 (one approver other than the requester) or 0 (the requester's "
                "own confirmation applies the change)"
            )
        return int(text)

    @field_validator("hook_secret_requesters")
    @classmethod
    def _requesters(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("required: at least one Slack user or group id")
        return _check_ids(value)

    @field_validator("hook_secret_approvers")
    @classmethod
    def _approvers(cls, value: list[str]) -> list[str]:
        return _check_ids(value)

    @field_validator("hook_secret_approval_channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not SLACK_CHANNEL.match(value):
            raise ValueError(f'"{value}" is not a Slack channel id (C… or G…)')
        return value

    @field_validator("auth0_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().lower().removeprefix("https://").rstrip("/")
        if not DOMAIN.match(value):
            raise ValueError(f'"{value}" is not a tenant domain like acme.eu.auth0.com')
        return value

    _auth0_url = field_validator("auth0_base_url")(_http_url)


class SlackSettings(_TtlSettings):
    """What serving Slack needs, with or without a policy file."""

    slack_bot_token: SecretStr
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    port: int = Field(default=3000, ge=1, le=65535)
    # Testing knobs: the suite shortens the bot's internal timings so that a test that SIGKILLs
    # the real process waits seconds, not minutes. Operators leave them unset (CONTRACT §2 does
    # not list them); the defaults are the product's timings.
    hook_secret_testing_apply_lease_seconds: float = _testing_knob(
        20.0, "a running apply not renewed for this long died with its process"
    )
    hook_secret_testing_heartbeat_seconds: float = _testing_knob(
        5.0, "how often a running apply renews its lease (shorter than the lease)"
    )
    hook_secret_testing_sweep_seconds: float = _testing_knob(
        10.0, "how often the sweep expires requests and takes over crashed applies"
    )
    hook_secret_testing_backoff_base_seconds: float = _testing_knob(
        1.0, "the outbox's first retry delay, doubled on each further attempt"
    )
    hook_secret_testing_outbox_lease_seconds: float = _testing_knob(
        30.0, "how long an outbox row a dead process held waits before another takes it"
    )

    _slack_url = field_validator("slack_api_url")(_http_url)

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @field_validator("hook_secret_testing_heartbeat_seconds")
    @classmethod
    def _heartbeat_inside_lease(cls, value: float, info: ValidationInfo) -> float:
        lease = info.data.get("hook_secret_testing_apply_lease_seconds")
        if lease is not None and value >= lease:
            raise ValueError(
                "must be shorter than HOOK_SECRET_TESTING_APPLY_LEASE_SECONDS (or a running "
                "apply is taken over)"
            )
        return value

    @property
    def socket_mode(self) -> bool:
        """Socket Mode when an app-level token is set, HTTP mode otherwise."""
        return self.slack_app_token is not None


class Settings(SlackSettings, TenantSettings):
    """Everything the bot reads from its environment (CONTRACT §2), without a policy file."""


class PolicyFileSettings(_TtlSettings):
    """Tenants and rules from ``HOOK_SECRET_POLICY_FILE`` (CONTRACT §6); ``policy`` holds them."""

    hook_secret_policy_file: str
    _policy: Policy | None = PrivateAttr(default=None)

    @property
    def policy(self) -> Policy:
        """The file's tenants and rules, read and checked by ``load_settings``."""
        if self._policy is None:  # pragma: no cover - load_settings always sets it
            raise RuntimeError("the policy file was not loaded")
        return self._policy


class PolicySettings(SlackSettings, PolicyFileSettings):
    """Everything the bot reads with a policy file: Slack here, tenants and rules in the file."""


class _RuleInputs(BaseSettings):
    """The variables of the cross-variable rules as given, so that the rules are checked in the
    same round as every other problem (the typed model stops at the first bad field)."""

    model_config = CONFIG

    slack_app_token: Any = None
    slack_signing_secret: Any = None
    hook_secret_required_approvals: Any = None
    hook_secret_approvers: Any = None
    hook_secret_approval_channel: Any = None
    database_url: Any = None
    hook_secret_encryption_key: Any = None
    hook_secret_policy_file: Any = None


def _given(value: Any) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value is not None and not _blank(value) and _split_ids(value) != []


def _cross_field_problems(mode: Mode, raw: _RuleInputs) -> list[str]:
    """Rules that involve several variables, one line per problem."""
    problems = []
    http_mode = mode is Mode.RUN and not _given(raw.slack_app_token)
    if http_mode and not _given(raw.slack_signing_secret):
        problems.append("SLACK_SIGNING_SECRET: required in HTTP mode (no SLACK_APP_TOKEN)")
    # Approvals are on unless explicitly 0: a malformed value is reported on its own line.
    approvals_on = not _given(raw.hook_secret_required_approvals) or (
        str(raw.hook_secret_required_approvals).strip() != "0"
    )
    if approvals_on and not _given(raw.hook_secret_policy_file):
        if not _given(raw.hook_secret_approvers):
            problems.append("HOOK_SECRET_APPROVERS: required when approvals are on")
        if not _given(raw.hook_secret_approval_channel):
            problems.append("HOOK_SECRET_APPROVAL_CHANNEL: required when approvals are on")
    url = str(raw.database_url or "").strip().lower()
    needs_store = mode is not Mode.POLICY
    if needs_store and url.startswith("postgres") and not _given(raw.hook_secret_encryption_key):
        problems.append(
            "HOOK_SECRET_ENCRYPTION_KEY: required with PostgreSQL (replicas must share it)"
        )
    return problems


def _problem_lines(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        name = str(item["loc"][0]).upper() if item["loc"] else "SETTINGS"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "required"
        lines.append(f"{name}: {message}")
    return lines


def _settings_class(mode: Mode, policy_file: bool) -> type[StoreSettings]:
    if mode is Mode.STORE:
        return StoreSettings
    if policy_file:
        return PolicyFileSettings if mode is Mode.POLICY else PolicySettings
    return TenantSettings if mode is Mode.POLICY else Settings


def load_settings(mode: Mode = Mode.RUN, **overrides: Any) -> StoreSettings:
    """Read and validate the settings ``mode`` needs, or raise SettingsError.

    With ``HOOK_SECRET_POLICY_FILE`` (not for STORE), the result holds the file's ``policy``
    and the file's problems are lines of the same round."""
    raw = _RuleInputs(**overrides)
    with_file = mode is not Mode.STORE and _given(raw.hook_secret_policy_file)
    cls = _settings_class(mode, with_file)
    problems: list[str] = []
    try:
        settings = cls(**overrides)
    except ValidationError as error:
        problems = _problem_lines(error)
    if cls is not StoreSettings:
        # Every problem in one round: a rule about a variable already named adds nothing.
        named = {line.split(":", 1)[0] for line in problems}
        rules = _cross_field_problems(mode, raw)
        problems += [line for line in rules if line.split(":", 1)[0] not in named]
    policy = None
    if with_file:
        from bot import policy_settings

        problems += policy_settings.excluded_problems(overrides)
        policy, file_problems = policy_settings.read_file(
            str(raw.hook_secret_policy_file), overrides
        )
        problems += file_problems
    if problems:
        raise SettingsError(problems)
    if isinstance(settings, PolicyFileSettings):
        settings._policy = policy
    return settings


def load_app_settings(mode: Mode = Mode.RUN, **overrides: Any) -> Settings:
    """Like load_settings, for commands that need the whole bot's settings without a file."""
    settings = load_settings(mode, **overrides)
    if not isinstance(settings, Settings):  # pragma: no cover - guarded by mode
        raise TypeError("only RUN and CHECK without a policy file give the app settings")
    return settings
