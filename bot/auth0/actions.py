"""Auth0 Action secrets, one Management API step per function, so a caller can record each phase.

A change is: ``get_action`` → ``plan_secret_change`` (pure) → ``patch_secrets`` →
``verify_patch`` (pure) → ``wait_until_built`` → ``deploy`` → ``wait_until_deployed`` →
``verify_deployed`` (pure).
Auth0 replaces an action's whole secret list on every PATCH and never shows values, so the
plan sends every other secret as a name-only entry, which Auth0 keeps with its value, and the
verifier compares each secret's ``updated_at`` to catch an edit made by someone else meanwhile.
After a PATCH whose answer was lost, ``read_back`` tells from those stamps whether it landed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from pydantic import SecretStr

from bot.approvals.states import Kind
from bot.auth0.client import Auth0Client
from bot.auth0.errors import (
    ActionFull,
    ActionNotFound,
    Auth0Error,
    Auth0Unavailable,
    AuthenticationFailed,
    BuildFailed,
    ConcurrentEdit,
    DeployFailed,
    DraftNotDeployed,
    InsufficientScope,
    InvalidRequest,
    OutcomeUnknown,
    RateLimited,
    SecretConflict,
    SecretNotFound,
)
from bot.auth0.responses import decode, envelope
from bot.limits import MAX_SECRETS_PER_ACTION, NAME_MAX, VALUE_MAX

_ACTIONS: Final = "/api/v2/actions/actions"
_ACTION_ID: Final = re.compile(r"[A-Za-z0-9-]+")
# 100 per page is recorded to work; the real maximum is unknown, so paging follows the answer.
_PER_PAGE: Final = 100
_NOT_BUILT: Final = "must be in the 'built' state"
_FULL: Final = re.compile(r"(maximum|at most|limit|more than)\D{0,40}\b30\b", re.IGNORECASE)
_DEPLOY_ATTEMPTS: Final = 5
_UNREADABLE: Final = "Auth0 sent an answer the bot could not read"
DEPLOY_SCOPE: Final = (
    "the Auth0 application lacks the `create:actions` scope, which deploying an action needs "
    "(`update:actions` alone cannot publish): grant it in Auth0 Dashboard → Applications → APIs"
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


@dataclass(frozen=True)
class Waits:
    """How long and how often to poll a build or a deploy."""

    build_timeout: float = 90.0  # builds are reported to take up to 45 s
    deploy_timeout: float = 60.0
    first_delay: float = 0.5
    max_delay: float = 4.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


# Reads ------------------------------------------------------------------------------


def list_actions(client: Auth0Client, name: str | None = None) -> list[Action]:
    """Every action (or those named exactly ``name``), following pages; absent keys are 0."""
    found: list[Action] = []
    page = 0
    while True:
        params: dict[str, Any] = {"page": page, "per_page": _PER_PAGE}
        if name is not None:
            params["actionName"] = name
        data = _read(client, "get_actions", _ACTIONS, params, "read:actions")
        if not isinstance(data, dict) or not isinstance(data.get("actions", []), list):
            raise Auth0Unavailable(_UNREADABLE)
        batch = [_parse_action(item) for item in data.get("actions", [])]
        found.extend(batch)
        if _last_page(data, len(batch), len(found)):
            return found
        page += 1


def _last_page(data: dict[str, Any], got: int, so_far: int) -> bool:
    """Paging follows ``total`` (Auth0 may answer fewer per page than asked); Auth0 leaves
    ``total`` out when it is 0, and without it a short page is the last."""
    if got == 0:
        return True
    if "total" in data:
        return so_far >= _number(data["total"], 0)
    return got < _number(data.get("per_page"), _PER_PAGE)


def get_action(client: Auth0Client, action_id: str) -> Action:
    return _parse_action(_read(client, "get_action", _action_path(action_id), None, "read:actions"))


def read_back(client: Auth0Client, expectation: PatchExpectation) -> bool:
    """After a lost PATCH answer: True if it landed, False if the action is untouched since the
    plan's read; ConcurrentEdit if someone else changed it."""
    return patch_landed(expectation, get_action(client, expectation.action_id))


# The plan and its checks (pure) -----------------------------------------------------


def plan_secret_change(
    action: Action, kind: Kind, name: str, value: SecretStr | None
) -> SecretsPatch:
    """The PATCH that changes one secret and keeps every other, or the reason it must not run."""
    if action.status == "failed":
        raise BuildFailed()
    if not action.all_changes_deployed:
        raise DraftNotDeployed()
    _check_name_and_value(kind, name, value)
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
    problems = _name_problems(expectation.expected_names, [s.name for s in answer.secrets])
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
    live = action.deployed_version
    problems = _name_problems(expectation.expected_names, list(live.secret_names if live else ()))
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


# Writes -----------------------------------------------------------------------------


def patch_secrets(client: Auth0Client, patch: SecretsPatch) -> Action:
    """Send the PATCH once; a lost answer raises OutcomeUnknown (then ``read_back``)."""
    path = _action_path(patch.expectation.action_id)
    try:
        response = client.exchange("patch_action", "PATCH", path, body=patch.body())
    except Auth0Unavailable:
        raise OutcomeUnknown() from None
    if response.is_success:
        return _parse_action(decode(response))
    error = _error_for(response, "update:actions")
    if isinstance(error, InvalidRequest):
        # A name-only entry for a secret deleted since the read may be refused: look again.
        current = get_action(client, patch.expectation.action_id)
        if current.updated_at != patch.expectation.action_updated_at:
            raise ConcurrentEdit()
    raise error


def wait_until_built(client: Auth0Client, action_id: str, waits: Waits | None = None) -> Action:
    """Poll with backoff until the draft is built; ``failed`` raises BuildFailed."""
    waits = waits or Waits()

    def built(action: Action) -> bool:
        if action.status == "failed":
            raise BuildFailed()
        return action.status == "built"  # pending, building, packaged, retrying: not yet

    timeout = DeployFailed(
        f"the action's draft did not finish building within {waits.build_timeout:g} s: "
        "nothing was deployed"
    )
    return _poll(client, action_id, built, waits.build_timeout, timeout, waits)


def deploy(client: Auth0Client, action_id: str, waits: Waits | None = None) -> ActionVersion:
    """Deploy the draft (200 as recorded or 202 as specified); while it is still building,
    wait for the build and try again."""
    path = f"{_action_path(action_id)}/deploy"
    for _ in range(_DEPLOY_ATTEMPTS):
        try:
            response = client.exchange("post_deploy_action", "POST", path)
        except Auth0Unavailable:
            raise OutcomeUnknown(
                "Auth0 lost its answer to the deploy: it may have been applied, so the bot "
                "reads the action's versions before deploying again"
            ) from None
        if response.is_success:
            return _parse_version(decode(response))
        if response.status_code == 400 and _NOT_BUILT in envelope(response)[0]:
            wait_until_built(client, action_id, waits)
            continue
        raise _error_for(response, "create:actions")
    raise DeployFailed("Auth0 kept answering that the draft is not built: nothing was deployed")


def wait_until_deployed(
    client: Auth0Client, action_id: str, version: ActionVersion, waits: Waits | None = None
) -> Action:
    """Poll until ``version`` (or a later one, which holds the change too) is running."""
    waits = waits or Waits()

    def running(action: Action) -> bool:
        live = action.deployed_version
        if live is None or not live.deployed:
            return False
        later = version.number is not None and (live.number or 0) > version.number
        return live.id == version.id or later

    timeout = DeployFailed(
        f"Auth0 accepted the deploy but did not run it within {waits.deploy_timeout:g} s"
    )
    return _poll(client, action_id, running, waits.deploy_timeout, timeout, waits)


def version_after(client: Auth0Client, action_id: str, number: int) -> ActionVersion | None:
    """The newest version numbered above ``number``: whether a deploy whose answer was lost
    created one."""
    data = _read(
        client, "get_action_versions", f"{_action_path(action_id)}/versions", None, "read:actions"
    )
    if not isinstance(data, dict) or not isinstance(data.get("versions", []), list):
        raise Auth0Unavailable(_UNREADABLE)
    versions = [_parse_version(item) for item in data.get("versions", [])]
    newer = [v for v in versions if v.number is not None and v.number > number]
    return max(newer, key=lambda v: v.number or 0, default=None)


# Helpers ----------------------------------------------------------------------------


def _poll(
    client: Auth0Client,
    action_id: str,
    done: Callable[[Action], bool],
    timeout: float,
    on_timeout: Auth0Error,
    waits: Waits,
) -> Action:
    deadline = waits.clock() + timeout
    delay = waits.first_delay
    while True:
        action = get_action(client, action_id)
        if done(action):
            return action
        if waits.clock() + delay > deadline:
            raise on_timeout
        waits.sleep(delay)
        delay = min(delay * 2, waits.max_delay)


def _read(
    client: Auth0Client, operation: str, path: str, params: dict[str, Any] | None, scope: str
) -> Any:
    response = client.exchange(operation, "GET", path, params=params, idempotent=True)
    if not response.is_success:
        raise _error_for(response, scope)
    return decode(response)


def _name_problems(wanted: frozenset[str], names: list[str]) -> list[str]:
    problems = [f"missing {name}" for name in sorted(wanted - set(names))]
    problems += [f"unexpected {name}" for name in sorted(set(names) - wanted)]
    if len(names) != len(set(names)):
        problems.append("a name appears twice")
    return problems


def _action_path(action_id: str) -> str:
    # The id goes into the URL path: refuse anything that could reach another endpoint.
    if not _ACTION_ID.fullmatch(action_id):
        raise InvalidRequest("that is not an Auth0 action id (letters, digits and - only)")
    return f"{_ACTIONS}/{action_id}"


def _check_name_and_value(kind: Kind, name: str, value: SecretStr | None) -> None:
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


def _error_for(response: httpx.Response, scope: str) -> Auth0Error:
    """Translate an error answer; Auth0's free text is read, never copied into the error."""
    status = response.status_code
    message, code = envelope(response)
    if status == 400 and _FULL.search(message):
        return ActionFull()
    if status == 400:
        detail = f" ({code})" if code else ""
        return InvalidRequest(f"{InvalidRequest.default_message}{detail}", error_code=code)
    if status == 401:
        return AuthenticationFailed("Auth0 refused the bot's access token even after renewing it")
    if status == 403:
        if scope == "create:actions":
            return InsufficientScope(scope, DEPLOY_SCOPE)
        return InsufficientScope.from_auth0_message(message, scope)
    if status == 404:
        return ActionNotFound()
    if status == 429:
        return RateLimited()
    return InvalidRequest(f"Auth0 answered HTTP {status}", error_code=code)


def _number(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int | float) else default


def _parse_secrets(data: Any) -> tuple[ActionSecret, ...]:
    if not isinstance(data, list):
        return ()
    return tuple(
        ActionSecret(str(item.get("name", "")), str(item.get("updated_at", "")))
        for item in data
        if isinstance(item, dict)
    )


def _parse_version(data: Any) -> ActionVersion:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise Auth0Unavailable(_UNREADABLE)
    number = data.get("number")
    return ActionVersion(
        id=data["id"],
        number=int(number) if isinstance(number, int | float) else None,
        deployed=data.get("deployed") is True,
        secret_names=tuple(s.name for s in _parse_secrets(data.get("secrets"))),
    )


def _parse_action(data: Any) -> Action:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise Auth0Unavailable(_UNREADABLE)
    deployed = data.get("deployed_version")
    triggers = data.get("supported_triggers")
    return Action(
        id=data["id"],
        name=str(data.get("name", "")),
        updated_at=str(data.get("updated_at", "")),
        status=str(data.get("status", "")),
        all_changes_deployed=data.get("all_changes_deployed") is True,
        secrets=_parse_secrets(data.get("secrets")),
        deployed_version=_parse_version(deployed) if isinstance(deployed, dict) else None,
        trigger_ids=tuple(str(t.get("id")) for t in triggers if isinstance(t, dict))
        if isinstance(triggers, list)
        else (),
    )
