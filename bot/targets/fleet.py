"""Every tenant the bot serves, each with its own clients, targets and read-ahead.

A tenant's token cache, rate pacing, hook and action catalogs, prefetch entries and per-action
locks are its own: one tenant slow or rate-limited never holds another back (CONTRACT §6).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bot.targets.base import (
    DEFAULT_TENANT,
    TENANT_SEPARATOR,
    Described,
    Target,
    TargetKind,
    Targets,
)


@dataclass
class Site:
    """One tenant as the bot serves it: its targets, and what reads ahead for it."""

    name: str
    targets: Targets
    catalog: Any = None  # the hooks' catalog (bot.targets.catalog.HookCatalog)
    prefetch: Any = None  # bot.targets.prefetch.Prefetch[Described]


class UnknownTenant(KeyError):
    """A reference names a tenant the bot does not serve."""


@dataclass(frozen=True)
class Found:
    """What a command's target text names: the target, or why none (unknown, ambiguous)."""

    target: Described | None
    tenants: tuple[str, ...] = ()  # a bare name several tenants have: theirs, in order


class Fleet:
    """The tenants in the policy's order (one, ``default``, without a policy file)."""

    def __init__(self, sites: Mapping[str, Site]) -> None:
        self._sites = dict(sites)

    @classmethod
    def single(cls, targets: Targets, name: str = DEFAULT_TENANT) -> Fleet:
        """One tenant's targets (the state machine's tests, and the variables' tenant)."""
        return cls({name: Site(name, targets)})

    def __iter__(self) -> Iterator[Site]:
        """Every tenant, in the policy's order."""
        return iter(self._sites.values())

    def __len__(self) -> int:
        return len(self._sites)

    def __getitem__(self, tenant: str) -> Site:
        """The tenant's site; ``UnknownTenant`` when the bot does not serve it."""
        try:
            return self._sites[tenant]
        except KeyError:
            raise UnknownTenant(tenant) from None

    def __contains__(self, tenant: object) -> bool:
        return tenant in self._sites

    @property
    def named(self) -> bool:
        """Whether the tenants come from a policy file (their names then show everywhere)."""
        return any(name != DEFAULT_TENANT for name in self._sites)

    @property
    def first(self) -> Site:
        """The first tenant (the only one without a policy file)."""
        return next(iter(self._sites.values()))

    def target(self, tenant: str, kind: TargetKind | str) -> Target:
        """The implementation of ``kind`` in ``tenant``."""
        return self[tenant].targets[kind]

    def find(self, text: str) -> Found:
        """The target a command names: ``tenant/name``, ``tenant/action:ID``, or a bare name,
        id or ``action:ID`` that exactly one tenant has. Text before a ``/`` that names no
        tenant is part of a bare name (``roles/permissions``)."""
        tenant, separator, key = text.partition(TENANT_SEPARATOR)
        site = self._sites.get(tenant) if separator else None
        if site is not None:
            return Found(site.targets.find(key) if key else None)
        hits = [(site.name, d) for site in self if (d := site.targets.find(text)) is not None]
        if len(hits) == 1:
            return Found(hits[0][1])
        return Found(None, tuple(name for name, _ in hits))
