"""Pacing Management API calls to the tenant's rate limit, shared by every thread."""

from __future__ import annotations

import threading
import time

import httpx
from pydantic import SecretStr

from bot.auth0.hooks import HooksApi
from bot.auth0.rate_limit import PacedTransport
from bot.auth0.transport import Auth0Transport
from standins.auth0 import Auth0Sandbox, RateLimit


def test_concurrent_calls_on_a_free_tenant_queue_instead_of_meeting_429s() -> None:
    """Five threads listing hooks at once on a 2-per-second tenant all succeed, none get 429."""
    waits: list[float] = []
    with Auth0Sandbox(rate_limit=RateLimit.FREE) as sandbox:
        sandbox.add_hook("Client Credentials Exchange")
        client = Auth0Transport(
            domain=sandbox.domain,
            client_id=sandbox.client_id,
            client_secret=SecretStr("sandbox-client-secret"),
            base_url=sandbox.url,
            transport=PacedTransport(on_wait=waits.append),
            rate_limit_deadline=30.0,
        )
        results: list[int] = []

        def list_hooks() -> None:
            results.append(len(HooksApi(client).list_hooks()))

        threads = [threading.Thread(target=list_hooks) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(40)
        client.close()
        api = [r for r in sandbox.requests if r.path.startswith("/api/")]
    assert results == [1] * 5
    assert [r.status for r in api] == [200] * 5
    assert waits  # some calls were held back rather than sent


def _answer(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/oauth/token":
        return httpx.Response(200, json={"access_token": "t"})
    reset = str(int(time.time()) + 2)
    headers = {"x-ratelimit-limit": "1", "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    return httpx.Response(200, json=[], headers=headers)


def test_an_empty_bucket_holds_api_calls_until_its_reset_but_not_token_calls() -> None:
    """After an answer says nothing remains, the next API call waits for the reset; tokens don't."""
    waits: list[float] = []
    transport = PacedTransport(httpx.MockTransport(_answer), on_wait=waits.append)
    with httpx.Client(transport=transport, base_url="https://tenant.example") as http:
        first = http.get("/api/v2/hooks")
        reset = float(first.headers["x-ratelimit-reset"])
        started = time.monotonic()
        http.post("/oauth/token")
        token_took = time.monotonic() - started
        http.get("/api/v2/hooks")
        finished = time.time()
    assert token_took < 0.5
    assert finished >= reset - 0.05
    assert len(waits) == 1 and waits[0] > 0.5


def test_a_429_with_retry_after_holds_the_next_call() -> None:
    """A 429 carrying Retry-After holds the following API call for that long."""
    answers = iter([httpx.Response(429, headers={"retry-after": "1"}), httpx.Response(200)])
    transport = PacedTransport(httpx.MockTransport(lambda _: next(answers)))
    with httpx.Client(transport=transport, base_url="https://tenant.example") as http:
        assert http.get("/api/v2/hooks").status_code == 429
        started = time.monotonic()
        assert http.get("/api/v2/hooks").status_code == 200
    assert time.monotonic() - started >= 0.9
