"""Background work that yields to requests: it waits for a moment with none in flight, bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# A background step waits at most this long after its pass began for a moment with no request
# in flight, then runs anyway: messages stay a fraction of a second behind under load.
YIELD_FOR = 0.25


class InFlight:
    """Counts the requests being answered now (one process has one GIL: a request answered
    while a Slack message is being delivered waits for it), so that background steps can
    start between requests instead of beside them."""

    def __init__(self) -> None:
        self._quiet = threading.Condition()
        self._count = 0
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Background steps waiting for a quiet moment right now."""
        with self._quiet:
            return self._waiting

    @contextmanager
    def request(self) -> Iterator[None]:
        """Counts one request while it is answered."""
        with self._quiet:
            self._count += 1
        try:
            yield
        finally:
            with self._quiet:
                self._count -= 1
                if not self._count and self._waiting:
                    self._quiet.notify_all()

    def quiet_by(self, deadline: float) -> None:
        """Return once no request is in flight, or at ``deadline`` (``time.monotonic``)."""
        with self._quiet:
            self._waiting += 1
            try:
                while self._count:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    self._quiet.wait(left)
            finally:
                self._waiting -= 1
