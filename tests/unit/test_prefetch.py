"""``Prefetch``: names read ahead, trusted while fresh, re-read while watched, dropped on change."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from bot.auth0.errors import HookNotFound
from bot.targets import TargetKind
from bot.targets.prefetch import Prefetch

HOOK = TargetKind.HOOK


@dataclass
class Clock:
    """Seconds that pass only when a test says so."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Tenant:
    """What Auth0 holds, and every read of it (a read may be held until released)."""

    names: dict[str, list[str]] = field(default_factory=lambda: {"h1": ["A"], "h2": ["B"]})
    reads: list[str] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    def read(self, kind: TargetKind, target_id: str) -> tuple[str, list[str]]:
        self.reads.append(target_id)
        names = list(self.names.get(target_id, ()))  # what Auth0 held when asked
        assert self.gate.wait(5)
        if target_id not in self.names:
            raise HookNotFound(f"hook {target_id} not found")
        return f"described {target_id}", names


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


def test_a_watched_target_is_read_once_and_trusted_while_fresh(pool: ThreadPoolExecutor) -> None:
    """Opening a modal on a target reads it in the background; within ``fresh_for`` the names
    come from the cache, after it they don't (the submission reads live instead)."""
    tenant, clock = Tenant(), Clock()
    prefetch = Prefetch(
        tenant.read, pool, clock=clock, refresh_in_background=False, fresh_for=60, refresh_every=20
    )
    assert prefetch.fresh(HOOK, "h1") is None
    prefetch.watch(HOOK, "h1", "V1")
    prefetch.watch(HOOK, "h1", "V2")  # read just now: no second read
    assert prefetch.wait_idle(5)
    snapshot = prefetch.fresh(HOOK, "h1")
    assert (
        snapshot is not None and snapshot.names == ("A",) and snapshot.described == "described h1"
    )
    assert tenant.reads == ["h1"]
    clock.now += 60
    assert prefetch.fresh(HOOK, "h1") is None
    prefetch.close()


def test_names_in_use_are_read_again_ahead_of_going_stale(pool: ThreadPoolExecutor) -> None:
    """A submission using names older than ``refresh_every`` gets them at once and starts a
    background read, so steady use of a target never waits for Auth0."""
    tenant, clock = Tenant(), Clock()
    prefetch = Prefetch(
        tenant.read, pool, clock=clock, refresh_in_background=False, fresh_for=60, refresh_every=20
    )
    prefetch.read(HOOK, "h1").result(5)
    clock.now += 10
    assert prefetch.fresh(HOOK, "h1") is not None and prefetch.wait_idle(5)
    assert tenant.reads == ["h1"]
    tenant.names["h1"] = ["A", "NEW"]
    clock.now += 15
    old = prefetch.fresh(HOOK, "h1")
    assert old is not None and old.names == ("A",)
    assert prefetch.wait_idle(5) and tenant.reads == ["h1", "h1"]
    clock.now += 50  # 65 s after the first read, 50 after the second
    new = prefetch.fresh(HOOK, "h1")
    assert new is not None and new.names == ("A", "NEW")


def test_reads_of_one_target_at_once_cost_one_call(pool: ThreadPoolExecutor) -> None:
    """A submission's live read joins the read a pick started, instead of asking again."""
    tenant, clock = Tenant(), Clock()
    tenant.gate.clear()
    prefetch = Prefetch(tenant.read, pool, clock=clock, refresh_in_background=False)
    first, second = prefetch.read(HOOK, "h1"), prefetch.read(HOOK, "h1")
    assert first is second
    tenant.gate.set()
    assert first.result(5).names == ("A",)
    assert tenant.reads == ["h1"]


def test_watched_targets_are_read_again_and_unwatched_ones_age_out(
    pool: ThreadPoolExecutor,
) -> None:
    """While a modal shows a target it is re-read every ``refresh_every``; once submitted (or
    after ``watch_for``) it is not, and the entry is dropped when no longer fresh."""
    tenant, clock = Tenant(), Clock()
    prefetch = Prefetch(
        tenant.read,
        pool,
        clock=clock,
        refresh_in_background=False,
        fresh_for=60,
        refresh_every=20,
        watch_for=100,
    )
    prefetch.watch(HOOK, "h1", "V1")
    prefetch.watch(HOOK, "h2", "V2")
    assert prefetch.wait_idle(5)
    assert prefetch.refresh_due() == 0  # both just read
    tenant.names["h1"] = ["A", "ADDED_IN_DASHBOARD"]
    clock.now += 20
    prefetch.unwatch("V2")  # V2 was submitted: its modal closed
    assert prefetch.refresh_due() == 1 and prefetch.wait_idle(5)
    snapshot = prefetch.fresh(HOOK, "h1")
    assert snapshot is not None and snapshot.names == ("A", "ADDED_IN_DASHBOARD")
    clock.now += 100  # V1's watch ran out too
    assert prefetch.refresh_due() == 0
    assert prefetch.fresh(HOOK, "h1") is None and prefetch.fresh(HOOK, "h2") is None
    assert tenant.reads == ["h1", "h2", "h1"]


def test_a_modal_that_picks_another_target_stops_watching_the_first(
    pool: ThreadPoolExecutor,
) -> None:
    """One modal shows one target: picking another one ends the refreshes of the first."""
    tenant, clock = Tenant(), Clock()
    prefetch = Prefetch(
        tenant.read, pool, clock=clock, refresh_in_background=False, refresh_every=20
    )
    prefetch.watch(HOOK, "h1", "V1")
    prefetch.watch(HOOK, "h2", "V1")
    assert prefetch.wait_idle(5)
    clock.now += 20
    assert prefetch.refresh_due() == 1 and prefetch.wait_idle(5)
    assert tenant.reads == ["h1", "h2", "h2"]


def test_forget_drops_the_names_and_discards_a_read_begun_before(
    pool: ThreadPoolExecutor,
) -> None:
    """After the bot changes a target, neither the cached names nor a read that started
    before the change are trusted; a modal still watching gets a fresh read."""
    tenant, clock = Tenant(), Clock()
    prefetch = Prefetch(tenant.read, pool, clock=clock, refresh_in_background=False)
    tenant.gate.clear()
    before = prefetch.read(HOOK, "h1")  # under way while the bot applies a change
    tenant.names["h1"] = ["A", "APPLIED"]
    prefetch.forget(HOOK, "h1")
    tenant.gate.set()
    assert before.result(5).names == ("A",)
    assert prefetch.fresh(HOOK, "h1") is None
    prefetch.watch(HOOK, "h2", "V1")
    assert prefetch.wait_idle(5)
    tenant.names["h2"] = ["B", "APPLIED"]
    prefetch.forget(HOOK, "h2")
    assert prefetch.wait_idle(5)
    snapshot = prefetch.fresh(HOOK, "h2")
    assert snapshot is not None and snapshot.names == ("B", "APPLIED")


def test_a_failed_read_caches_nothing_and_raises_to_whoever_waits(
    pool: ThreadPoolExecutor,
) -> None:
    """Auth0's refusal reaches the waiting submission as the domain error; nothing is cached."""
    tenant, clock = Tenant(), Clock()
    prefetch = Prefetch(tenant.read, pool, clock=clock, refresh_in_background=False)
    with pytest.raises(HookNotFound):
        prefetch.read(HOOK, "gone").result(5)
    assert prefetch.fresh(HOOK, "gone") is None


def test_the_cache_holds_at_most_capacity_targets(pool: ThreadPoolExecutor) -> None:
    """The least recently used target is dropped first, so memory stays bounded."""
    tenant, clock = Tenant(names={f"h{n}": [] for n in range(4)}), Clock()
    prefetch = Prefetch(tenant.read, pool, clock=clock, refresh_in_background=False, capacity=3)
    for n in range(3):
        prefetch.read(HOOK, f"h{n}").result(5)
    assert prefetch.fresh(HOOK, "h0") is not None  # h0 used again: h1 is now the oldest
    prefetch.read(HOOK, "h3").result(5)
    assert [prefetch.fresh(HOOK, f"h{n}") is not None for n in range(4)] == [
        True,
        False,
        True,
        True,
    ]


def test_each_lookup_is_counted_as_a_hit_or_a_miss(pool: ThreadPoolExecutor) -> None:
    """``on_lookup`` hears "miss" for a target never read or read too long ago, "hit" for
    fresh names (what /metrics counts as hook_secret_bot_prefetch_lookups_total)."""
    tenant, clock = Tenant(), Clock()
    heard: list[str] = []
    prefetch = Prefetch(
        tenant.read,
        pool,
        clock=clock,
        refresh_in_background=False,
        fresh_for=60,
        refresh_every=20,
        on_lookup=heard.append,
    )
    assert prefetch.fresh(HOOK, "h1") is None
    prefetch.read(HOOK, "h1").result(5)
    assert prefetch.fresh(HOOK, "h1") is not None
    clock.now += 61
    assert prefetch.fresh(HOOK, "h1") is None
    assert heard == ["miss", "hit", "miss"]


def test_a_read_a_change_made_stale_is_still_waited_for(pool: ThreadPoolExecutor) -> None:
    """The bot changes a target while its names are being read: the cache drops that read,
    yet waiting for idle still waits for it (it is an Auth0 call under way)."""
    tenant, clock = Tenant(), Clock()
    prefetch = Prefetch(tenant.read, pool, clock=clock, refresh_in_background=False)
    tenant.gate.clear()  # Auth0 holds the read
    prefetch.read(HOOK, "h1")
    prefetch.forget(HOOK, "h1")  # nobody watches it: nothing is read again
    assert not prefetch.idle()
    assert not prefetch.wait_idle(0.2)
    tenant.gate.set()
    assert prefetch.wait_idle(5) and prefetch.idle()
    assert prefetch.fresh(HOOK, "h1") is None  # what the stale read returned is not trusted
    prefetch.close()


def test_a_read_evicted_from_a_full_cache_is_still_waited_for(pool: ThreadPoolExecutor) -> None:
    """A read pushed out of the cache by newer targets is still an Auth0 call under way."""
    tenant, clock = Tenant(), Clock()

    h2_read = threading.Event()

    def read(kind: TargetKind, target_id: str) -> tuple[str, list[str]]:
        answer = tenant.read(kind, target_id)
        if target_id == "h1":  # the evicted read is the slower one: it ends after h2's
            assert h2_read.wait(5)
        else:
            h2_read.set()
        return answer

    prefetch = Prefetch(read, pool, clock=clock, refresh_in_background=False, capacity=1)
    tenant.gate.clear()
    first = prefetch.read(HOOK, "h1")
    prefetch.read(HOOK, "h2")  # h1's entry goes, its read goes on
    tenant.gate.set()
    assert prefetch.wait_idle(5) and first.done()
    prefetch.close()
