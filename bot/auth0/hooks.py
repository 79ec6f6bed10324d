"""Auth0 Hook endpoints: list and read hooks, add, update and remove their secrets, safely."""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
from pydantic import SecretStr

from bot.auth0.errors import (
    Auth0Error,
    Auth0Unavailable,
    AuthenticationFailed,
    HookFull,
    HookNotFound,
    HooksUnavailable,
    InsufficientScope,
    InvalidRequest,
    SecretConflict,
    SecretNotFound,
)
from bot.auth0.rate_limit import WaitBudget
from bot.auth0.responses import UNREADABLE, decode, envelope, json_body
from bot.auth0.transport import Auth0Transport, NoAnswer
from bot.limits import MAX_SECRETS_PER_HOOK, VALUE_PLACEHOLDER
from bot.logs import get_logger

log = get_logger(__name__)

_PER_PAGE: Final = 100
_HOOK_ID: Final = re.compile(r"[A-Za-z0-9-]+")
# Auth0's exact "hook full" wording is unknown; accept any 400 that names the cap.
_HOOK_FULL: Final = re.compile(
    rf"(maximum|at most|limit|more than)\D{{0,40}}\b{MAX_SECRETS_PER_HOOK}\b", re.IGNORECASE
)

_RENEWED_AND_REFUSED: Final = "Auth0 refused the bot's access token even after renewing it"
_UNCONFIRMED: Final = (
    "Auth0 lost its answer and the change could not be checked: it may or may not have "
    "been applied, so look at the hook before trying again"
)
_PARTIAL: Final = (
    "Auth0 lost its answer and only part of the change is visible on the hook: look at "
    "the hook before trying again"
)


@dataclass(frozen=True)
class Hook:
    """One Auth0 Hook, as much of it as the bot needs."""

    id: str
    name: str
    trigger_id: str
    enabled: bool


@dataclass(frozen=True)
class _Op:
    """What the client must know to send one hook operation and read its errors."""

    name: str  # the spec's operationId: the label for logs and metrics
    method: str
    scope: str  # what to name when a 403 does not say which scope it wanted
    not_found: type[Auth0Error]  # what a 404 without HookDoesNotExist means here


_GET_HOOKS: Final = _Op("get_hooks", "GET", "read:hooks", HooksUnavailable)
_GET_HOOK: Final = _Op("get_hooks_by_id", "GET", "read:hooks", HookNotFound)
_GET_SECRETS: Final = _Op("get_secrets", "GET", "read:hooks", HookNotFound)
_POST_SECRETS: Final = _Op("post_secrets", "POST", "update:hooks", HookNotFound)
_PATCH_SECRETS: Final = _Op("patch_secrets", "PATCH", "update:hooks", SecretNotFound)
_DELETE_SECRETS: Final = _Op("delete_secrets", "DELETE", "delete:hooks", SecretNotFound)


class _Landing(enum.Enum):
    """How much of a write a read-back finds applied."""

    ALL = "all"
    NONE = "none"
    PARTIAL = "partial"


class HooksApi:
    """One tenant's hooks and their secrets, over a shared ``Auth0Transport``."""

    def __init__(self, transport: Auth0Transport) -> None:
        self.transport = transport

    # Public operations -------------------------------------------------------------

    def list_hooks(self) -> list[Hook]:
        """Every hook on the tenant, enabled or not: disabled hooks still hold secrets."""
        budget = self.transport.budget()
        hooks: list[Hook] = []
        page = 0
        while True:
            params = {"page": page, "per_page": _PER_PAGE, "include_totals": "true"}
            batch, total = _parse_hook_page(self._read(_GET_HOOKS, "/api/v2/hooks", budget, params))
            hooks.extend(batch)
            if len(batch) < _PER_PAGE or (total is not None and len(hooks) >= total):
                return hooks
            page += 1

    def get_hook(self, hook_id: str) -> Hook:
        return _parse_hook(self._read(_GET_HOOK, _hook_path(hook_id), self.transport.budget()))

    def get_secret_names(self, hook_id: str) -> list[str]:
        return self._secret_names(hook_id, self.transport.budget())

    def add_secrets(self, hook_id: str, secrets: Mapping[str, SecretStr]) -> None:
        """Add new secrets (POST, not an upsert), never going over the cap or repeating blindly."""
        path = _secrets_path(hook_id)
        _check_values(secrets)
        budget = self.transport.budget()
        _check_room(self._secret_names(hook_id, budget), list(secrets))
        body = json_body({name: secret.get_secret_value() for name, secret in secrets.items()})
        landed = functools.partial(self._added, hook_id, list(secrets), budget)
        self._write_confirmed(_POST_SECRETS, path, body, budget, landed, SecretConflict)

    def update_secrets(self, hook_id: str, secrets: Mapping[str, SecretStr]) -> None:
        """Give existing secrets new values (PATCH answers 201); naming one the hook lacks
        raises SecretNotFound before anything is sent."""
        path = _secrets_path(hook_id)
        _check_values(secrets)
        budget = self.transport.budget()
        # What Auth0 does with a PATCH of an unknown name is undocumented (it might create it,
        # past the cap on secrets): find out first.
        self._require_names(hook_id, secrets, budget)
        body = json_body({name: secret.get_secret_value() for name, secret in secrets.items()})
        # Sending the same values again leaves the same state, so lost answers may be retried.
        attempt = functools.partial(self._checked, _PATCH_SECRETS, path, budget, body=body)
        self.transport.retrying(attempt)

    def delete_secrets(self, hook_id: str, names: Sequence[str]) -> None:
        """Remove secrets by name; naming one the hook lacks raises SecretNotFound."""
        path = _secrets_path(hook_id)
        wanted = [names] if isinstance(names, str) else list(names)
        if not wanted:
            raise InvalidRequest("no secret names were given to remove")
        budget = self.transport.budget()
        self._require_names(hook_id, wanted, budget)
        landed = functools.partial(self._removed, hook_id, wanted, budget)
        self._write_confirmed(
            _DELETE_SECRETS, path, json_body(wanted), budget, landed, SecretNotFound
        )

    def _require_names(self, hook_id: str, names: Iterable[str], budget: WaitBudget) -> None:
        """Raise SecretNotFound, before any write, for names the hook does not have."""
        missing = sorted(set(names) - set(self._secret_names(hook_id, budget)))
        if missing:
            raise SecretNotFound(f"the hook has no secret named {', '.join(missing)}")

    # Writes that must not be repeated blindly --------------------------------------

    def _write_confirmed(
        self,
        op: _Op,
        path: str,
        body: bytes,
        budget: WaitBudget,
        landed: Callable[[], _Landing],
        already_applied: type[Auth0Error],
    ) -> None:
        """Send a write; after a lost answer, read back and retry once only if nothing landed."""
        try:
            self._checked(op, path, budget, body=body)
            return
        except NoAnswer as exc:
            log.warning(
                "auth0 write unconfirmed, reading back", operation=op.name, cause=exc.detail
            )
        if self._landing(landed) is _Landing.ALL:
            return
        try:
            self._checked(op, path, budget, body=body)
        except already_applied:
            # The lost first attempt was applied after the read-back looked.
            return
        except NoAnswer:
            raise Auth0Unavailable(_UNCONFIRMED) from None

    def _landing(self, landed: Callable[[], _Landing]) -> _Landing:
        try:
            landing = landed()
        except Auth0Unavailable:
            raise Auth0Unavailable(_UNCONFIRMED) from None
        if landing is _Landing.PARTIAL:
            raise Auth0Unavailable(_PARTIAL)
        return landing

    def _added(self, hook_id: str, names: list[str], budget: WaitBudget) -> _Landing:
        present = set(self._secret_names(hook_id, budget))
        return _landing_of(sum(name in present for name in names), len(names))

    def _removed(self, hook_id: str, names: list[str], budget: WaitBudget) -> _Landing:
        present = set(self._secret_names(hook_id, budget))
        return _landing_of(sum(name not in present for name in names), len(names))

    # Reads and one checked request -------------------------------------------------

    def _secret_names(self, hook_id: str, budget: WaitBudget) -> list[str]:
        secrets = self._read(_GET_SECRETS, _secrets_path(hook_id), budget)
        if not isinstance(secrets, dict):
            raise Auth0Unavailable(UNREADABLE)
        return list(secrets)

    def _read(
        self, op: _Op, path: str, budget: WaitBudget, params: dict[str, Any] | None = None
    ) -> Any:
        attempt = functools.partial(self._checked, op, path, budget, params=params)
        return decode(self.transport.retrying(attempt))

    def _checked(
        self,
        op: _Op,
        path: str,
        budget: WaitBudget,
        *,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        response = self.transport.request(
            op.name, op.method, path, budget, params=params, body=body
        )
        if response.is_success:
            return response
        raise _error_for(op, response)


# Pure helpers -----------------------------------------------------------------------


def _hook_path(hook_id: str) -> str:
    # The id goes into the URL path: refuse anything that could reach another endpoint.
    if not _HOOK_ID.fullmatch(hook_id):
        raise InvalidRequest("that is not an Auth0 hook id (letters, digits and - only)")
    return f"/api/v2/hooks/{hook_id}"


def _secrets_path(hook_id: str) -> str:
    return f"{_hook_path(hook_id)}/secrets"


def _check_values(secrets: Mapping[str, SecretStr]) -> None:
    if not secrets:
        raise InvalidRequest("no secrets were given")
    for name, secret in secrets.items():
        # Auth0 would store the placeholder GET shows, wiping the real value.
        if secret.get_secret_value() == VALUE_PLACEHOLDER:
            raise InvalidRequest(
                f"refusing to send Auth0's placeholder {VALUE_PLACEHOLDER} as the value of {name}"
            )


def _check_room(existing: list[str], new: list[str]) -> None:
    taken = sorted(set(existing) & set(new))
    if taken:
        raise SecretConflict(f"the hook already has a secret named {', '.join(taken)}")
    if len(existing) + len(new) > MAX_SECRETS_PER_HOOK:
        if len(existing) >= MAX_SECRETS_PER_HOOK:
            raise HookFull()
        raise HookFull(
            f"the hook has {len(existing)} secrets; adding {len(new)} would pass "
            f"Auth0's maximum of {MAX_SECRETS_PER_HOOK}"
        )


def _landing_of(applied: int, wanted: int) -> _Landing:
    if applied == wanted:
        return _Landing.ALL
    return _Landing.NONE if applied == 0 else _Landing.PARTIAL


def _error_for(op: _Op, response: httpx.Response) -> Auth0Error:
    """Translate an error answer; Auth0's free text is read, never copied into the error."""
    status = response.status_code
    message, code = envelope(response)
    if status == 400:
        if _HOOK_FULL.search(message):
            return HookFull()
        detail = f" ({code})" if code else ""
        return InvalidRequest(f"{InvalidRequest.default_message}{detail}", error_code=code)
    if status == 401:
        return AuthenticationFailed(_RENEWED_AND_REFUSED)
    if status == 403:
        return _forbidden(op, message, code)
    if status == 404:
        if code == "HookDoesNotExist" or "hook does not exist" in message.lower():
            return HookNotFound()
        return op.not_found()
    if status == 409:
        return SecretConflict()
    return InvalidRequest(f"Auth0 answered HTTP {status} to {op.name}", error_code=code)


def _forbidden(op: _Op, message: str, code: str | None) -> Auth0Error:
    lowered = message.lower()
    if code == "insufficient_scope" or lowered.startswith("insufficient scope"):
        return InsufficientScope.from_auth0_message(message, op.scope)
    if "disabled" in lowered or "deprecated" in lowered:
        return HooksUnavailable()
    # Any other 403 from the Management API is, in practice, a missing grant.
    return InsufficientScope(op.scope)


def _parse_hook(data: Any) -> Hook:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise Auth0Unavailable(UNREADABLE)
    return Hook(
        id=data["id"],
        name=str(data.get("name", "")),
        trigger_id=str(data.get("triggerId", "")),
        enabled=bool(data.get("enabled", True)),
    )


def _parse_hook_page(data: Any) -> tuple[list[Hook], int | None]:
    """Hooks and total from either the totals envelope or a bare array."""
    if isinstance(data, list):
        return [_parse_hook(item) for item in data], None
    if isinstance(data, dict) and isinstance(data.get("hooks"), list):
        total = data.get("total")
        hooks = [_parse_hook(item) for item in data["hooks"]]
        return hooks, int(total) if isinstance(total, int | float) else None
    raise Auth0Unavailable(UNREADABLE)
