"""A policy's rules: which rule decides a target, which rules can never decide, and a digest.

A rule matches a target when its ``tenant`` is the target's tenant (or ``*``) and one of its
``targets`` globs matches the target's name: ``NAME`` for either kind, ``action:NAME`` or
``hook:NAME`` for one kind. The first matching rule in file order decides (CONTRACT §6).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from fnmatch import fnmatchcase

from bot.approvals.quorum import Term
from bot.targets.base import TargetKind

_KINDS = tuple(f"{kind}:" for kind in TargetKind)
_WILD = frozenset("*?[")


@dataclass(frozen=True)
class Target:
    """What a rule is matched against: a target's tenant, kind and name."""

    tenant: str
    kind: TargetKind
    name: str


@dataclass(frozen=True)
class Rule:
    """One rule, as the file gave it, with its approvals as quorum terms (none: self-service)."""

    name: str
    tenant: str
    targets: tuple[str, ...]
    requesters: tuple[str, ...]
    approvers: tuple[str, ...]
    channel: str | None
    terms: tuple[Term, ...]
    ttl: int | None = None

    @property
    def required(self) -> int:
        """How many approvals the rule needs in all."""
        return sum(term.count for term in self.terms)

    @property
    def quorum(self) -> bool:
        """Whether the approvals are a list of terms (not ``approvals = N`` over ``approvers``)."""
        return bool(self.terms) and self.terms != (Term(self.approvers, self.required),)

    def matches(self, target: Target) -> bool:
        """Whether this rule covers ``target``."""
        if self.tenant not in ("*", target.tenant):
            return False
        return any(_glob_matches(glob, target) for glob in self.targets)

    def digest(self) -> str:
        """A digest of everything that decides a request (requests keep it, CONTRACT §6)."""
        facts = {
            "name": self.name,
            "tenant": self.tenant,
            "targets": self.targets,
            "requesters": self.requesters,
            "approvers": self.approvers,
            "channel": self.channel,
            "terms": [[list(t.principals), t.count] for t in self.terms],
            "ttl": self.ttl,
        }
        canonical = json.dumps(facts, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _split(glob: str) -> tuple[str | None, str]:
    """``action:x*`` → ("action", "x*"); ``x*`` → (None, "x*")."""
    for prefix in _KINDS:
        if glob.startswith(prefix):
            return prefix[:-1], glob[len(prefix) :]
    return None, glob


def _glob_matches(glob: str, target: Target) -> bool:
    kind, pattern = _split(glob)
    return (kind is None or kind == target.kind) and fnmatchcase(target.name, pattern)


def _covers(wide: str, narrow: str) -> bool:
    """Whether glob ``wide`` surely matches every name glob ``narrow`` matches (a sound,
    incomplete test: equal patterns, ``*``, or a literal ``narrow`` that ``wide`` matches)."""
    wide_kind, wide_pattern = _split(wide)
    narrow_kind, narrow_pattern = _split(narrow)
    if wide_kind is not None and wide_kind != narrow_kind:
        return False
    if wide_pattern in ("*", narrow_pattern):
        return True
    return not (_WILD & set(narrow_pattern)) and fnmatchcase(narrow_pattern, wide_pattern)


def _shadows(earlier: Rule, later: Rule) -> bool:
    if earlier.tenant not in ("*", later.tenant):
        return False
    return all(any(_covers(w, n) for w in earlier.targets) for n in later.targets)


def shadowing(rules: list[Rule]) -> list[tuple[int, int]]:
    """(later, earlier) index pairs: each later rule that an earlier one fully shadows."""
    pairs: list[tuple[int, int]] = []
    for later in range(len(rules)):
        earlier = next((e for e in range(later) if _shadows(rules[e], rules[later])), None)
        if earlier is not None:
            pairs.append((later, earlier))
    return pairs
