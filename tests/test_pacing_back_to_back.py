"""Two paced calls sent back to back: the rate-limit wait comes before the first, none between
(the action apply reads and then PATCHes what it planned from that read)."""

from __future__ import annotations

import time

import httpx

from bot.auth0.rate_limit import PacedTransport


def _bucket_of_two() -> httpx.MockTransport:
    """A tenant allowing 2 calls per 1.5 s window, saying so in every answer."""
    state = {"window": 0.0, "used": 0}

    def answer(request: httpx.Request) -> httpx.Response:
        now = time.time()
        if now >= state["window"]:
            state["window"], state["used"] = now + 1.5, 0
        state["used"] += 1
        headers = {
            "x-ratelimit-limit": "2",
            "x-ratelimit-remaining": str(max(2 - int(state["used"]), 0)),
            "x-ratelimit-reset": str(state["window"]),
        }
        return httpx.Response(200, json={}, headers=headers)

    return httpx.MockTransport(answer)


def test_a_pair_waits_once_before_the_first_call_and_never_between() -> None:
    """One unit is left in the bucket: a lone call would go at once, then its follower would
    wait for the reset. Paced back to back, the pair waits for room for both first and then
    goes with no wait between the two."""
    waits: list[float] = []
    transport = PacedTransport(_bucket_of_two(), on_wait=waits.append)
    with httpx.Client(transport=transport, base_url="https://tenant.example") as http:
        http.get("/api/v2/actions/actions/a")  # learn the bucket: one unit left
        started = time.monotonic()
        with transport.back_to_back(2):
            http.get("/api/v2/actions/actions/a")
            read_done = time.monotonic()
            http.patch("/api/v2/actions/actions/a", content=b"{}")
            between = time.monotonic() - read_done
    assert read_done - started > 0.5  # the wait came before the read
    assert between < 0.2  # and none between the read and the write
    assert len(waits) == 1


def test_calls_after_the_pair_are_paced_again() -> None:
    """Units reserved and not used are forgotten: the next call waits for room as usual."""
    waits: list[float] = []
    transport = PacedTransport(_bucket_of_two(), on_wait=waits.append)
    with httpx.Client(transport=transport, base_url="https://tenant.example") as http:
        http.get("/api/v2/actions/actions/a")
        with transport.back_to_back(2):
            http.get("/api/v2/actions/actions/a")
        started = time.monotonic()
        http.get("/api/v2/actions/actions/a")
    assert time.monotonic() - started > 0.5
    assert len(waits) == 2
