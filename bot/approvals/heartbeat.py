"""An apply's heartbeat: renews its short lease while it runs, and notices when it is slow."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from bot.logs import get_logger

log = get_logger(__name__)


class Heartbeat:
    """Calls ``renew`` every ``every`` seconds while the ``with`` block runs, and ``slow`` once
    when it has run ``slow_after`` seconds; failures are logged (the lease then lapses)."""

    def __init__(
        self,
        renew: Callable[[], None],
        slow: Callable[[], None],
        *,
        every: float,
        slow_after: float,
    ) -> None:
        self.renew, self.slow = renew, slow
        self.every, self.slow_after = every, slow_after
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="apply-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Joined before the outcome is recorded: no renewal can race the final transition.
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        started, told = time.monotonic(), False
        while not self._stop.wait(self.every):
            try:
                self.renew()
                if not told and time.monotonic() - started >= self.slow_after:
                    told = True
                    self.slow()
            except Exception:
                log.exception("apply heartbeat failed")
