"""The Management API access token as an ``httpx.Auth``: cached, shared, renewed once on 401."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Final

import httpx
from pydantic import SecretStr

from bot.logs import SECRETS, get_logger

log = get_logger(__name__)
# Renew the token this long before Auth0 says it expires (or halfway, for short lives).
EARLY_RENEWAL: Final = 60.0


@dataclass(frozen=True)
class Token:
    """One access token and what Auth0 said about it."""

    value: SecretStr
    renew_at: float
    scopes: frozenset[str] | None  # None: Auth0 did not say (``scope`` may be absent)


class ManagementToken(httpx.Auth):
    """Adds the bearer token to each request. One token serves every thread (the lock makes
    concurrent misses fetch once); a 401 renews it once and resends, then the answer stands."""

    def __init__(
        self,
        fetch: Callable[[], Token],
        clock: Callable[[], float],
        on_refused: Callable[[httpx.Request, float], None] | None = None,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._on_refused = on_refused
        self._lock = threading.Lock()
        self._token: Token | None = None

    def current(self) -> Token:
        """The cached token, fetched first when missing or due for renewal."""
        with self._lock:
            if self._token is None or self._clock() >= self._token.renew_at:
                self._token = self._fetch()
            return self._token

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Send with the token; after a 401 (keys rotate, tokens expire early) renew once."""
        token = self.current()
        started = time.perf_counter()
        request.headers["Authorization"] = _bearer(token)
        response = yield request
        if response.status_code != 401:
            return
        if self._on_refused is not None:
            self._on_refused(request, time.perf_counter() - started)
        self._discard(token)
        request.headers["Authorization"] = _bearer(self.current())
        yield request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Fetching a token is blocking I/O: only the sync flow exists."""
        raise NotImplementedError("ManagementToken serves the synchronous client only")

    def _discard(self, stale: Token) -> None:
        """Forget ``stale`` unless another thread has already replaced it."""
        with self._lock:
            if self._token is stale:
                self._token = None


def parse_token(
    data: Any, now: float, unreadable: Callable[[], Exception], tenant: str = ""
) -> Token:
    """Read a token answer; ``unreadable`` builds the error for one that isn't. ``tenant``
    (its domain) keeps each tenant's token in a redactor slot of its own: a token renewed
    replaces its own tenant's predecessor only, never another tenant's current one."""
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise unreadable()
    lifetime = float(data.get("expires_in", 86400))
    scope = data.get("scope")
    # Teach the log redactor the token for as long as the process lives (it is valid for a
    # day, longer than the registry remembers ordinary values), so no log line prints it.
    SECRETS.pin(data["access_token"], slot=f"auth0-access-token:{tenant}")
    return Token(
        value=SecretStr(data["access_token"]),
        renew_at=now + max(lifetime - EARLY_RENEWAL, lifetime / 2),
        scopes=frozenset(scope.split()) if isinstance(scope, str) else None,
    )


def _bearer(token: Token) -> str:
    return f"Bearer {token.value.get_secret_value()}"
