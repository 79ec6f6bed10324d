"""slack_sdk's WebClient over one pool of kept-alive connections (httpcore) instead of urllib.

urllib opens a new connection, and over HTTPS a new TLS handshake, for every Web API call:
`python -m benchmarks.slack_transport` measures what that costs each modal and message. The
client here keeps slack_sdk's request building, responses, errors and retry handlers, and
replaces only the one method that sends a built request (``_perform_urllib_http_request_
internal``), raising what urllib raises so that the retry handlers and the bot's own error
handling see the same exceptions. httpcore is httpx's own connection pool, without httpx's
per-request work (which costs more than urllib on a plain-HTTP call).
"""

from __future__ import annotations

import ssl
from http.client import HTTPException, HTTPMessage, RemoteDisconnected
from io import BytesIO
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, proxy_bypass

import httpcore
from slack_sdk import WebClient
from slack_sdk.http_retry import RetryHandler

# Connections kept open to Slack: the outbox, the modal thread and the request threads' lookups.
KEEPALIVE = 16
# Seconds an idle connection is kept; one the server closed meanwhile is found before reuse
# (httpcore checks it) and replaced, so a call does not fail on it.
KEEPALIVE_SECONDS = 30.0
TIMEOUTS = ("connect", "read", "write", "pool")
# httpcore's words for a connection closed before the answer began (urllib: RemoteDisconnected).
NO_RESPONSE = "Server disconnected without sending a response"


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

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if not self.direct or not url.lower().startswith(("http://", "https://")):
            return super()._perform_urllib_http_request_internal(url, req)
        seconds = self.timeout
        # The headers urllib's http.client sends, which slack_sdk leaves to it.
        sent = [(name, str(value)) for name, value in req.header_items()]
        sent.append(("Accept-Encoding", "identity"))
        try:
            response = self.pool.request(
                req.get_method(),
                url,
                headers=sent,
                content=req.data or b"",  # type: ignore[arg-type]  # slack_sdk builds bytes
                extensions={"timeout": dict.fromkeys(TIMEOUTS, seconds)},
            )
        except _FAILURES as error:
            raise _as_urllib(error) from error
        headers = HTTPMessage()
        for name, value in response.headers:
            headers[name.decode("latin-1")] = value.decode("latin-1")
        if not 200 <= response.status < 300:
            # What urlopen raises: slack_sdk reads the status, headers and body from it.
            reason = response.extensions.get("reason_phrase", b"").decode("latin-1")
            raise HTTPError(url, response.status, reason, headers, BytesIO(response.content))
        body: str | bytes = response.content
        if headers.get_content_type() != "application/gzip":  # admin.analytics.getFile
            body = response.content.decode(headers.get_content_charset() or "utf-8")
        return {"status": response.status, "headers": headers, "body": body}


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


def short_lived(
    client: WebClient, timeout: int, retry_handlers: list[RetryHandler] | None = None
) -> WebClient:
    """A copy of ``client`` with ``timeout`` and without the rate-limit handler, which would
    sleep out a limit past a deadline (``retry_handlers`` None: slack_sdk's default, one retry
    of a failed connection), sharing its connections when it has a pool."""
    if isinstance(client, PooledWebClient):
        return client.derived(timeout, retry_handlers)
    return WebClient(
        token=client.token, base_url=client.base_url, timeout=timeout, retry_handlers=retry_handlers
    )
