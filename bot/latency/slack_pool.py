"""slack_sdk's WebClient over one pool of kept-alive connections (httpcore) instead of urllib.

urllib opens a new connection, and over HTTPS a new TLS handshake, for every Web API call:
`python -m benchmarks.slack_transport` measures what that costs each modal and message. The
client overrides slack_sdk's public ``api_call``, through which every Web API method goes: it
builds the request as slack_sdk does (form or JSON body, bearer token), sends it over the pool,
lets the client's ``retry_handlers`` (slack_sdk's public ``http_retry`` interface) decide on
retries, and answers slack_sdk's ``SlackResponse`` (``validate`` raises ``SlackApiError``).
Failures are raised as urllib raises them, so the retry handlers and the bot's own error
handling see the same exceptions. Uploads, basic auth and proxies go through slack_sdk as is.
httpcore is httpx's own connection pool, without httpx's per-request work.
"""

from __future__ import annotations

import json as jsonlib
import platform
import ssl
from dataclasses import dataclass
from http.client import HTTPException, HTTPMessage, RemoteDisconnected
from io import BytesIO
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urljoin, urlsplit
from urllib.request import proxy_bypass

import httpcore
from slack_sdk import WebClient
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryHandler, RetryState
from slack_sdk.version import __version__ as SDK_VERSION
from slack_sdk.web import SlackResponse

# Connections kept open to Slack: the outbox, the modal thread and the request threads' lookups.
KEEPALIVE = 16
# Seconds an idle connection is kept; one the server closed meanwhile is found before reuse
# (httpcore checks it) and replaced, so a call does not fail on it.
KEEPALIVE_SECONDS = 30.0
TIMEOUTS = ("connect", "read", "write", "pool")
# httpcore's words for a connection closed before the answer began (urllib: RemoteDisconnected).
NO_RESPONSE = "Server disconnected without sending a response"
# As slack_sdk names itself to Slack.
USER_AGENT = (
    f"Python/{platform.python_version()} slackclient/{SDK_VERSION} "
    f"{platform.system()}/{platform.release()}"
)
# slack_sdk's own bound on attempts of one call, whatever the handlers say.
MAX_ATTEMPTS = 100


@dataclass(frozen=True)
class Answer:
    """Slack's answer to one attempt."""

    status: int
    headers: HTTPMessage
    content: bytes
    reason: str

    def for_retry(self) -> HttpResponse:
        """The answer as slack_sdk's retry handlers read it."""
        text = self.content.decode("utf-8", "replace")
        body = _json_or_none(text) if text.startswith("{") else None
        headers: dict[str, str | list[str]] = {k: [v] for k, v in self.headers.items()}
        return HttpResponse(
            status_code=self.status, headers=headers, body=body or {}, data=self.content
        )

    def error(self, url: str) -> HTTPError | None:
        """What urlopen raises for this answer: an ``HTTPError`` unless it is a 2xx."""
        if 200 <= self.status < 300:
            return None
        return HTTPError(url, self.status, self.reason, self.headers, BytesIO(self.content))


class PooledWebClient(WebClient):
    """A ``WebClient`` whose calls share ``pool``; copies made with ``derived`` share it too.
    Through a proxy (``HTTPS_PROXY``, unless ``NO_PROXY`` names Slack's host) calls go as
    slack_sdk sends them, over urllib, which knows every form of proxy setting."""

    def __init__(self, *args: Any, pool: httpcore.ConnectionPool | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        host = urlsplit(self.base_url).hostname or ""
        self.direct = not self.proxy or bool(proxy_bypass(host))
        self.pool = pool or _pool(self.ssl)

    def derived(self, timeout: int, retry_handlers: list[RetryHandler] | None = None) -> WebClient:
        """The same client with another timeout; ``retry_handlers`` None is slack_sdk's default
        (one retry of a connection that failed), without the rate-limit handler's sleeps."""
        return PooledWebClient(
            token=self.token,
            base_url=self.base_url,
            timeout=timeout,
            retry_handlers=retry_handlers,
            logger=self._logger,
            proxy=self.proxy,
            ssl=self.ssl,
            pool=self.pool,
        )

    def close(self) -> None:
        """Close the kept-alive connections (the pool is shared with derived clients)."""
        self.pool.close()

    def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        auth: dict[str, Any] | None = None,
    ) -> SlackResponse:
        """Call ``api_method`` over the pool (as slack_sdk would, POST whatever the verb)."""
        if files or auth or not self.direct or not self.base_url.lower().startswith("http"):
            return super().api_call(
                api_method,
                http_verb=http_verb,
                files=files,
                data=data,
                params=params,
                json=json,
                headers=headers,
                auth=auth,
            )
        url = urljoin(self.base_url, api_method.lstrip("/"))
        sent, body, form = self._request(json, {**(params or {}), **(data or {})}, headers)
        answer = self._exchange(url, sent, body)
        response = SlackResponse(
            client=self,
            http_verb="POST",
            api_url=url,
            req_args={"headers": sent, "params": form, "json": json},
            data=_body(answer),
            headers=_answer_headers(answer),
            status_code=answer.status,
        )
        response.validate()  # type: ignore[no-untyped-call]  # slack_sdk leaves it unannotated
        return response

    def _request(
        self, json: dict[str, Any] | None, form: dict[str, Any], extra: dict[str, Any] | None
    ) -> tuple[dict[str, str], bytes, dict[str, Any]]:
        """Headers and body as slack_sdk builds them: JSON, else a form without None values
        and with booleans as 1 and 0; a ``token`` argument wins over the client's."""
        token = self.token
        if json is not None:
            payload = {**self.default_params, **json}
            token = payload.pop("token", token)
            body, kind = jsonlib.dumps(payload).encode(), "application/json;charset=utf-8"
        else:
            form = {k: v for k, v in {**self.default_params, **form}.items() if v is not None}
            token = form.pop("token", token)
            form = {k: str(int(v)) if isinstance(v, bool) else v for k, v in form.items()}
            body, kind = urlencode(form).encode(), "application/x-www-form-urlencoded"
        sent = {"User-Agent": USER_AGENT, **self.headers, **(extra or {})}
        sent |= {"Content-Type": kind, "Accept-Encoding": "identity"}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        return sent, body, form

    def _exchange(self, url: str, sent: dict[str, str], body: bytes) -> Answer:
        """Send until an answer the retry handlers don't retry; a failure they don't retry is
        raised as urllib would raise it."""
        request = HttpRequest(
            method="POST", url=url, headers={k: [v] for k, v in sent.items()}, data=body
        )
        state = RetryState()
        for _ in range(MAX_ATTEMPTS):
            state.next_attempt_requested = False
            try:
                answer = self._send(url, sent, body)
            except _FAILURES as failure:
                error = _as_urllib(failure)
                self._logger.error(f"Failed to send a request to Slack API server: {error}")
                if not self._retried(state, request, None, error):
                    raise error from failure
                continue
            if not self._retried(state, request, answer.for_retry(), answer.error(url)):
                return answer
        return answer

    def _retried(
        self,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None,
        error: Exception | None,
    ) -> bool:
        """Whether a retry handler takes this outcome (it then waits before the next try)."""
        for handler in self.retry_handlers:
            if handler.can_retry(state=state, request=request, response=response, error=error):
                handler.prepare_for_next_attempt(
                    state=state, request=request, response=response, error=error
                )
                return state.next_attempt_requested
        return False

    def _send(self, url: str, sent: dict[str, str], body: bytes) -> Answer:
        response = self.pool.request(
            "POST",
            url,
            headers=list(sent.items()),
            content=body,
            extensions={"timeout": dict.fromkeys(TIMEOUTS, self.timeout)},
        )
        headers = HTTPMessage()
        for name, value in response.headers:
            headers[name.decode("latin-1")] = value.decode("latin-1")
        reason = response.extensions.get("reason_phrase", b"").decode("latin-1")
        return Answer(response.status, headers, response.content, reason)


def _body(answer: Answer) -> dict[str, Any] | bytes:
    """The answer's data as slack_sdk gives it: parsed JSON, bytes for a gzip file
    (``admin.analytics.getFile``), or Slack's error for a body that is not JSON."""
    if answer.headers.get_content_type() == "application/gzip":
        return answer.content
    text = answer.content.decode(answer.headers.get_content_charset() or "utf-8")
    parsed = _json_or_none(text)
    if parsed is None:
        return {"ok": False, "error": f"Received a response in a non-JSON format: {text[:100]}"}
    return parsed


def _answer_headers(answer: Answer) -> dict[str, str]:
    """The answer's headers as slack_sdk gives them: a 429's Retry-After in both spellings."""
    headers = dict(answer.headers.items())
    after = answer.headers.get("Retry-After")
    if answer.status == 429 and after is not None:
        headers |= {"Retry-After": after, "retry-after": after}
    return headers


def _json_or_none(text: str) -> dict[str, Any] | None:
    try:
        parsed = jsonlib.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _pool(context: ssl.SSLContext | None) -> httpcore.ConnectionPool:
    """Connections verified against the system's trust store, as urllib's are (SSL_CERT_FILE is
    honoured), or against ``context``."""
    return httpcore.ConnectionPool(
        ssl_context=context or ssl.create_default_context(),
        max_connections=None,  # as many as threads call at once, as urllib allowed
        max_keepalive_connections=KEEPALIVE,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )


_FAILURES = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)


def _as_urllib(error: Exception) -> OSError | HTTPException:
    """The exception urllib raises for the same failure: a connection that was never made is
    ``URLError`` and one closed before any answer ``RemoteDisconnected``, which slack_sdk's
    ConnectionErrorRetryHandler retries; a timeout once the request was sent is not retried,
    as with urllib."""
    text = str(error) or type(error).__name__
    if isinstance(error, httpcore.ConnectTimeout):
        return URLError(TimeoutError(text))
    if isinstance(error, httpcore.TimeoutException):
        return TimeoutError(text)
    if isinstance(error, httpcore.RemoteProtocolError) and text.startswith(NO_RESPONSE):
        return RemoteDisconnected(text)  # retried: Slack did not answer
    if isinstance(error, httpcore.ProtocolError):
        # Slack answered, badly or in part: what http.client raises, not retried (the call may
        # have been carried out).
        return HTTPException(text)
    if isinstance(error, httpcore.ReadError | httpcore.WriteError):
        return ConnectionResetError(text)
    return URLError(text)
