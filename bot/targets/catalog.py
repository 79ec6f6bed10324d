"""The tenant's targets, cached briefly so that option loads answer inside Slack's 3 seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, TimeoutError
from typing import Generic, Protocol, TypeVar

from bot.auth0.errors import Auth0Error
from bot.auth0.hooks import Hook, HooksApi
from bot.auth0.transport import Auth0Transport
from bot.logs import get_logger

log = get_logger(__name__)


class _Named(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)


class Catalog(Generic[T]):
    """A list of one kind of target with a TTL; a stale copy is served while Auth0 is slow."""

    def __init__(
        self,
        load: Callable[[], list[T]],
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        name: str = "targets",
    ) -> None:
        self._load = load
        # Its own thread, never the listeners' pool: a listener task waiting on a refresh
        # queued behind itself would deadlock a saturated pool.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._items: list[T] | None = None
        self._fetched_at = 0.0
        self._inflight: Future[list[T]] | None = None

    def items(self, deadline: float | None = None) -> list[T]:
        """Every target; past ``deadline`` seconds, a stale or empty list instead of waiting."""
        with self._lock:
            fresh = self._items is not None and self._clock() - self._fetched_at < self._ttl
            cached = self._items
        if fresh and cached is not None:
            return cached
        future = self._refresh_once()
        try:
            return future.result(timeout=deadline)
        except TimeoutError:
            log.warning("target list slow; answering from cache", cached=cached is not None)
            return cached or []

    def cached(self, target_id: str) -> T | None:
        """The target from a fresh cached list, without asking Auth0; None when not cached."""
        with self._lock:
            if self._items is None or self._clock() - self._fetched_at >= self._ttl:
                return None
            return next((h for h in self._items if h.id == target_id), None)

    def known(self, target_id: str) -> T | None:
        """The target with this id from the last list read, however old (names outlive a TTL),
        without asking Auth0; None when no list holds it."""
        with self._lock:
            items = self._items or []
        return next((t for t in items if t.id == target_id), None)

    def _refresh_once(self) -> Future[list[T]]:
        """The refresh under way, or a new one: a burst of stale loads costs one list call."""
        with self._lock:
            if self._inflight is None or self._inflight.done():
                self._inflight = self._executor.submit(self._refresh)
            return self._inflight

    def close(self) -> None:
        """Stop the refresh thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _refresh(self) -> list[T]:
        items = self._load()
        with self._lock:
            self._items, self._fetched_at = items, self._clock()
        return items

    def find(self, key: str, deadline: float | None = None) -> T | None:
        """The target whose id or name (case-insensitive) is ``key``."""
        try:
            items = self.items(deadline)
        except Auth0Error:
            return None
        lowered = key.lower()
        return next((t for t in items if t.id == key or t.name.lower() == lowered), None)

    def search(self, query: str, deadline: float) -> list[T]:
        """Targets whose name or id contains ``query``, sorted by name."""
        lowered = query.strip().lower()
        found = [t for t in self.items(deadline) if lowered in t.name.lower() or lowered in t.id]
        return sorted(found, key=lambda t: t.name.lower())

    def invalidate(self) -> None:
        """Forget the cached list (after Auth0 said a target is gone)."""
        with self._lock:
            self._items = None


class HookCatalog(Catalog[Hook]):
    """The tenant's hooks."""

    def __init__(
        self, auth0: Auth0Transport, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(HooksApi(auth0).list_hooks, ttl, clock, name="hooks")

    def hooks(self, deadline: float | None = None) -> list[Hook]:
        """All hooks; past ``deadline`` seconds, a stale or empty list instead of waiting."""
        return self.items(deadline)
