"""The Slack Web API client's short-lived copies: another timeout, no rate-limit sleeps."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry import RetryHandler

from bot.latency.slack_pool import PooledWebClient


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
