"""``InFlight``: background steps wait for a moment with no request in flight, bounded."""

from __future__ import annotations

import threading
import time

import pytest

from bot.latency.yielding import InFlight
from tests.waiting import wait_until


def test_with_no_request_in_flight_a_step_goes_at_once() -> None:
    in_flight = InFlight()
    began = time.monotonic()
    in_flight.quiet_by(began + 5)
    assert time.monotonic() - began < 0.5


def test_a_step_waits_for_the_request_in_flight_to_be_answered() -> None:
    """The step starts once the last request in flight is answered, not before."""
    in_flight = InFlight()
    stepped: list[bool] = []

    def step() -> None:
        in_flight.quiet_by(time.monotonic() + 10)
        stepped.append(True)

    with in_flight.request(), in_flight.request():
        stepping = threading.Thread(target=step)
        stepping.start()
        wait_until(lambda: in_flight.waiting == 1, 5, what="the step waiting")
        assert stepped == []  # two requests in flight
    stepping.join(5)
    assert stepped == [True]


@pytest.mark.parametrize("wait", [0.0, 0.3])
def test_under_steady_requests_a_step_waits_no_longer_than_its_deadline(wait: float) -> None:
    """Requests that never stop do not starve background work: it goes at its deadline."""
    in_flight = InFlight()
    with in_flight.request():
        began = time.monotonic()
        in_flight.quiet_by(began + wait)
        waited = time.monotonic() - began
    assert wait <= waited < wait + 0.5


def test_a_request_that_fails_still_stops_counting() -> None:
    in_flight = InFlight()
    with pytest.raises(RuntimeError), in_flight.request():
        raise RuntimeError("the listener failed")
    began = time.monotonic()
    in_flight.quiet_by(began + 5)
    assert time.monotonic() - began < 0.5
