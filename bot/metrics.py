"""Prometheus metrics: Slack requests by outcome, Auth0 calls by status and latency, waits."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    make_wsgi_app,
)


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
        self.request_latency = Histogram(
            "hook_secret_bot_slack_request_seconds",
            "Time to answer Slack (the ack), by kind",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0),
            registry=self.registry,
        )
        self._auth0_collectors()
        self._refusal_collectors()  # seals.py's refusals
        self._background_collectors()
        # prometheus_client's own WSGI app: content negotiation, gzip and name[] filters.
        self._wsgi = make_wsgi_app(self.registry)
        if pending is not None:
            gauge = Gauge(
                "hook_secret_bot_pending_requests",
                "Requests waiting for a decision",
                registry=self.registry,
            )
            gauge.set_function(lambda: _or_nan(pending))

    def _background_collectors(self) -> None:
        self.undelivered = Counter(
            "hook_secret_bot_slack_undelivered",
            "Slack messages given up after a permanent error, by outbox method and Slack error",
            ["method", "error"],
            registry=self.registry,
        )
        self.prefetch = Counter(
            "hook_secret_bot_prefetch_lookups",
            "Submissions whose target's names were read ahead (hit) or not (miss: read live)",
            ["result"],
            registry=self.registry,
        )
        self.sweeps = Counter(
            "hook_secret_bot_sweeps",
            "Sweep passes completed (expire requests, take over crashed applies, send what is due)",
            registry=self.registry,
        )

    def _refusal_collectors(self) -> None:
        self.refused = Counter(
            "hook_secret_bot_refused_requests",
            "Requests refused at approval or apply: a seal that does not verify (tampered) or "
            "a requester no longer allowed (requester_not_allowed)",
            ["outcome"],
            registry=self.registry,
        )

    def _auth0_collectors(self) -> None:
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

    def observe_prefetch(self, result: str) -> None:
        """Count one submission's read-ahead lookup: ``hit`` or ``miss``."""
        self.prefetch.labels(result).inc()

    def observe_refused(self, outcome: str) -> None:
        """Count one request refused at approval or apply, by outcome."""
        self.refused.labels(outcome).inc()

    def observe_request(self, kind: str, status: str, started: float) -> None:
        """Record one answered Slack request (``started`` from ``time.perf_counter()``)."""
        self.requests.labels(kind, status).inc()
        self.request_latency.labels(kind).observe(time.perf_counter() - started)

    def observe_auth0(self, operation: str, status: int | str, seconds: float) -> None:
        """Record one Auth0 HTTP exchange (the client's observer hook)."""
        self.auth0_calls.labels(operation, str(status)).inc()
        self.auth0_latency.labels(operation).observe(seconds)

    def observe_undelivered(self, method: str, error: str) -> None:
        """Count one outbox message Slack refused for good."""
        self.undelivered.labels(method, error).inc()

    def observe_wait(self, seconds: float) -> None:
        """Record one wait on Auth0's rate limit."""
        self.rate_limit_waits.inc()
        self.rate_limit_wait_seconds.inc(seconds)

    def serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Answer a scrape of ``/metrics`` (WSGI)."""
        body: Iterable[bytes] = self._wsgi(environ, start_response)
        return body


def _or_nan(read: Callable[[], int]) -> float:
    """A gauge reading, or NaN when the database can't answer (the scrape still succeeds)."""
    try:
        return float(read())
    except Exception:  # a scrape must not fail because the database is down
        return math.nan
