"""Auth0 Management API client for hook secrets: tokens, retries, rate limits, typed errors."""

from __future__ import annotations

import enum
import functools
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import httpx
from pydantic import SecretStr

from bot import __version__
from bot.auth0.errors import (
    Auth0Error,
    Auth0Unavailable,
    AuthenticationFailed,
    HookFull,
    HookNotFound,
    HooksUnavailable,
    InsufficientScope,
    InvalidRequest,
    RateLimited,
    SecretConflict,
    SecretNotFound,
)
from bot.auth0.responses import UNREADABLE, decode, envelope, json_body, retry_at, unreadable
from bot.auth0.token import ManagementToken, Token, parse_token
from bot.limits import MAX_SECRETS_PER_HOOK, VALUE_PLACEHOLDER
from bot.logs import SECRETS, get_logger

log = get_logger(__name__)


_PER_PAGE: Final = 100
_OAUTH_PATH: Final = "/oauth/token"
_HOOK_ID: Final = re.compile(r"[A-Za-z0-9-]+")
# Auth0's exact "hook full" wording is unknown; accept any 400 that names the cap.
_HOOK_FULL: Final = re.compile(
    rf"(maximum|at most|limit|more than)\D{{0,40}}\b{MAX_SECRETS_PER_HOOK}\b", re.IGNORECASE
)
# Our clock may run ahead of Auth0's reset instant: never answer a 429 with an instant retry.
_MIN_RATE_LIMIT_WAIT: Final = 0.1
_MAX_BACKOFF: Final = 8.0

_RENEWED_AND_REFUSED: Final = "Auth0 refused the bot's access token even after renewing it"
_UNCONFIRMED: Final = (
    "Auth0 lost its answer and the change could not be checked: it may or may not have "
    "been applied, so look at the hook before trying again"
)
_PARTIAL: Final = (
    "Auth0 lost its answer and only part of the change is visible on the hook: look at "
    "the hook before trying again"
)

Observer = Callable[[str, int | str, float], None]


@dataclass(frozen=True)
class Hook:
    """One Auth0 Hook, as much of it as the bot needs."""

    id: str
    name: str
    trigger_id: str
    enabled: bool


@dataclass(frozen=True)
class _Op:
    """What the client must know to send one Management API operation and read its errors."""

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


class _OutcomeUnknown(Exception):
    """Auth0 gave no usable answer (timeout, dropped connection, 5xx): a write may have landed."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class _Landing(enum.Enum):
    """How much of a write a read-back finds applied."""

    ALL = "all"
    NONE = "none"
    PARTIAL = "partial"


class _WaitBudget:
    """Seconds one public call may still spend waiting out 429s."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds


class Auth0Client:
    """Thread-safe client for one tenant's hook secrets over one long-lived ``httpx.Client``."""

    def __init__(
        self,
        *,
        domain: str,
        client_id: str,
        client_secret: SecretStr,
        base_url: str | None = None,
        timeout: float = 10.0,
        rate_limit_deadline: float = 30.0,
        read_retries: int = 3,
        retry_backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        observer: Observer | None = None,
        on_rate_limit_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._domain = domain
        self._audience = f"https://{domain}/api/v2/"
        self._client_id = client_id
        self._client_secret = client_secret
        SECRETS.pin(client_secret.get_secret_value())
        self._rate_limit_deadline = rate_limit_deadline
        self._read_retries = read_retries
        self._retry_backoff = retry_backoff
        self._sleep = sleep
        self._clock = clock
        self._observer = observer
        self._on_rate_limit_wait = on_rate_limit_wait
        self._http = httpx.Client(
            base_url=base_url or f"https://{domain}",
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": f"hook-secret-bot/{__version__}"},
        )
        self._auth = ManagementToken(self._fetch_token, clock, self._refused)

    def __repr__(self) -> str:
        return f"Auth0Client(domain={self._domain!r}, client_id={self._client_id!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Auth0Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Public operations -------------------------------------------------------------

    def list_hooks(self) -> list[Hook]:
        """Every hook on the tenant, enabled or not: disabled hooks still hold secrets."""
        budget = self._budget()
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
        return _parse_hook(self._read(_GET_HOOK, _hook_path(hook_id), self._budget()))

    def get_secret_names(self, hook_id: str) -> list[str]:
        return self._secret_names(hook_id, self._budget())

    def add_secrets(self, hook_id: str, secrets: Mapping[str, SecretStr]) -> None:
        """Add new secrets (POST, not an upsert), never going over the cap or repeating blindly."""
        path = _secrets_path(hook_id)
        _check_values(secrets)
        budget = self._budget()
        _check_room(self._secret_names(hook_id, budget), list(secrets))
        body = json_body({name: secret.get_secret_value() for name, secret in secrets.items()})
        landed = functools.partial(self._added, hook_id, list(secrets), budget)
        self._write_confirmed(_POST_SECRETS, path, body, budget, landed, SecretConflict)

    def update_secrets(self, hook_id: str, secrets: Mapping[str, SecretStr]) -> None:
        """Give existing secrets new values (PATCH answers 201); naming one the hook lacks
        raises SecretNotFound before anything is sent."""
        path = _secrets_path(hook_id)
        _check_values(secrets)
        budget = self._budget()
        # What Auth0 does with a PATCH of an unknown name is undocumented (it might create it,
        # past the cap on secrets): find out first.
        self._require_names(hook_id, secrets, budget)
        body = json_body({name: secret.get_secret_value() for name, secret in secrets.items()})
        # Sending the same values again leaves the same state, so lost answers may be retried.
        self._retrying(functools.partial(self._checked, _PATCH_SECRETS, path, budget, body=body))

    def delete_secrets(self, hook_id: str, names: Sequence[str]) -> None:
        """Remove secrets by name; naming one the hook lacks raises SecretNotFound."""
        path = _secrets_path(hook_id)
        wanted = [names] if isinstance(names, str) else list(names)
        if not wanted:
            raise InvalidRequest("no secret names were given to remove")
        budget = self._budget()
        self._require_names(hook_id, wanted, budget)
        landed = functools.partial(self._removed, hook_id, wanted, budget)
        self._write_confirmed(
            _DELETE_SECRETS, path, json_body(wanted), budget, landed, SecretNotFound
        )

    def _require_names(self, hook_id: str, names: Iterable[str], budget: _WaitBudget) -> None:
        """Raise SecretNotFound, before any write, for names the hook does not have."""
        missing = sorted(set(names) - set(self._secret_names(hook_id, budget)))
        if missing:
            raise SecretNotFound(f"the hook has no secret named {', '.join(missing)}")

    def exchange(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
        idempotent: bool = False,
    ) -> httpx.Response:
        """One Management API call for other endpoints (Actions), with this client's token,
        401 renewal, pacing and 429 waits; any other answer is returned for the caller to read.
        No usable answer (timeout, dropped connection, 5xx) raises Auth0Unavailable, after
        retries with backoff only when ``idempotent``."""
        attempt = functools.partial(
            self._send, _Op(operation, method, "", Auth0Error), path, self._budget(), params, body
        )
        if idempotent:
            return self._retrying(attempt)
        try:
            return attempt()
        except _OutcomeUnknown:
            raise Auth0Unavailable() from None

    def token_scopes(self) -> frozenset[str] | None:
        """Scopes granted to the cached token, fetching one first if needed."""
        return self._auth.current().scopes

    # Writes that must not be repeated blindly --------------------------------------

    def _write_confirmed(
        self,
        op: _Op,
        path: str,
        body: bytes,
        budget: _WaitBudget,
        landed: Callable[[], _Landing],
        already_applied: type[Auth0Error],
    ) -> None:
        """Send a write; after a lost answer, read back and retry once only if nothing landed."""
        try:
            self._checked(op, path, budget, body=body)
            return
        except _OutcomeUnknown as exc:
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
        except _OutcomeUnknown:
            raise Auth0Unavailable(_UNCONFIRMED) from None

    def _landing(self, landed: Callable[[], _Landing]) -> _Landing:
        try:
            landing = landed()
        except Auth0Unavailable:
            raise Auth0Unavailable(_UNCONFIRMED) from None
        if landing is _Landing.PARTIAL:
            raise Auth0Unavailable(_PARTIAL)
        return landing

    def _added(self, hook_id: str, names: list[str], budget: _WaitBudget) -> _Landing:
        present = set(self._secret_names(hook_id, budget))
        return _landing_of(sum(name in present for name in names), len(names))

    def _removed(self, hook_id: str, names: list[str], budget: _WaitBudget) -> _Landing:
        present = set(self._secret_names(hook_id, budget))
        return _landing_of(sum(name not in present for name in names), len(names))

    # Reads and retries -------------------------------------------------------------

    def _secret_names(self, hook_id: str, budget: _WaitBudget) -> list[str]:
        secrets = self._read(_GET_SECRETS, _secrets_path(hook_id), budget)
        if not isinstance(secrets, dict):
            raise Auth0Unavailable(UNREADABLE)
        return list(secrets)

    def _read(
        self, op: _Op, path: str, budget: _WaitBudget, params: dict[str, Any] | None = None
    ) -> Any:
        response = self._retrying(functools.partial(self._checked, op, path, budget, params=params))
        return decode(response)

    def _retrying(self, attempt: Callable[[], httpx.Response]) -> httpx.Response:
        """Repeat an idempotent attempt after lost answers, backing off exponentially."""
        retry = 0
        while True:
            try:
                return attempt()
            except _OutcomeUnknown as exc:
                if retry >= self._read_retries:
                    raise Auth0Unavailable() from None
                log.warning("auth0 call retried", cause=exc.detail, retry=retry + 1)
                self._sleep(min(self._retry_backoff * 2**retry, _MAX_BACKOFF))
                retry += 1

    # One Management API request: token, 401 renewal, 429 waits, error mapping ------

    def _checked(
        self,
        op: _Op,
        path: str,
        budget: _WaitBudget,
        *,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        response = self._send(op, path, budget, params, body)
        if response.is_success:
            return response
        raise _error_for(op, response)

    def _send(
        self,
        op: _Op,
        path: str,
        budget: _WaitBudget,
        params: dict[str, Any] | None,
        body: bytes | None,
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"} if body is not None else None
        build = functools.partial(
            self._http.build_request,
            op.method,
            path,
            params=params,
            content=body,
            headers=headers,
            extensions={"operation": op.name},
        )
        return self._patiently(op.name, build, budget, auth=self._auth)

    def _patiently(
        self,
        operation: str,
        build: Callable[[], httpx.Request],
        budget: _WaitBudget,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        """Send until Auth0 answers something other than 429, within the wait budget."""
        while True:
            response = self._exchange(operation, build(), auth)
            if response.status_code == 429:
                self._wait_out(response, budget)
                continue
            if response.status_code >= 500:
                raise _OutcomeUnknown(f"HTTP {response.status_code}")
            return response

    def _exchange(
        self, operation: str, request: httpx.Request, auth: httpx.Auth | None
    ) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = self._http.send(request, auth=auth)
        except httpx.RequestError as exc:
            cause = type(exc).__name__
        else:
            self._observe(operation, response.status_code, started)
            return response
        self._observe(operation, "error", started)
        # Raised outside the except block so the httpx error, which holds the request and
        # its body, does not ride along as __context__ into logged tracebacks.
        raise _OutcomeUnknown(cause)

    def _observe(self, operation: str, status: int | str, started: float) -> None:
        self._observed(operation, status, time.perf_counter() - started)

    def _observed(self, operation: str, status: int | str, elapsed: float) -> None:
        log.info("auth0 call", operation=operation, status=status, duration_s=round(elapsed, 4))
        if self._observer is not None:
            self._observer(operation, status, elapsed)

    def _refused(self, request: httpx.Request, elapsed: float) -> None:
        """A 401 the token renews and resends after: an exchange of its own for metrics."""
        self._observed(str(request.extensions.get("operation", "?")), 401, elapsed)

    def _wait_out(self, response: httpx.Response, budget: _WaitBudget) -> None:
        now = self._clock()
        again = retry_at(response.headers, now)
        wait = max(again - now, _MIN_RATE_LIMIT_WAIT)
        if wait > budget.left:
            raise RateLimited(retry_at=again)
        budget.left -= wait
        log.warning("auth0 rate limited, waiting", wait_s=round(wait, 3))
        if self._on_rate_limit_wait is not None:
            self._on_rate_limit_wait(wait)
        self._sleep(wait)

    def _budget(self) -> _WaitBudget:
        return _WaitBudget(self._rate_limit_deadline)

    # Token --------------------------------------------------------------------------

    def _fetch_token(self) -> Token:
        # Asking for a token twice is harmless, so lost answers are retried like reads.
        attempt = functools.partial(self._patiently, "token", self._token_request, self._budget())
        response = self._retrying(attempt)
        if response.status_code != 200:
            raise _token_refusal(response)
        return parse_token(decode(response), self._clock(), unreadable)

    def _token_request(self) -> httpx.Request:
        body = json_body(
            {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret.get_secret_value(),
                "audience": self._audience,
            }
        )
        headers = {"Content-Type": "application/json"}
        return self._http.build_request("POST", _OAUTH_PATH, content=body, headers=headers)


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


def _token_refusal(response: httpx.Response) -> AuthenticationFailed:
    _, code = envelope(response)
    if code == "access_denied":
        return AuthenticationFailed(
            "the Auth0 application is not authorized for the Management API: authorize it in "
            "Auth0 Dashboard → Applications → APIs → Auth0 Management API"
        )
    said = code or f"HTTP {response.status_code}"
    return AuthenticationFailed(f"{AuthenticationFailed.default_message} (Auth0 said {said})")


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
