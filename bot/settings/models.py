"""The settings each command needs, as pydantic-settings models read from the environment and
`.env`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography.fernet import Fernet
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings

if TYPE_CHECKING:
    from bot.approvals.policy_file import Policy

from bot.settings.fields import (
    CONFIG,
    DOMAIN,
    SLACK_CHANNEL,
    IdList,
    _blank,
    _check_ids,
    _database_files,
    _database_url,
    _http_url,
    _split_ids,
    _sqlite_file,
    _testing_knob,
)


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
