"""The tenant's hooks, cached briefly so that option loads answer inside Slack's 3 seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, TimeoutError

from bot.auth0.client import Auth0Client, Hook
from bot.auth0.errors import Auth0Error
from bot.logs import get_logger

log = get_logger(__name__)


class HookCatalog:
    """Hook list with a TTL; a stale copy is served while Auth0 is slow."""

    def __init__(
        self,
        auth0: Auth0Client,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._auth0 = auth0
        # Its own thread, never the listeners' pool: a listener task waiting on a refresh
        # queued behind itself would deadlock a saturated pool.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hooks")
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._hooks: list[Hook] | None = None
        self._fetched_at = 0.0
        self._inflight: Future[list[Hook]] | None = None

    def hooks(self, deadline: float | None = None) -> list[Hook]:
        """All hooks; past ``deadline`` seconds, a stale or empty list instead of waiting."""
        with self._lock:
            fresh = self._hooks is not None and self._clock() - self._fetched_at < self._ttl
            cached = self._hooks
        if fresh and cached is not None:
            return cached
        future = self._refresh_once()
        try:
            return future.result(timeout=deadline)
        except TimeoutError:
            log.warning("hook list slow; answering from cache", cached=cached is not None)
            return cached or []

    def cached(self, hook_id: str) -> Hook | None:
        """The hook from a fresh cached list, without asking Auth0; None when not cached."""
        with self._lock:
            if self._hooks is None or self._clock() - self._fetched_at >= self._ttl:
                return None
            return next((h for h in self._hooks if h.id == hook_id), None)

    def _refresh_once(self) -> Future[list[Hook]]:
        """The refresh under way, or a new one: a burst of stale loads costs one list call."""
        with self._lock:
            if self._inflight is None or self._inflight.done():
                self._inflight = self._executor.submit(self._refresh)
            return self._inflight

    def close(self) -> None:
        """Stop the refresh thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _refresh(self) -> list[Hook]:
        hooks = self._auth0.list_hooks()
        with self._lock:
            self._hooks, self._fetched_at = hooks, self._clock()
        return hooks

    def find(self, key: str, deadline: float | None = None) -> Hook | None:
        """The hook whose id or name (case-insensitive) is ``key``."""
        try:
            hooks = self.hooks(deadline)
        except Auth0Error:
            return None
        lowered = key.lower()
        for hook in hooks:
            if hook.id == key or hook.name.lower() == lowered:
                return hook
        return None

    def search(self, query: str, deadline: float) -> list[Hook]:
        """Hooks whose name or id contains ``query``, sorted by name."""
        lowered = query.strip().lower()
        hooks = [h for h in self.hooks(deadline) if lowered in h.name.lower() or lowered in h.id]
        return sorted(hooks, key=lambda h: h.name.lower())

    def invalidate(self) -> None:
        """Forget the cached list (after Auth0 said a hook is gone)."""
        with self._lock:
            self._hooks = None
