"""The suite's one way to wait: poll a condition until it holds, or fail saying what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None],
    timeout: float = 10.0,
    *,
    every: float = 0.05,
    what: str | Callable[[], str] = "the condition",
) -> T:
    """Call ``condition`` until it returns something truthy and return that; after ``timeout``
    seconds fail with ``what`` (a callable is asked then, e.g. for the bot's output)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"{said}: not within {timeout} s")
        time.sleep(every)


def seconds_until(
    condition: Callable[[], object], timeout: float = 10.0, *, what: str = "the condition"
) -> float:
    """How long ``condition`` took to hold (``wait_until``'s failure after ``timeout``)."""
    started = time.monotonic()
    wait_until(condition, timeout, what=what)
    return time.monotonic() - started
