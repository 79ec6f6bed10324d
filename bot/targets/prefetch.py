"""What the request form's checks need from Auth0, read ahead while the modal is open."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bot.logs import get_logger
from bot.targets import Described, TargetKind, Targets

log = get_logger(__name__)
D = TypeVar("D")
Key = tuple[TargetKind, str]
# A submission trusts names read this recently; older ones are read again (bounded) first.
FRESH_FOR = 60.0
# While a modal shows a target, its names are read again this often, so they stay fresh.
REFRESH_EVERY = 20.0
# How long a modal counts as open after the last sign of it (opened, target picked, errors).
WATCH_FOR = 15 * 60.0
CAPACITY = 1024


@dataclass(frozen=True)
class Snapshot(Generic[D]):
    """A target as Auth0 described it and its secret names (never values), read at ``read_at``."""

    described: D
    names: tuple[str, ...]
    read_at: float


@dataclass
class _Entry(Generic[D]):
    snapshot: Snapshot[D] | None = None
    watchers: dict[str, float] = field(default_factory=dict)  # modal view id → watched until
    generation: int = 0  # bumped by forget(): reads begun before it are not stored
    inflight: Future[Snapshot[D]] | None = field(default=None, repr=False)


class Prefetch(Generic[D]):
    """A bounded cache of target → secret names: warmed when a modal shows a target, read
    again while it stays open, dropped when the bot changes that target. Only the form's
    checks use it; the apply asks Auth0 itself, so a stale entry can't cause a wrong change."""

    def __init__(
        self,
        read: Callable[[TargetKind, str], tuple[D, list[str]]],
        executor: Executor,
        *,
        fresh_for: float = FRESH_FOR,
        refresh_every: float = REFRESH_EVERY,
        watch_for: float = WATCH_FOR,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
        refresh_in_background: bool = True,
        on_lookup: Callable[[str], None] | None = None,
    ) -> None:
        self._read = read
        self._on_lookup = on_lookup  # told "hit" or "miss" for each submission's lookup
        self._executor = executor
        self.fresh_for = fresh_for
        self.refresh_every = refresh_every
        self.watch_for = watch_for
        self.capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, _Entry[D]] = OrderedDict()
        # Reads an entry let go of while they ran (forget, eviction): waited for when idling.
        self._orphans: set[Future[Snapshot[D]]] = set()
        self._stop = threading.Event()
        if not refresh_in_background:  # the caller runs refresh_due() itself
            self._stop.set()
        self._refresher: threading.Thread | None = None

    def watch(self, kind: TargetKind, target_id: str, viewer: str) -> None:
        """Modal ``viewer`` shows this target (and no other): read it unless just read, and
        keep it fresh while the modal stays open."""
        with self._lock:
            for other in self._entries.values():
                other.watchers.pop(viewer, None)
            entry = self._entry((kind, target_id))
            entry.watchers[viewer] = self._clock() + self.watch_for
            due = not (self._reading(entry) or self._within(entry, self.refresh_every))
        if due:
            self.read(kind, target_id)
        self._start_refresher()

    def unwatch(self, viewer: str) -> None:
        """Modal ``viewer`` is gone (submitted): its targets need no more refreshing for it."""
        with self._lock:
            for entry in self._entries.values():
                entry.watchers.pop(viewer, None)

    def fresh(self, kind: TargetKind, target_id: str) -> Snapshot[D] | None:
        """The names read within ``fresh_for`` seconds, or None; never waits for Auth0. Names
        older than ``refresh_every`` are read again in the background (refresh-ahead), so a
        target in steady use never falls back to a live read."""
        with self._lock:
            entry = self._entries.get((kind, target_id))
            hit = entry is not None and self._within(entry, self.fresh_for)
            if self._on_lookup is not None:
                self._on_lookup("hit" if hit else "miss")
            if entry is None or not hit:
                return None
            self._entries.move_to_end((kind, target_id))
            snapshot = entry.snapshot
            ahead = not (self._reading(entry) or self._within(entry, self.refresh_every))
        if ahead:
            self.read(kind, target_id)
        return snapshot

    def read(self, kind: TargetKind, target_id: str) -> Future[Snapshot[D]]:
        """The read of this target under way, or a new one; its result is cached."""
        with self._lock:
            return self._start((kind, target_id))

    def _start(self, key: Key) -> Future[Snapshot[D]]:
        """``read`` with the lock held."""
        entry = self._entry(key)
        if entry.inflight is not None and self._reading(entry):
            return entry.inflight
        future = self._executor.submit(self._fetch, key, entry.generation)
        entry.inflight = future
        return future

    def forget(self, kind: TargetKind, target_id: str) -> None:
        """The bot changed this target: drop its names (and any read begun before now); a
        modal still showing it gets them read again."""
        with self._lock:
            entry = self._entries.get((kind, target_id))
            if entry is None:
                return
            self._orphan(entry.inflight)
            entry.snapshot, entry.inflight = None, None
            entry.generation += 1
            watched = self._watched(entry, self._clock())
        if watched:
            self.read(kind, target_id)

    def refresh_due(self) -> int:
        """Read again every watched target read over ``refresh_every`` seconds ago, and drop
        entries nobody watches that are no longer fresh; the number of reads started."""
        now = self._clock()
        with self._lock:
            for key in [k for k, e in self._entries.items() if self._expired(e, now)]:
                del self._entries[key]
            due = [
                key
                for key, entry in self._entries.items()
                if self._watched(entry, now)
                and not (self._reading(entry) or self._within(entry, self.refresh_every))
            ]
            # Started under the lock: a modal closed meanwhile is not read again after it.
            for key in due:
                self._start(key)
        return len(due)

    def close(self) -> None:
        """Stop refreshing (reads under way finish in the executor's own time)."""
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join(timeout=5)

    def idle(self) -> bool:
        """Whether no read is under way right now."""
        with self._lock:
            return not self._under_way()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until the reads under way (and any they were replaced by) have finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                pending = self._under_way()
            if not pending:
                return True
            wait(pending, timeout=max(0.0, deadline - time.monotonic()))
        return False

    def _orphan(self, read: Future[Snapshot[D]] | None) -> None:
        """Keep a read its entry let go of (changed, evicted) while it still runs (with the
        lock held): still an Auth0 call under way. Finished ones go, so the set stays as small
        as the reads under way."""
        self._orphans = {f for f in self._orphans if not f.done()}
        if read is not None and not read.done():
            self._orphans.add(read)

    def _under_way(self) -> list[Future[Snapshot[D]]]:
        """The reads not finished yet (with the lock held); finished orphans are dropped."""
        self._orphans = {f for f in self._orphans if not f.done()}
        current = [e.inflight for e in self._entries.values() if e.inflight is not None]
        return [f for f in current if not f.done()] + list(self._orphans)

    def _fetch(self, key: Key, generation: int) -> Snapshot[D]:
        try:
            described, names = self._read(*key)
        except Exception as error:
            # The entry keeps what it had; it ages out, and the submission reads again.
            reason = getattr(error, "reason", type(error).__name__)
            log.warning("prefetch read failed", target=key[0], target_id=key[1], reason=reason)
            raise
        snapshot = Snapshot(described, tuple(names), self._clock())
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.generation == generation:
                entry.snapshot = snapshot
        return snapshot

    def _entry(self, key: Key) -> _Entry[D]:
        """The entry for ``key`` (created if missing), now the most recently used."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
            while len(self._entries) > self.capacity:
                _, evicted = self._entries.popitem(last=False)
                self._orphan(evicted.inflight)
        self._entries.move_to_end(key)
        return entry

    def _within(self, entry: _Entry[D], age: float) -> bool:
        """Whether the entry holds names read less than ``age`` seconds ago."""
        return entry.snapshot is not None and self._clock() - entry.snapshot.read_at < age

    @staticmethod
    def _reading(entry: _Entry[D]) -> bool:
        """Whether a read of the entry is on its way (a second one would only repeat it)."""
        return entry.inflight is not None and not entry.inflight.done()

    @staticmethod
    def _watched(entry: _Entry[D], now: float) -> bool:
        """Whether a modal still shows the target (watches that ran out are dropped)."""
        for viewer in [v for v, until in entry.watchers.items() if until <= now]:
            del entry.watchers[viewer]
        return bool(entry.watchers)

    def _expired(self, entry: _Entry[D], now: float) -> bool:
        """Nobody watches it, it is no longer fresh, and no read is on its way."""
        watched = self._watched(entry, now)
        return not (watched or self._within(entry, self.fresh_for) or self._reading(entry))

    def _start_refresher(self) -> None:
        """One thread per process, started by the first modal (none at import or fork)."""
        with self._lock:
            if self._refresher is not None or self._stop.is_set():
                return
            self._refresher = threading.Thread(target=self._refresh, name="prefetch", daemon=True)
        self._refresher.start()

    def _refresh(self) -> None:
        while not self._stop.wait(max(0.05, self.refresh_every / 4)):
            try:
                self.refresh_due()
            except RuntimeError:  # the executor shut down first: nothing more to read
                return
            except Exception:
                log.exception("prefetch refresh failed")


def target_reader(targets: Targets) -> Callable[[TargetKind, str], tuple[Described, list[str]]]:
    """How the prefetch reads a target: its secret names, then its description."""

    def read(kind: TargetKind, target_id: str) -> tuple[Described, list[str]]:
        # The names call answers 404 for a deleted target; the target itself usually comes
        # from the list the picker just loaded, saving a call against Auth0's rate limit.
        target = targets[kind]
        names = target.secret_names(target_id)
        return target.describe(target_id), names

    return read
