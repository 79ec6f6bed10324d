"""Planning and checking one Action secret change, with no network: what to send, what must show.

The plan is the PATCH to send; the checks tell whether Auth0's answer (or a later read) shows
that change and nothing else.
Auth0 replaces an action's whole secret list on every PATCH and never shows values, so the
plan sends every other secret as a name-only entry, which Auth0 keeps with its value, and the
verifier compares each secret's ``updated_at`` to catch an edit made by someone else meanwhile.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from pydantic import SecretStr

from bot.approvals.states import Kind
from bot.auth0.errors import (
    ActionFull,
    Auth0Error,
    BuildFailed,
    ConcurrentEdit,
    DraftNotDeployed,
    InvalidRequest,
    SecretConflict,
    SecretNotFound,
)
from bot.limits import MAX_SECRETS_PER_ACTION, NAME_MAX, VALUE_MAX


class UnreadableSecrets(Auth0Error):
    """Auth0 answered with an action whose ``secrets`` is missing, null or not a list of named
    objects: nothing may be planned from it (a whole-list PATCH would wipe the real list)."""

    reason = "auth0_unavailable"
    default_message = (
        "Auth0 answered with an action whose secret list the bot cannot read, so it planned "
        "nothing and changed nothing; try again shortly"
    )


@dataclass(frozen=True)
class ActionSecret:
    """A secret as Auth0 shows it: a name and when its value last changed, never the value."""

    name: str
    updated_at: str


@dataclass(frozen=True)
class ActionVersion:
    """A deployed (or deploying) version; ``number`` is what people are told."""

    id: str
    number: int | None
    deployed: bool
    secret_names: tuple[str, ...] = ()
    # Their stamps too (not compared: a version is told apart by its id and number).
    secrets: tuple[ActionSecret, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Action:
    """One Auth0 Action, as much of it as the bot needs."""

    id: str
    name: str
    updated_at: str
    status: str
    all_changes_deployed: bool
    secrets: tuple[ActionSecret, ...]
    deployed_version: ActionVersion | None = None
    trigger_ids: tuple[str, ...] = ()
    code: str = ""  # a digest of the code, never the code itself
    dependencies: str = ""  # a digest of the dependencies
    runtime: str = ""
    secrets_readable: bool = True  # False: ``secrets`` missing, null or not named objects

    def stamp_of(self, name: str) -> str | None:
        return next((s.updated_at for s in self.secrets if s.name == name), None)


@dataclass(frozen=True)
class PatchExpectation:
    """What a PATCH answer (or a later read) must show; holds no value, so it may be stored."""

    action_id: str
    action_updated_at: str  # the action's updated_at in the read the plan was made from
    kind: Kind
    name: str
    name_updated_at: str | None  # the changed secret's stamp before (None: it is new)
    others: tuple[ActionSecret, ...]  # every other secret, whose stamps must not move

    def to_json(self) -> str:
        """A form to keep beside the request, so a restarted bot can still read back."""
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PatchExpectation:
        data = json.loads(text)
        return cls(
            action_id=data["action_id"],
            action_updated_at=data["action_updated_at"],
            kind=Kind(data["kind"]),
            name=data["name"],
            name_updated_at=data["name_updated_at"],
            others=tuple(ActionSecret(**secret) for secret in data["others"]),
        )

    @property
    def expected_names(self) -> frozenset[str]:
        kept = {s.name for s in self.others}
        return frozenset(kept if self.kind is Kind.REMOVE else kept | {self.name})


@dataclass(frozen=True)
class SecretsPatch:
    """The PATCH to send and what its answer must show."""

    expectation: PatchExpectation
    value: SecretStr | None = field(repr=False)

    def body(self) -> bytes:
        """The whole list, every other secret name-only; the only place the value is revealed."""
        entries: list[dict[str, str]] = [{"name": s.name} for s in self.expectation.others]
        if self.value is not None:
            entries.append({"name": self.expectation.name, "value": self.value.get_secret_value()})
        return json.dumps({"secrets": entries}, separators=(",", ":")).encode()


# The plan and its checks -----------------------------------------------------------


def plan_secret_change(
    action: Action, kind: Kind, name: str, value: SecretStr | None
) -> SecretsPatch:
    """The PATCH that changes one secret and keeps every other, or the reason it must not run."""
    check_action(action)
    check_name_and_value(kind, name, value)
    present = {s.name for s in action.secrets}
    if kind is Kind.ADD and name in present:
        raise SecretConflict(f"the action already has a secret named {name}")
    if kind is not Kind.ADD and name not in present:
        raise SecretNotFound(f"the action has no secret named {name}")
    if kind is Kind.ADD and len(present) >= MAX_SECRETS_PER_ACTION:
        raise ActionFull()
    expectation = PatchExpectation(
        action_id=action.id,
        action_updated_at=action.updated_at,
        kind=kind,
        name=name,
        name_updated_at=action.stamp_of(name),
        others=tuple(s for s in action.secrets if s.name != name),
    )
    return SecretsPatch(expectation, None if kind is Kind.REMOVE else value)


def verify_patch(expectation: PatchExpectation, answer: Action) -> None:
    """Raise ConcurrentEdit unless the answer holds exactly the expected names, the changed
    secret's ``updated_at`` moved and every other secret's did not."""
    problems = name_problems(expectation.expected_names, [s.name for s in answer.secrets])
    if problems:
        raise ConcurrentEdit(f"{ConcurrentEdit.default_message} ({'; '.join(problems)})")
    moved = sorted(s.name for s in expectation.others if answer.stamp_of(s.name) != s.updated_at)
    if moved:
        raise ConcurrentEdit(f"{ConcurrentEdit.default_message} (changed: {', '.join(moved)})")
    if expectation.kind is not Kind.REMOVE:
        stamp = answer.stamp_of(expectation.name)
        if stamp == expectation.name_updated_at:
            raise ConcurrentEdit(
                f"{ConcurrentEdit.default_message} ({expectation.name} did not change)"
            )


def verify_deployed(expectation: PatchExpectation, action: Action) -> None:
    """After the deploy: raise ConcurrentEdit if the running version's secret names are not
    the expected ones (someone changed the draft between the PATCH and the deploy)."""
    verify_deployed_names(expectation.expected_names, action)


def verify_deployed_names(names: frozenset[str], action: Action) -> None:
    """``verify_deployed`` for any expectation's names."""
    live = action.deployed_version
    problems = name_problems(names, list(live.secret_names if live else ()))
    if problems:
        raise ConcurrentEdit(
            "the action was deployed, but someone changed its secrets in Auth0 meanwhile "
            f"({'; '.join(problems)}): look at the action's secrets"
        )


def patch_landed(expectation: PatchExpectation, current: Action) -> bool:
    """Whether a PATCH whose answer was lost landed, judged from a fresh read of the action."""
    if current.updated_at == expectation.action_updated_at:
        return False
    verify_patch(expectation, current)
    return True


# Helpers ----------------------------------------------------------------------------


def check_action(action: Action) -> None:
    """Refuse to plan from an unreadable list, a failed build or an undeployed draft."""
    if not action.secrets_readable:
        raise UnreadableSecrets()
    if action.status == "failed":
        raise BuildFailed()
    if not action.all_changes_deployed:
        raise DraftNotDeployed()


def name_problems(wanted: frozenset[str], names: list[str]) -> list[str]:
    problems = [f"missing {name}" for name in sorted(wanted - set(names))]
    problems += [f"unexpected {name}" for name in sorted(set(names) - wanted)]
    if len(names) != len(set(names)):
        problems.append("a name appears twice")
    return problems


def check_name_and_value(kind: Kind, name: str, value: SecretStr | None) -> None:
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidRequest(f"a secret name has 1 to {NAME_MAX} characters")
    if kind is Kind.REMOVE:
        if value is not None:
            raise InvalidRequest("removing a secret takes no value")
        return
    if value is None or not value.get_secret_value():
        raise InvalidRequest(f"a value is needed to {kind.value} {name}")
    if len(value.get_secret_value()) > VALUE_MAX:
        raise InvalidRequest(f"a secret value has at most {VALUE_MAX} characters")
