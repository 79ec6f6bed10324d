"""Planning and checking several secret changes to one action as one PATCH, with no network.

The plan is made from the read just before the PATCH: changes that cannot be applied (the name
exists, the secret is gone, the action is full) are refused one by one; the others go into one
whole-list PATCH. The PATCH answer's ``Content`` (each secret's name and ``updated_at``, the code,
dependencies and runtime) is kept: before deploying, the draft must still show exactly that.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import SecretStr

from bot.approvals.states import Kind
from bot.auth0 import action_plan as single
from bot.auth0.action_plan import Action, ActionSecret
from bot.auth0.errors import (
    ActionFull,
    Auth0Error,
    BuildFailed,
    ConcurrentEdit,
    SecretConflict,
    SecretNotFound,
)
from bot.limits import MAX_SECRETS_PER_ACTION

EDITED_MEANWHILE = (
    "someone else edited the action's draft in Auth0 after the bot saved this change, so the "
    "bot did not deploy it: deploying would have published their edit too. The change is in "
    "the draft but not deployed; look at the action in the Auth0 Dashboard and deploy or "
    "discard the draft there"
)
RESUMED_UNSURE = (
    "the action's draft holds changes nobody deployed, and after its restart the bot cannot "
    "tell whether they are only its own, so it deployed nothing; look at the action in the "
    "Auth0 Dashboard"
)


def digest(value: object) -> str:
    """A short stable fingerprint of a JSON value (the code or the dependencies)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Content:
    """What a draft holds, as far as the API shows it: it must not move after the bot's PATCH."""

    secrets: tuple[ActionSecret, ...]  # sorted by name
    code: str
    dependencies: str
    runtime: str

    @classmethod
    def of(cls, action: Action) -> Content:
        secrets = tuple(sorted(action.secrets, key=lambda s: s.name))
        return cls(secrets, action.code, action.dependencies, action.runtime)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Content:
        data = json.loads(text)
        secrets = tuple(ActionSecret(**s) for s in data["secrets"])
        return cls(secrets, data["code"], data["dependencies"], data["runtime"])

    def changes_since(self, later: Content) -> list[str]:
        """What differs in ``later`` (empty: nothing), named for the logs and the message."""
        moved = [f.name for f in dataclasses.fields(self) if f.name != "secrets"]
        found = [name for name in moved if getattr(self, name) != getattr(later, name)]
        if self.secrets != later.secrets:
            found.append("secrets")
        return found


@dataclass(frozen=True)
class Wanted:
    """One change of a batch: what to do to which secret (the value stays in the patch)."""

    kind: Kind
    name: str
    value: SecretStr | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Step:
    """One planned change and its secret's stamp before the PATCH (None: a new secret)."""

    key: str
    kind: Kind
    name: str
    stamp_before: str | None


@dataclass(frozen=True)
class BatchExpectation:
    """What the PATCH answer must show; holds no value."""

    action_id: str
    action_updated_at: str
    steps: tuple[Step, ...]
    others: tuple[ActionSecret, ...]  # untouched secrets, whose stamps must not move

    @property
    def expected_names(self) -> frozenset[str]:
        kept = {s.name for s in self.others}
        return frozenset(kept | {s.name for s in self.steps if s.kind is not Kind.REMOVE})

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> BatchExpectation:
        data = json.loads(text)
        return cls(
            action_id=data["action_id"],
            action_updated_at=data["action_updated_at"],
            steps=tuple(
                Step(s["key"], Kind(s["kind"]), s["name"], s["stamp_before"]) for s in data["steps"]
            ),
            others=tuple(ActionSecret(**s) for s in data["others"]),
        )


@dataclass(frozen=True)
class BatchPatch:
    """The one PATCH of a batch and what its answer must show."""

    expectation: BatchExpectation
    values: Mapping[str, SecretStr] = field(repr=False)  # by secret name

    @property
    def action_id(self) -> str:
        return self.expectation.action_id

    @property
    def action_updated_at(self) -> str:
        return self.expectation.action_updated_at

    def body(self) -> bytes:
        """Every untouched secret name-only, the added and rotated ones with their values."""
        entries: list[dict[str, str]] = [{"name": s.name} for s in self.expectation.others]
        for step in self.expectation.steps:
            if step.kind is not Kind.REMOVE:
                value = self.values[step.name].get_secret_value()
                entries.append({"name": step.name, "value": value})
        return json.dumps({"secrets": entries}, separators=(",", ":")).encode()


def plan_batch(
    action: Action, wanted: Mapping[str, Wanted]
) -> tuple[BatchPatch | None, dict[str, Auth0Error]]:
    """The PATCH for every change that can be applied, and why each other one cannot; the
    action itself refusing (failed build, unfinished draft, unreadable list) raises."""
    single.check_action(action)
    present = [s.name for s in action.secrets]
    touched: set[str] = set()
    steps: list[Step] = []
    refused: dict[str, Auth0Error] = {}
    for key, change in wanted.items():
        try:
            _admit(change, present, touched)
        except Auth0Error as error:
            refused[key] = error
            continue
        touched.add(change.name)
        if change.kind is Kind.ADD:
            present.append(change.name)
        steps.append(Step(key, change.kind, change.name, action.stamp_of(change.name)))
    if not steps:
        return None, refused
    expectation = BatchExpectation(
        action.id,
        action.updated_at,
        tuple(steps),
        tuple(s for s in action.secrets if s.name not in touched),
    )
    values = {
        w.name: w.value
        for k, w in wanted.items()
        if k not in refused and w.kind is not Kind.REMOVE and w.value is not None
    }
    return BatchPatch(expectation, values), refused


def _admit(change: Wanted, present: list[str], touched: set[str]) -> None:
    single.check_name_and_value(change.kind, change.name, change.value)
    if change.name in touched:
        raise SecretConflict(f"another change to {change.name} goes into the same deploy")
    if change.kind is Kind.ADD and change.name in present:
        raise SecretConflict(f"the action already has a secret named {change.name}")
    if change.kind is not Kind.ADD and change.name not in present:
        raise SecretNotFound(f"the action has no secret named {change.name}")
    if change.kind is Kind.ADD and len(present) >= MAX_SECRETS_PER_ACTION:
        raise ActionFull()


def verify_batch(expectation: BatchExpectation, answer: Action) -> None:
    """Raise ConcurrentEdit unless the answer shows exactly this batch: the expected names,
    every added or rotated secret's stamp moved, every other secret's unchanged."""
    names = [s.name for s in answer.secrets]
    problems = single.name_problems(expectation.expected_names, names)
    problems += [
        f"changed: {s.name}" for s in expectation.others if answer.stamp_of(s.name) != s.updated_at
    ]
    problems += [
        f"{s.name} did not change"
        for s in expectation.steps
        if s.kind is not Kind.REMOVE and answer.stamp_of(s.name) == s.stamp_before
    ]
    if problems:
        raise ConcurrentEdit(f"{ConcurrentEdit.default_message} ({'; '.join(problems)})")


def batch_landed(expectation: BatchExpectation, current: Action) -> bool:
    """After a lost PATCH answer: whether it landed (ConcurrentEdit: someone else's edit)."""
    if current.updated_at == expectation.action_updated_at:
        return False
    verify_batch(expectation, current)
    return True


def intent_landed(intent: Sequence[tuple[Kind, str]], current: Action) -> bool:
    """A resumed apply that recorded ``planned`` but not what its PATCH got: True when the
    draft shows exactly the intended changes as one PATCH makes them (added and rotated
    secrets share one stamp, the newest; removed ones are gone; the draft is undeployed);
    False when the draft is deployed as is (the PATCH never arrived). Anything else is
    another edit, or one the bot cannot tell from its own: ConcurrentEdit, nothing deployed."""
    if current.all_changes_deployed:
        return False
    names = {s.name for s in current.secrets}
    stamps = {current.stamp_of(name) for kind, name in intent if kind is not Kind.REMOVE}
    newest = max((s.updated_at for s in current.secrets), default=None)
    removed = all(name not in names for kind, name in intent if kind is Kind.REMOVE)
    if removed and None not in stamps and len(stamps) <= 1 and stamps <= {newest}:
        return True
    raise ConcurrentEdit(RESUMED_UNSURE)


def check_unchanged(kept: Content, current: Action) -> None:
    """Before deploying: the draft must hold what the bot's PATCH left, nothing else."""
    if current.status == "failed":
        raise BuildFailed()
    changed = kept.changes_since(Content.of(current))
    if changed:
        raise ConcurrentEdit(f"{EDITED_MEANWHILE} (changed: {', '.join(changed)})")
