"""The seam to "the thing holding secrets": one interface, one implementation per kind of target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pydantic import SecretStr

from bot.auth0.client import Auth0Client, Hook
from bot.catalog import HookCatalog
from bot.models import Kind


class TargetKind(StrEnum):
    """Which kind of Auth0 object a request changes (the audit's ``target`` field)."""

    HOOK = "hook"


@dataclass(frozen=True)
class Change:
    """One change to apply: what to do to which secret of which target."""

    kind: Kind
    target_id: str
    name: str
    value: SecretStr | None  # None for a removal


class Target(Protocol):
    """What the workflow and the listeners need from one kind of target."""

    kind: TargetKind

    def listing(self, deadline: float | None = None) -> list[Hook]:
        """Every target of this kind, answered within ``deadline`` seconds (maybe stale)."""

    def find(self, key: str) -> Hook | None:
        """The target whose id or name is ``key``."""

    def search(self, query: str, deadline: float) -> list[Hook]:
        """Targets matching ``query``, for a picker."""

    def describe(self, target_id: str) -> Hook:
        """The target as Auth0 describes it now."""

    def secret_names(self, target_id: str) -> list[str]:
        """The names of the target's secrets (never values)."""

    def apply(self, change: Change) -> None:
        """Send one change; raises an ``Auth0Error`` when Auth0 refuses or cannot answer."""

    def landed(self, change: Change) -> bool:
        """After an unknown outcome, whether the change is already visible (read back)."""

    def forget(self) -> None:
        """Drop what is cached about these targets (one of them turned out to be gone)."""


class HookTarget:
    """Auth0 Hooks: secrets live on the hook and change through its secrets endpoint."""

    kind = TargetKind.HOOK

    def __init__(self, auth0: Auth0Client, catalog: HookCatalog) -> None:
        self.auth0 = auth0
        self.catalog = catalog

    def listing(self, deadline: float | None = None) -> list[Hook]:
        """Every hook, from the short-lived catalog."""
        return self.catalog.hooks(deadline)

    def find(self, key: str) -> Hook | None:
        """The hook whose id or name (case-insensitive) is ``key``."""
        return self.catalog.find(key)

    def search(self, query: str, deadline: float) -> list[Hook]:
        """Hooks whose name or id contains ``query``."""
        return self.catalog.search(query, deadline)

    def describe(self, target_id: str) -> Hook:
        """The hook, from the list the picker just loaded when fresh (one Auth0 call fewer)."""
        return self.catalog.cached(target_id) or self.auth0.get_hook(target_id)

    def secret_names(self, target_id: str) -> list[str]:
        """The hook's secret names; a deleted hook raises ``HookNotFound``."""
        return self.auth0.get_secret_names(target_id)

    def apply(self, change: Change) -> None:
        """POST, PATCH or DELETE the hook's secrets."""
        if change.kind is Kind.REMOVE:
            self.auth0.delete_secrets(change.target_id, [change.name])
        elif change.value is None:
            raise ValueError(f"a {change.kind} change needs a value")
        elif change.kind is Kind.ADD:
            self.auth0.add_secrets(change.target_id, {change.name: change.value})
        else:
            self.auth0.update_secrets(change.target_id, {change.name: change.value})

    def landed(self, change: Change) -> bool:
        """Whether an earlier attempt reached Auth0 (a rotation can't be told, so: no)."""
        present = change.name in self.auth0.get_secret_names(change.target_id)
        return (change.kind is Kind.ADD and present) or (change.kind is Kind.REMOVE and not present)

    def forget(self) -> None:
        """Reload the hook list next time."""
        self.catalog.invalidate()


class Targets:
    """Every kind of target the bot can change, keyed by kind."""

    def __init__(self, *targets: Target) -> None:
        self._by_kind: Mapping[TargetKind, Target] = {t.kind: t for t in targets}

    def __getitem__(self, kind: TargetKind | str) -> Target:
        """The implementation for ``kind``."""
        return self._by_kind[TargetKind(kind)]

    @property
    def hooks(self) -> Target:
        """The hook target (the only kind the request form offers so far)."""
        return self[TargetKind.HOOK]
