"""Prometheus metrics: Slack requests by outcome, Auth0 calls by status and latency, waits."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """One registry per process (no module-level collectors, so tests can build many)."""

    def __init__(self, pending: Callable[[], int] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hook_secret_bot_slack_requests",
            "Slack requests handled, by kind and HTTP status",
            ["kind", "status"],
            registry=self.registry,
        )
        self.auth0_calls = Counter(
            "hook_secret_bot_auth0_calls",
            "Auth0 Management API calls, by operation and status",
            ["operation", "status"],
            registry=self.registry,
        )
        self.auth0_latency = Histogram(
            "hook_secret_bot_auth0_call_seconds",
            "Auth0 call latency",
            ["operation"],
            registry=self.registry,
        )
        self.rate_limit_waits = Counter(
            "hook_secret_bot_auth0_rate_limit_waits",
            "Times a call waited on Auth0's rate limit",
            registry=self.registry,
        )
        self.rate_limit_wait_seconds = Counter(
            "hook_secret_bot_auth0_rate_limit_wait_seconds",
            "Seconds spent waiting on rate limits",
            registry=self.registry,
        )
        if pending is not None:
            gauge = Gauge(
                "hook_secret_bot_pending_requests",
                "Requests waiting for a decision",
                registry=self.registry,
            )
            gauge.set_function(pending)

    def observe_auth0(self, operation: str, status: int | str, seconds: float) -> None:
        """Record one Auth0 HTTP exchange (the client's observer hook)."""
        self.auth0_calls.labels(operation, str(status)).inc()
        self.auth0_latency.labels(operation).observe(seconds)

    def observe_wait(self, seconds: float) -> None:
        """Record one wait on Auth0's rate limit."""
        self.rate_limit_waits.inc()
        self.rate_limit_wait_seconds.inc(seconds)

    def render(self) -> bytes:
        """The text exposition format."""
        return bytes(generate_latest(self.registry))
