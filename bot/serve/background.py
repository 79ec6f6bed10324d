"""Work that runs after an ack: three thread pools, tracked so that shutdown can drain them."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from bot.latency.yielding import InFlight
from bot.logs import get_logger

log = get_logger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class ContextExecutor(ThreadPoolExecutor):
    """A thread pool that carries the submitter's contextvars (request id, user) into the task."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn`` in the pool inside a copy of the caller's context."""
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)  # type: ignore[arg-type]  # Context.run is generic over its own ParamSpec


class Background:
    """Three pools, so that no kind of work waits behind another: Slack follow-ups after an
    ack (a modal to open before its trigger dies), Auth0 reads a pending ack waits for, and
    applies, which may queue for minutes behind Auth0's rate limit."""

    def __init__(self) -> None:
        self.ui = _pool(16, "ui")
        self.lookups = _pool(8, "lookup")
        self.appliers = _pool(8, "apply")
        # The requests this process is answering (HTTP mode counts them; see bot.latency.yielding).
        self.requests = InFlight()
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def run(self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Run slow work after the ack; failures are logged with their traceback."""
        self._track(self.ui.submit(fn, *args, **kwargs))

    def apply(self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Run an apply in its own pool, tracked like other background work."""
        self._track(self.appliers.submit(fn, *args, **kwargs))

    def lookup(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Start a read that an ack is waiting for; the caller waits on the future."""
        return self.lookups.submit(fn, *args, **kwargs)

    def idle(self) -> bool:
        """Whether no tracked work is queued or running right now."""
        with self._lock:
            return not self._pending

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until background work, including work it queued in turn, has finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return True
            for future in pending:
                try:
                    future.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception:  # noqa: S112 - failures were logged by _done
                    continue
        return False

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Let queued work finish (within ``timeout``), then stop every pool; False if cut off."""
        finished = self.wait_idle(timeout)
        for pool in (self.ui, self.lookups, self.appliers):
            # Idle pools are joined; after a timeout, waiting longer would block the shutdown.
            pool.shutdown(wait=finished, cancel_futures=True)
        return finished

    def _track(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)
        error = future.exception()
        if error is not None:
            log.error("background task failed", exc_info=error)


def _pool(workers: int, name: str) -> ContextExecutor:
    return ContextExecutor(max_workers=workers, thread_name_prefix=name)
