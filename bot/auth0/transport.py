"""One tenant's Management API connection: token, 429 waits, retries after lost answers, metrics."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import Any, Final

import httpx
from pydantic import SecretStr

from bot import __version__
from bot.auth0.errors import Auth0Unavailable, AuthenticationFailed
from bot.auth0.rate_limit import PacedTransport, RateLimitWaits, WaitBudget
from bot.auth0.responses import decode, envelope, json_body, unreadable
from bot.auth0.token import ManagementToken, Token, parse_token
from bot.logs import SECRETS, get_logger

log = get_logger(__name__)

_OAUTH_PATH: Final = "/oauth/token"
_MAX_BACKOFF: Final = 8.0

Observer = Callable[[str, int | str, float], None]


class NoAnswer(Exception):
    """Auth0 gave no usable answer (timeout, dropped connection, 5xx): a write may have landed."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class Auth0Transport:
    """Thread-safe Management API calls for one tenant over one long-lived ``httpx.Client``."""

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
        self._rate_limit = RateLimitWaits(
            rate_limit_deadline, clock=clock, sleep=sleep, on_wait=on_rate_limit_wait
        )
        self._read_retries = read_retries
        self._retry_backoff = retry_backoff
        self._sleep = sleep
        self._clock = clock
        self._observer = observer
        self._http = httpx.Client(
            base_url=base_url or f"https://{domain}",
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": f"hook-secret-bot/{__version__}"},
        )
        self._auth = ManagementToken(self._fetch_token, clock, self._refused)
        self._paced = transport if isinstance(transport, PacedTransport) else None

    def __repr__(self) -> str:
        return f"Auth0Transport(domain={self._domain!r}, client_id={self._client_id!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Auth0Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Public calls ---------------------------------------------------------------------

    def budget(self) -> WaitBudget:
        """The 429 waits one public call may spend, across every request it sends."""
        return self._rate_limit.budget()

    def request(
        self,
        operation: str,
        method: str,
        path: str,
        budget: WaitBudget,
        *,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        """Send one request with the token (renewed once on 401), waiting out 429s within
        ``budget``; any other answer below 500 is returned for the caller to read. No usable
        answer (timeout, dropped connection, 5xx) raises ``NoAnswer``, without retrying."""
        headers = {"Content-Type": "application/json"} if body is not None else None
        build = functools.partial(
            self._http.build_request,
            method,
            path,
            params=params,
            content=body,
            headers=headers,
            extensions={"operation": operation},
        )
        return self._patiently(operation, build, budget, auth=self._auth)

    def retrying(self, attempt: Callable[[], httpx.Response]) -> httpx.Response:
        """Repeat an idempotent attempt after lost answers (``NoAnswer``), backing off
        exponentially; when the retries run out, raise ``Auth0Unavailable``."""
        retry = 0
        while True:
            try:
                return attempt()
            except NoAnswer as exc:
                if retry >= self._read_retries:
                    raise Auth0Unavailable() from None
                log.warning("auth0 call retried", cause=exc.detail, retry=retry + 1)
                self._sleep(min(self._retry_backoff * 2**retry, _MAX_BACKOFF))
                retry += 1

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
        """One call with a budget of its own: ``request``, and no usable answer raises
        ``Auth0Unavailable``, after retries with backoff only when ``idempotent``."""
        attempt = functools.partial(
            self.request, operation, method, path, self.budget(), params=params, body=body
        )
        if idempotent:
            return self.retrying(attempt)
        try:
            return attempt()
        except NoAnswer:
            raise Auth0Unavailable() from None

    def back_to_back(self, calls: int) -> AbstractContextManager[None]:
        """Pace ``calls`` calls this thread sends next as one: any wait for the rate limit
        comes before the first, none between them (a read and the write planned from it)."""
        return self._paced.back_to_back(calls) if self._paced else nullcontext()

    def token_scopes(self) -> frozenset[str] | None:
        """Scopes granted to the cached token, fetching one first if needed."""
        return self._auth.current().scopes

    # One HTTP exchange: 429 waits, 5xx, metrics -------------------------------------------

    def _patiently(
        self,
        operation: str,
        build: Callable[[], httpx.Request],
        budget: WaitBudget,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        """Send until Auth0 answers something other than 429, within the wait budget."""
        while True:
            response = self._send(operation, build(), auth)
            if response.status_code == 429:
                self._rate_limit.wait_out(response, budget)
                continue
            if response.status_code >= 500:
                raise NoAnswer(f"HTTP {response.status_code}")
            return response

    def _send(
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
        raise NoAnswer(cause)

    def _observe(self, operation: str, status: int | str, started: float) -> None:
        self._observed(operation, status, time.perf_counter() - started)

    def _observed(self, operation: str, status: int | str, elapsed: float) -> None:
        log.info("auth0 call", operation=operation, status=status, duration_s=round(elapsed, 4))
        if self._observer is not None:
            self._observer(operation, status, elapsed)

    def _refused(self, request: httpx.Request, elapsed: float) -> None:
        """A 401 the token renews and resends after: an exchange of its own for metrics."""
        self._observed(str(request.extensions.get("operation", "?")), 401, elapsed)

    # Token --------------------------------------------------------------------------------

    def _fetch_token(self) -> Token:
        # Asking for a token twice is harmless, so lost answers are retried like reads.
        attempt = functools.partial(self._patiently, "token", self._token_request, self.budget())
        response = self.retrying(attempt)
        if response.status_code != 200:
            raise _token_refusal(response)
        return parse_token(decode(response), self._clock(), unreadable, self._audience)

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


def _token_refusal(response: httpx.Response) -> AuthenticationFailed:
    _, code = envelope(response)
    if code == "access_denied":
        return AuthenticationFailed(
            "the Auth0 application is not authorized for the Management API: authorize it in "
            "Auth0 Dashboard → Applications → APIs → Auth0 Management API"
        )
    said = code or f"HTTP {response.status_code}"
    return AuthenticationFailed(f"{AuthenticationFailed.default_message} (Auth0 said {said})")
