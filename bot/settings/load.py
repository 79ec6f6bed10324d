"""Reading the settings: every problem in one round, one line per variable."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import (
    SecretStr,
    ValidationError,
)
from pydantic_settings import BaseSettings

if TYPE_CHECKING:
    pass

from bot.settings.fields import (
    CONFIG,
    Mode,
    SettingsError,
    _blank,
    _split_ids,
)
from bot.settings.models import (
    PolicyFileSettings,
    PolicySettings,
    Settings,
    StoreSettings,
    TenantSettings,
)


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
        from bot.settings import policy_file as policy_settings

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


def load_serving_settings(**overrides: Any) -> Settings | PolicySettings:
    """What ``run`` serves: the variables' tenant and rule, or a policy file's."""
    settings = load_settings(Mode.RUN, **overrides)
    if not isinstance(settings, Settings | PolicySettings):  # pragma: no cover - by mode
        raise TypeError("RUN mode gives the app settings")
    return settings
