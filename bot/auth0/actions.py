"""Auth0 Action secrets over HTTP, one Management API step per function, each phase recordable.

A change is: ``get_action`` → ``action_plan.plan_secret_change`` (pure) → ``patch_secrets`` →
``action_plan.verify_patch`` (pure) → ``wait_until_built`` → ``deploy`` →
``wait_until_deployed`` → ``action_plan.verify_deployed`` (pure).
After a PATCH whose answer was lost, ``read_back`` tells from the secrets' ``updated_at``
stamps whether it landed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx

from bot.auth0.action_batch import BatchPatch, digest
from bot.auth0.action_plan import (
    Action,
    ActionSecret,
    ActionVersion,
    PatchExpectation,
    SecretsPatch,
    patch_landed,
)
from bot.auth0.errors import (
    ActionFull,
    ActionNotFound,
    Auth0Error,
    Auth0Unavailable,
    AuthenticationFailed,
    BuildFailed,
    ConcurrentEdit,
    DeployFailed,
    InsufficientScope,
    InvalidRequest,
    OutcomeUnknown,
    RateLimited,
)
from bot.auth0.responses import UNREADABLE, decode, envelope
from bot.auth0.transport import Auth0Transport

_ACTIONS: Final = "/api/v2/actions/actions"
_ACTION_ID: Final = re.compile(r"[A-Za-z0-9-]+")
# 100 per page is recorded to work; the real maximum is unknown, so paging follows the answer.
_PER_PAGE: Final = 100
_NOT_BUILT: Final = "must be in the 'built' state"
_FULL: Final = re.compile(r"(maximum|at most|limit|more than)\D{0,40}\b30\b", re.IGNORECASE)
_DEPLOY_ATTEMPTS: Final = 5
DEPLOY_SCOPE: Final = (
    "the Auth0 application lacks the `create:actions` scope, which deploying an action needs "
    "(`update:actions` alone cannot publish): grant it in Auth0 Dashboard → Applications → APIs"
)


@dataclass(frozen=True)
class Waits:
    """How long and how often to poll a build or a deploy."""

    build_timeout: float = 90.0  # builds are reported to take up to 45 s
    deploy_timeout: float = 60.0
    first_delay: float = 0.5
    # The first look at a build comes this long after the PATCH (one read, not a poll, when
    # builds take about this long); the apply raises it when builds turn out slower.
    expected_build: float = 2.0
    max_delay: float = 4.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


# Reads ------------------------------------------------------------------------------


def list_actions(transport: Auth0Transport, name: str | None = None) -> list[Action]:
    """Every action (or those named exactly ``name``), following pages; absent keys are 0."""
    found: list[Action] = []
    page = 0
    while True:
        params: dict[str, Any] = {"page": page, "per_page": _PER_PAGE}
        if name is not None:
            params["actionName"] = name
        data = _read(transport, "get_actions", _ACTIONS, params, "read:actions")
        if not isinstance(data, dict) or not isinstance(data.get("actions", []), list):
            raise Auth0Unavailable(UNREADABLE)
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


def get_action(transport: Auth0Transport, action_id: str) -> Action:
    return _parse_action(
        _read(transport, "get_action", _action_path(action_id), None, "read:actions")
    )


def read_back(transport: Auth0Transport, expectation: PatchExpectation) -> bool:
    """After a lost PATCH answer: True if it landed, False if the action is untouched since the
    plan's read; ConcurrentEdit if someone else changed it."""
    return patch_landed(expectation, get_action(transport, expectation.action_id))


# Writes -----------------------------------------------------------------------------


def patch_secrets(transport: Auth0Transport, patch: SecretsPatch | BatchPatch) -> Action:
    """Send the PATCH once; a lost answer raises OutcomeUnknown (then ``read_back``)."""
    target = patch.expectation
    path = _action_path(target.action_id)
    try:
        response = transport.exchange("patch_action", "PATCH", path, body=patch.body())
    except Auth0Unavailable:
        raise OutcomeUnknown() from None
    if response.is_success:
        return _parse_action(decode(response))
    error = _error_for(response, "update:actions")
    if isinstance(error, InvalidRequest):
        # A name-only entry for a secret deleted since the read may be refused: look again.
        current = get_action(transport, target.action_id)
        if current.updated_at != target.action_updated_at:
            raise ConcurrentEdit()
    raise error


def wait_until_built(
    transport: Auth0Transport, action_id: str, waits: Waits | None = None
) -> Action:
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
    return _poll(transport, action_id, built, waits.build_timeout, timeout, waits)


def deploy(
    transport: Auth0Transport,
    action_id: str,
    waits: Waits | None = None,
    check: Callable[[Action], None] | None = None,
) -> ActionVersion:
    """Deploy the draft (200 as recorded or 202 as specified); while it is still building,
    wait for the build, ``check`` the built draft (a draft found unbuilt after a read said
    built was edited meanwhile: ``check`` raises before someone else's edit is deployed),
    and try again."""
    path = f"{_action_path(action_id)}/deploy"
    for _ in range(_DEPLOY_ATTEMPTS):
        try:
            response = transport.exchange("post_deploy_action", "POST", path)
        except Auth0Unavailable:
            raise OutcomeUnknown(
                "Auth0 lost its answer to the deploy: it may have been applied, so the bot "
                "reads the action's versions before deploying again"
            ) from None
        if response.is_success:
            return _parse_version(decode(response))
        if response.status_code == 400 and _NOT_BUILT in envelope(response)[0]:
            built = wait_until_built(transport, action_id, waits)
            if check is not None:
                check(built)
            continue
        raise _error_for(response, "create:actions")
    raise DeployFailed("Auth0 kept answering that the draft is not built: nothing was deployed")


def wait_until_deployed(
    transport: Auth0Transport, action_id: str, version: ActionVersion, waits: Waits | None = None
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
    return _poll(transport, action_id, running, waits.deploy_timeout, timeout, waits)


def version_after(transport: Auth0Transport, action_id: str, number: int) -> ActionVersion | None:
    """The newest version numbered above ``number``: whether a deploy whose answer was lost
    created one."""
    data = _read(
        transport,
        "get_action_versions",
        f"{_action_path(action_id)}/versions",
        None,
        "read:actions",
    )
    if not isinstance(data, dict) or not isinstance(data.get("versions", []), list):
        raise Auth0Unavailable(UNREADABLE)
    versions = [_parse_version(item) for item in data.get("versions", [])]
    newer = [v for v in versions if v.number is not None and v.number > number]
    return max(newer, key=lambda v: v.number or 0, default=None)


# Helpers ----------------------------------------------------------------------------


def _poll(
    transport: Auth0Transport,
    action_id: str,
    done: Callable[[Action], bool],
    timeout: float,
    on_timeout: Auth0Error,
    waits: Waits,
) -> Action:
    deadline = waits.clock() + timeout
    delay = waits.first_delay
    while True:
        action = get_action(transport, action_id)
        if done(action):
            return action
        if waits.clock() + delay > deadline:
            raise on_timeout
        waits.sleep(delay)
        delay = min(delay * 2, waits.max_delay)


def _read(
    transport: Auth0Transport, operation: str, path: str, params: dict[str, Any] | None, scope: str
) -> Any:
    response = transport.exchange(operation, "GET", path, params=params, idempotent=True)
    if not response.is_success:
        raise _error_for(response, scope)
    return decode(response)


def _action_path(action_id: str) -> str:
    # The id goes into the URL path: refuse anything that could reach another endpoint.
    if not _ACTION_ID.fullmatch(action_id):
        raise InvalidRequest("that is not an Auth0 action id (letters, digits and - only)")
    return f"{_ACTIONS}/{action_id}"


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
    if not _readable_secrets(data):
        return ()
    return tuple(ActionSecret(item["name"], str(item.get("updated_at", ""))) for item in data)


def _readable_secrets(data: Any) -> bool:
    """A list of objects each with a non-empty string ``name``; anything else is unreadable
    (a missing or null list is not "no secrets")."""
    return isinstance(data, list) and all(
        isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]
        for item in data
    )


def _parse_version(data: Any) -> ActionVersion:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise Auth0Unavailable(UNREADABLE)
    number = data.get("number")
    return ActionVersion(
        id=data["id"],
        number=int(number) if isinstance(number, int | float) else None,
        deployed=data.get("deployed") is True,
        secret_names=tuple(s.name for s in _parse_secrets(data.get("secrets"))),
        secrets=_parse_secrets(data.get("secrets")),
    )


def _parse_action(data: Any) -> Action:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise Auth0Unavailable(UNREADABLE)
    deployed = data.get("deployed_version")
    triggers = data.get("supported_triggers")
    return Action(
        id=data["id"],
        name=str(data.get("name", "")),
        updated_at=str(data.get("updated_at", "")),
        status=str(data.get("status", "")),
        all_changes_deployed=data.get("all_changes_deployed") is True,
        secrets=_parse_secrets(data.get("secrets")),
        secrets_readable=_readable_secrets(data.get("secrets")),
        code=digest(data.get("code")),
        dependencies=digest(data.get("dependencies")),
        runtime=str(data.get("runtime", "")),
        deployed_version=_parse_version(deployed) if isinstance(deployed, dict) else None,
        trigger_ids=tuple(str(t.get("id")) for t in triggers if isinstance(t, dict))
        if isinstance(triggers, list)
        else (),
    )
