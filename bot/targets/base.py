"""What every kind of target shares: its reference, its description, one change, the seam."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Protocol

from pydantic import SecretStr

from bot.approvals.states import Kind

# The tenant of the AUTH0_* variables (no policy file): its references carry no prefix.
DEFAULT_TENANT: Final = "default"
ACTION_PREFIX: Final = "action:"
# ``prod/action:{id}``: a policy file's tenants prefix their option values (CONTRACT §6).
TENANT_SEPARATOR: Final = "/"
_ID: Final = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_TENANT: Final = re.compile(r"^[a-z0-9-]{1,32}$")


class TargetKind(StrEnum):
    """Which kind of Auth0 object a request changes (the audit's ``target`` field)."""

    HOOK = "hook"
    ACTION = "action"


@dataclass(frozen=True)
class TargetRef:
    """Which target: its kind, its Auth0 id and the tenant it lives in."""

    kind: TargetKind
    id: str
    tenant: str = DEFAULT_TENANT

    @property
    def key(self) -> str:
        """The picker's option value: a hook id, or ``action:`` and the action id; prefixed by
        the tenant's name and ``/`` for a policy file's tenants (``prod/action:{id}``)."""
        inner = f"{ACTION_PREFIX}{self.id}" if self.kind is TargetKind.ACTION else self.id
        return inner if self.tenant == DEFAULT_TENANT else f"{self.tenant}{TENANT_SEPARATOR}{inner}"

    @classmethod
    def parse(cls, key: str) -> TargetRef | None:
        """The reference an option value names, or None when it names none."""
        tenant, separator, inner = key.rpartition(TENANT_SEPARATOR)
        if not separator:
            tenant = DEFAULT_TENANT
        elif not _TENANT.match(tenant):
            return None
        kind = TargetKind.ACTION if inner.startswith(ACTION_PREFIX) else TargetKind.HOOK
        target_id = inner.removeprefix(ACTION_PREFIX)
        return cls(kind, target_id, tenant) if _ID.match(target_id) else None


@dataclass(frozen=True)
class Described:
    """A target as a picker, a form or a list shows it (hooks and actions alike)."""

    ref: TargetRef
    name: str
    trigger_id: str
    enabled: bool = True

    @property
    def id(self) -> str:
        """The Auth0 id."""
        return self.ref.id

    @property
    def kind(self) -> TargetKind:
        """Hook or action."""
        return self.ref.kind


@dataclass(frozen=True)
class Change:
    """One change to apply: what to do to which secret of which target."""

    kind: Kind
    target_id: str
    name: str
    value: SecretStr | None  # None for a removal


@dataclass(frozen=True)
class Applied:
    """What Auth0 reported once a change took effect (for an action: the deployed version)."""

    version: int | None = None


@dataclass(frozen=True)
class Offer:
    """The targets of one kind the tenant offers, or why it offers none."""

    kind: TargetKind
    targets: list[Described]
    missing: str | None = None  # why this kind is not offered (scopes, Hooks disabled)
    tenant: str = DEFAULT_TENANT


@dataclass(frozen=True)
class Inventory:
    """A target's secrets as ``list`` shows them: names, Auth0's stamps (actions), and whether
    the action's draft holds changes not deployed yet."""

    names: list[str]
    stamps: dict[str, str] = field(default_factory=dict)
    undeployed: bool = False


class Progress(Protocol):
    """The phases of one apply, kept in the request's row so that a resumed apply continues."""

    @property
    def phase(self) -> str | None:
        """The last phase recorded (None: nothing was sent yet)."""

    @property
    def data(self) -> Mapping[str, Any]:
        """What the recorded phases noted (never a value)."""

    def record(self, phase: str, **data: Any) -> None:
        """Record a phase with its audit record, in one transaction."""


@dataclass
class NoProgress:
    """Phases kept in memory only, for targets whose change is one call."""

    phase: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def record(self, phase: str, **data: Any) -> None:
        """Remember the phase."""
        self.phase = phase
        self.data.update(data)


class Target(Protocol):
    """What the workflow and the listeners need from one kind of target."""

    kind: TargetKind
    max_secrets: int

    def offer(self, deadline: float | None = None) -> Offer:
        """Every target of this kind, or why there are none (missing scopes, Hooks disabled)."""

    def listing(self, deadline: float | None = None) -> list[Described]:
        """Every target of this kind, answered within ``deadline`` seconds (maybe stale)."""

    def find(self, key: str) -> Described | None:
        """The target whose id or name is ``key``."""

    def known(self, target_id: str) -> Described | None:
        """The target with this id as the last list read named it, without asking Auth0."""

    def search(self, query: str, deadline: float) -> list[Described]:
        """Targets matching ``query``, for a picker."""

    def describe(self, target_id: str) -> Described:
        """The target as Auth0 describes it now."""

    def secret_names(self, target_id: str) -> list[str]:
        """The names of the target's secrets (never values)."""

    def inventory(self, target_id: str) -> Inventory:
        """The target's secrets for ``list`` (never values)."""

    def apply(self, change: Change, progress: Progress) -> Applied:
        """Send one change, recording its phases; raises a ``TargetError`` (``bot.targets.errors``)
        when Auth0 refuses or cannot answer."""

    def landed(self, change: Change) -> bool:
        """After an unknown outcome, whether the change is already visible (read back)."""

    def forget(self) -> None:
        """Drop what is cached about these targets (one of them turned out to be gone)."""


class Targets:
    """Every kind of target the bot can change, keyed by kind."""

    def __init__(self, *targets: Target) -> None:
        self._by_kind: Mapping[TargetKind, Target] = {t.kind: t for t in targets}

    def __getitem__(self, kind: TargetKind | str) -> Target:
        """The implementation for ``kind``."""
        return self._by_kind[TargetKind(kind)]

    def __iter__(self) -> Iterator[Target]:
        """Every kind configured, in the order given."""
        return iter(self._by_kind.values())

    def close(self) -> None:
        """Stop the targets' refresh threads (those that have one)."""
        for target in self:
            close = getattr(target, "close", None)
            if callable(close):
                close()

    def get(self, kind: TargetKind) -> Target | None:
        """The implementation for ``kind``, if configured."""
        return self._by_kind.get(kind)

    @property
    def hooks(self) -> Target:
        """The hook target."""
        return self[TargetKind.HOOK]

    def find(self, key: str) -> Described | None:
        """The target an option value, a hook id, ``action:{id}`` or a name names."""
        ref = TargetRef.parse(key)
        if ref is not None and ref.kind is TargetKind.ACTION:
            target = self.get(TargetKind.ACTION)
            return target.find(ref.id) if target else None
        return next((d for t in self if (d := t.find(key)) is not None), None)
