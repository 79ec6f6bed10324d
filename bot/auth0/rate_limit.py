"""What happens on a 429 from Auth0: calls queue for the limit; a 429 is waited out, on a budget.

Pacing, before a call is sent (``PacedTransport``, under the transport's httpx client): Auth0
answers every Management API call with ``x-ratelimit-limit``, ``-remaining`` and ``-reset``
(when the bucket is full again, UNIX seconds). A client that only reacts to 429 makes every
waiting thread sleep until the same reset and retry at the same moment: on a free tenant (2 a
second) most of them meet another 429, and the unluckiest run out of their wait budget and fail
a request that only had to queue. ``PacedTransport`` queues calls in arrival order instead and
lets the next one go only while the bucket, as the last answer described it, has room. The
token endpoint has its own limits and is not paced.

Waiting, after a 429 (``RateLimitWaits``, in the transport's send loop): the call is sent again
at ``retry_at`` (Retry-After in seconds or as a date, else ``x-ratelimit-reset``, else a second
from now), never sooner than ``MIN_WAIT``. One public call (which may send several requests)
has a ``WaitBudget`` of ``rate_limit_deadline`` seconds for such waits; a wait that would pass
it raises ``RateLimited`` with the instant Auth0 named, without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

from bot.auth0.errors import RateLimited
from bot.logs import get_logger

log = get_logger(__name__)

# A 429 that says nothing about when to come back (neither Retry-After nor x-ratelimit-reset):
# wait about one refill, and hold the paced calls as long.
DEFAULT_PAUSE: Final = 1.0
# Our clock may run ahead of Auth0's reset instant: never answer a 429 with an instant retry.
MIN_WAIT: Final = 0.1


# Waiting out a 429 ------------------------------------------------------------------


class WaitBudget:
    """Seconds one public call may still spend waiting out 429s."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds


class RateLimitWaits:
    """How one client answers a 429: wait as long as Auth0 says, within the call's budget."""

    def __init__(
        self,
        deadline: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._deadline = deadline
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait

    def budget(self) -> WaitBudget:
        """A full budget, for one public call."""
        return WaitBudget(self._deadline)

    def wait_out(self, response: httpx.Response, budget: WaitBudget) -> None:
        """Sleep until Auth0 said to try again, or raise ``RateLimited`` if that would pass
        the budget."""
        now = self._clock()
        again = retry_at(response.headers, now)
        wait = max(again - now, MIN_WAIT)
        if wait > budget.left:
            raise RateLimited(retry_at=again)
        budget.left -= wait
        log.warning("auth0 rate limited, waiting", wait_s=round(wait, 3))
        if self._on_wait is not None:
            self._on_wait(wait)
        self._sleep(wait)


def retry_at(headers: httpx.Headers, now: float) -> float:
    """When Auth0 says to try again: Retry-After if sent, else x-ratelimit-reset (epoch)."""
    retry_after = _seconds_after(headers.get("retry-after"), now)
    if retry_after is not None:
        return now + retry_after
    try:
        return float(headers["x-ratelimit-reset"])
    except (KeyError, ValueError):
        return now + DEFAULT_PAUSE


def _seconds_after(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    except (TypeError, ValueError):
        return None


# Pacing calls to the limit ----------------------------------------------------------


class PacedTransport(httpx.BaseTransport):
    """An httpx transport that paces requests under ``paced_prefix`` to the server's limit."""

    def __init__(
        self,
        inner: httpx.BaseTransport | None = None,
        *,
        paced_prefix: str = "/api/",
        clock: Callable[[], float] = time.time,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._inner = inner or httpx.HTTPTransport()
        self._prefix = paced_prefix
        self._gate = Gate(clock, on_wait)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.startswith(self._prefix):
            return self._inner.handle_request(request)
        self._gate.enter()
        try:
            response = self._inner.handle_request(request)
        except BaseException:
            self._gate.leave(None)
            raise
        self._gate.leave(response)
        return response

    def close(self) -> None:
        self._inner.close()

    @contextmanager
    def back_to_back(self, calls: int) -> Iterator[None]:
        """Wait once for room for ``calls`` paced calls that this thread then sends one after
        another, with no wait between them (a read and the write planned from it). Inside an
        outer reservation that still covers ``calls``, nothing more is reserved."""
        if self._gate.prepaid() >= calls:
            yield
            return
        self._gate.reserve(calls)
        try:
            yield
        finally:
            self._gate.release_reserved()


class Gate:
    """A FIFO queue in front of a token bucket whose state the server's answers report.

    Until the first answer, one call at a time goes (nothing is known about the bucket yet).
    After the bucket was assumed full again at its reset time, the old reset time says
    nothing more: once those units are spent, the next caller waits for a fresh answer to
    learn the new reset time (or ``DEFAULT_PAUSE`` if none comes), instead of refilling again.
    """

    def __init__(
        self, clock: Callable[[], float] = time.time, on_wait: Callable[[float], None] | None = None
    ) -> None:
        self._clock = clock
        self._on_wait = on_wait
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0
        self._limit: int | None = None
        self._remaining: int | None = None  # None: unknown, let calls through
        self._reset_at: float | None = None  # None: not known since the last refill
        self._answered = False
        self._in_flight = 0
        self._local = threading.local()  # units a thread reserved for its next calls

    def reserve(self, units: int) -> None:
        """Wait for this caller's turn and for room for ``units`` calls; take them all."""
        self._turn(units, flying=0)
        self._local.prepaid = units

    def prepaid(self) -> int:
        """Units this thread reserved and has not used yet."""
        return int(getattr(self._local, "prepaid", 0))

    def release_reserved(self) -> None:
        """Forget what this thread reserved and did not use."""
        self._local.prepaid = 0

    def enter(self) -> None:
        """Wait for this caller's turn and for room in the bucket; then take one unit (or use
        one this thread reserved)."""
        prepaid = getattr(self._local, "prepaid", 0)
        if prepaid > 0:
            self._local.prepaid = prepaid - 1
            with self._cond:
                self._in_flight += 1
            return
        self._turn(1, flying=1)

    def _turn(self, units: int, flying: int) -> None:
        """In arrival order: wait for room for ``units``, take them; ``flying`` calls go."""
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cond.wait()
            try:
                self._wait_for_room(units)
                self._in_flight += flying
            finally:
                self._serving += 1
                self._cond.notify_all()

    def _wait_for_room(self, units: int) -> None:
        started = time.monotonic()
        while not self._answered and self._in_flight > 0:
            self._cond.wait()
        while self._remaining is not None and self._remaining < min(units, self._limit or 1):
            if self._reset_at is None:
                # Wait for an answer to say when the bucket is full again.
                if not self._cond.wait(DEFAULT_PAUSE):
                    self._refill()
                continue
            left = self._reset_at - self._clock()
            if left <= 0:
                self._refill()
                break
            self._cond.wait(left)
        if self._remaining is not None:
            self._remaining -= units
        waited = time.monotonic() - started
        if waited > 0.001 and self._on_wait is not None:
            self._on_wait(waited)

    def _refill(self) -> None:
        self._remaining = self._limit
        self._reset_at = None

    def leave(self, response: httpx.Response | None) -> None:
        """A call entered earlier is over: learn from its answer, if it got one."""
        with self._cond:
            self._in_flight -= 1
            if response is not None:
                self._answered = True
                self._learn(response.status_code, response.headers)
            self._cond.notify_all()

    def _learn(self, status: int, headers: httpx.Headers) -> None:
        limit = _int(headers.get("x-ratelimit-limit"))
        remaining = _int(headers.get("x-ratelimit-remaining"))
        reset = _float(headers.get("x-ratelimit-reset"))
        if limit is not None:
            self._limit = limit
        if status == 429:
            remaining = 0
            retry_after = _float(headers.get("retry-after"))
            if retry_after is not None:
                reset = self._clock() + retry_after
            elif reset is None:
                reset = self._clock() + DEFAULT_PAUSE
        if remaining is not None:
            # Answers to calls still in flight may be older than what was counted since.
            known = self._remaining
            self._remaining = remaining if known is None else min(known, remaining)
        if reset is not None:
            self._reset_at = reset if self._reset_at is None else max(self._reset_at, reset)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
