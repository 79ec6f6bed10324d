"""The sandbox tenant's Auth0 Actions: drafts, whole-list secret PATCHes, builds and deploys."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import parse_qs

ACTION_SCOPES: Final = ("read:actions", "update:actions", "create:actions")
MAX_SECRETS_PER_ACTION: Final = 30
MAX_VERSIONS: Final = 50
NOT_FOUND_MESSAGE: Final = "That action does not exist."
NOT_BUILT_MESSAGE: Final = "A draft must be in the 'built' state before it can be deployed."

Reply = tuple[int, Any]

_PATH: Final = re.compile(
    r"/api/v2/actions/actions(?:/(?P<id>[^/]+)(?:/(?P<tail>deploy|versions)(?:/(?P<vid>[^/]+))?)?)?"
)
_TRIGGERS: Final = frozenset(
    {
        "post-login",
        "credentials-exchange",
        "pre-user-registration",
        "post-user-registration",
        "post-change-password",
        "send-phone-message",
        "custom-phone-provider",
        "custom-email-provider",
        "password-reset-post-challenge",
        "custom-token-exchange",
        "event-stream",
        "password-hash-migration",
        "login-post-identifier",
        "signup-post-identifier",
    }
)
_PATCH_FIELDS: Final = frozenset(
    {"name", "supported_triggers", "code", "dependencies", "runtime", "secrets", "modules"}
)
_LIST_PARAMS: Final = frozenset(
    {"triggerId", "actionName", "deployed", "page", "per_page", "installed"}
)
# The real maximum per_page is unknown; 100 is recorded to work, so the sandbox stops there.
_MAX_PER_PAGE: Final = 100
_CODE: Final = "exports.onExecutePostLogin = async (event, api) => {};"


@dataclass
class _Secret:
    name: str
    value: str = field(repr=False)
    updated_at: str

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "updated_at": self.updated_at}


@dataclass
class _Version:
    id: str
    number: int
    revision: int  # the draft revision it captured: equal to the draft's means nothing undeployed
    secrets: list[_Secret] = field(repr=False)
    created_at: str
    live_at: float  # when the deploy finishes and this version starts to run
    deployed: bool = False


@dataclass
class _Action:
    id: str
    name: str
    trigger_id: str
    created_at: str
    updated_at: str
    secrets: list[_Secret] = field(repr=False)
    status: str = "built"
    built_at: str | None = None
    revision: int = 0
    build_ready_at: float | None = None
    build_outcome: str = "built"
    versions: list[_Version] = field(default_factory=list, repr=False)
    numbers_used: int = 0


class _Refused(Exception):
    def __init__(self, status: int, message: str, error_code: str | None = None) -> None:
        self.reply: Reply = (status, error_envelope(status, message, error_code))
        super().__init__(status)


class ActionsTenant:
    """Auth0 Actions as recorded; the caller of ``handle`` holds ``lock``, test helpers take it.

    Unknowns are settings: ``deploy_status`` (200 as recorded, 202 as specified),
    ``patch_not_found_message`` (the PATCH 404 body is unrecorded), ``name_only_unknown``
    (a name-only entry for a name the action lacks: "reject" with 400, or "empty" to store it)
    and ``build_moves_updated_at`` (whether a finished build gives the action a new
    ``updated_at``). ``secrets_shape`` makes answers carry an unreadable ``secrets`` field
    ("missing", "null", "names": a list of bare strings) instead of the recorded "list".
    """

    def __init__(self, lock: threading.Lock, clock: Callable[[], float]) -> None:
        self._lock = lock
        self._clock = clock
        self._actions: dict[str, _Action] = {}
        self._last_ns = 0
        self._failing_builds = 0
        self.build_seconds = 0.0
        self.deploy_seconds = 0.0
        self.deploy_status = 200
        self.patch_not_found_message = NOT_FOUND_MESSAGE
        self.name_only_unknown = "reject"
        self.build_moves_updated_at = False
        self.secrets_shape = "list"
        # The real per_page maximum is unknown: set this to answer smaller pages than asked.
        self.page_cap: int | None = None

    # Test-side helpers: what the Dashboard would do and what the API never shows --------

    def add(
        self,
        name: str,
        secrets: dict[str, str] | None = None,
        *,
        trigger_id: str = "post-login",
        deployed: bool = True,
    ) -> str:
        """Create an action (deployed as version 1 unless ``deployed`` is False); its id."""
        if trigger_id not in _TRIGGERS:
            raise ValueError(f"unknown trigger {trigger_id!r}")
        if len(secrets or {}) > MAX_SECRETS_PER_ACTION:
            raise ValueError("an action holds at most 30 secrets")
        with self._lock:
            stamp = self._stamp()
            action = _Action(
                id=str(uuid.uuid4()),
                name=name,
                trigger_id=trigger_id,
                created_at=stamp,
                updated_at=stamp,
                secrets=[_Secret(n, v, stamp) for n, v in (secrets or {}).items()],
                built_at=stamp,
            )
            if deployed:
                self._new_version(action, live_at=self._clock())
                self._refresh(action)
            self._actions[action.id] = action
            return action.id

    def draft_secrets(self, action_id: str) -> dict[str, str]:
        """The draft's stored values, which the API never shows."""
        with self._lock:
            return {s.name: s.value for s in self._actions[action_id].secrets}

    def deployed_secrets(self, action_id: str) -> dict[str, str]:
        """The values the running (deployed) version holds; {} if none is deployed."""
        with self._lock:
            action = self._actions[action_id]
            self._refresh(action)
            live = _live(action)
            return {} if live is None else {s.name: s.value for s in live.secrets}

    def deployed_number(self, action_id: str) -> int | None:
        with self._lock:
            action = self._actions[action_id]
            self._refresh(action)
            live = _live(action)
            return None if live is None else live.number

    def edit(
        self, action_id: str, set_values: dict[str, str] | None = None, remove: tuple[str, ...] = ()
    ) -> None:
        """Change the draft's secrets directly, as someone in the Dashboard would."""
        with self._lock:
            action = self._actions[action_id]
            stamp = self._stamp()
            kept = [s for s in action.secrets if s.name not in remove]
            for name, value in (set_values or {}).items():
                kept = [s for s in kept if s.name != name] + [_Secret(name, value, stamp)]
            action.secrets = kept
            self._draft_changed(action, stamp, content=True)

    def deploy_draft(self, action_id: str) -> None:
        """Deploy the draft at once, as someone clicking Deploy in the Dashboard would."""
        with self._lock:
            action = self._actions[action_id]
            self._new_version(action, live_at=self._clock())
            self._refresh(action)

    def fail_next_builds(self, n: int = 1) -> None:
        """The next ``n`` builds end ``failed`` (through ``retrying``) instead of ``built``."""
        with self._lock:
            self._failing_builds += n

    # HTTP side (the caller holds the lock) --------------------------------------------

    def handle(
        self, method: str, path: str, query: str, body: Any, granted: frozenset[str]
    ) -> Reply:
        """Answer one /api/v2/actions/actions request; ``body`` is the decoded JSON or None."""
        match = _PATH.fullmatch(path)
        if match is None:
            return 404, error_envelope(404, "Not Found")
        try:
            return self._route(method, match, query, body, granted)
        except _Refused as refused:
            return refused.reply

    def _route(
        self, method: str, match: re.Match[str], query: str, body: Any, granted: frozenset[str]
    ) -> Reply:
        action_id, tail, version_id = match["id"], match["tail"], match["vid"]
        routes: dict[tuple[str, bool, str | None, bool], tuple[str, Callable[[], Reply]]] = {
            ("GET", False, None, False): ("read:actions", lambda: self._list(query)),
            ("GET", True, None, False): ("read:actions", lambda: self._get(action_id)),
            ("PATCH", True, None, False): ("update:actions", lambda: self._patch(action_id, body)),
            ("POST", True, "deploy", False): ("create:actions", lambda: self._deploy(action_id)),
            ("GET", True, "versions", False): (
                "read:actions",
                lambda: self._versions(action_id, query),
            ),
            ("GET", True, "versions", True): (
                "read:actions",
                lambda: self._version(action_id, version_id),
            ),
        }
        route = routes.get((method, action_id is not None, tail, version_id is not None))
        if route is None:
            raise _Refused(404, "Not Found")
        scope, run = route
        if scope not in granted:
            message = f"Insufficient scope, expected any of: {scope}"
            raise _Refused(403, message, "insufficient_scope")
        return run()

    def _action(self, action_id: str | None, message: str = NOT_FOUND_MESSAGE) -> _Action:
        action = self._actions.get(action_id or "")
        if action is None:
            raise _Refused(404, message)
        self._refresh(action)
        return action

    def _list(self, query: str) -> Reply:
        params = _list_params(query)
        wanted = [
            action
            for action in self._actions.values()
            if params.get("actionName") in (None, action.name)
            and params.get("triggerId") in (None, action.trigger_id)
            and params.get("deployed") in (None, str(_live(action) is not None).lower())
            # Every sandbox action is custom: none is an installed Marketplace integration.
            and params.get("installed") in (None, "false")
        ]
        for action in wanted:
            self._refresh(action)
        if self.page_cap is not None and int(params.get("per_page", "20")) > self.page_cap:
            params = {**params, "per_page": str(self.page_cap)}
        return 200, _page("actions", [_action_json(a) for a in wanted], params)

    def _get(self, action_id: str | None) -> Reply:
        return 200, self._shaped(_action_json(self._action(action_id)))

    def _shaped(self, body: dict[str, Any]) -> dict[str, Any]:
        """An answer with ``secrets`` as ``secrets_shape`` says."""
        if self.secrets_shape == "missing":
            body.pop("secrets")
        elif self.secrets_shape == "null":
            body["secrets"] = None
        elif self.secrets_shape == "names":
            body["secrets"] = [s["name"] for s in body["secrets"]]
        return body

    def _patch(self, action_id: str | None, body: Any) -> Reply:
        action = self._action(action_id, self.patch_not_found_message)
        if not isinstance(body, dict):
            raise _Refused(400, "Payload validation error: 'Expected type object'.", "invalid_body")
        extra = sorted(set(body) - _PATCH_FIELDS)
        if extra:
            message = f"Payload validation error: 'Additional properties not allowed: {extra[0]}'."
            raise _Refused(400, message, "invalid_body")
        stamp = self._stamp()
        content = any(key in body for key in ("code", "dependencies", "runtime", "modules"))
        if "secrets" in body:
            secrets, changed = self._replace_secrets(action, body["secrets"], stamp)
            action.secrets = secrets
            content = content or changed
        if isinstance(body.get("name"), str):
            action.name = body["name"]
        self._draft_changed(action, stamp, content=content)
        return 200, self._shaped(_action_json(action))

    def _replace_secrets(
        self, action: _Action, entries: Any, stamp: str
    ) -> tuple[list[_Secret], bool]:
        """The whole new list: existing names first, in their order; name-only entries keep
        their value and ``updated_at``. Also whether anything but the order changed."""
        requested = _secret_entries(entries)
        if len(requested) > MAX_SECRETS_PER_ACTION:
            raise _Refused(400, "An action can have at most 30 secrets.")
        existing = {s.name: s for s in action.secrets}
        unknown = [n for n, v in requested.items() if v is None and n not in existing]
        if unknown and self.name_only_unknown == "reject":
            raise _Refused(400, f"Secret value is required for new secret: {unknown[0]}")
        new: dict[str, _Secret] = {}
        for name, value in requested.items():
            if value is None:
                new[name] = existing.get(name) or _Secret(name, "", stamp)
            else:
                new[name] = _Secret(name, value, stamp)
        ordered = [new[s.name] for s in action.secrets if s.name in new]
        ordered += [secret for name, secret in new.items() if name not in existing]
        changed = set(new) != set(existing) or any(v is not None for v in requested.values())
        return ordered, changed or bool(unknown)

    def _deploy(self, action_id: str | None) -> Reply:
        action = self._action(action_id)
        if action.status != "built":
            raise _Refused(400, NOT_BUILT_MESSAGE)
        version = self._new_version(action, live_at=self._clock() + self.deploy_seconds)
        self._refresh(action)
        body = _version_json(version)
        body["action"] = {
            "id": action.id,
            "name": action.name,
            "supported_triggers": [_trigger(action.trigger_id)],
            "created_at": action.created_at,
            "updated_at": action.updated_at,
            "all_changes_deployed": False,  # as recorded: the deploy is still under way
        }
        return self.deploy_status, body

    def _versions(self, action_id: str | None, query: str) -> Reply:
        action = self._action(action_id)
        params = _list_params(query, allowed=frozenset({"page", "per_page"}))
        newest_first = [_version_json(v) for v in reversed(action.versions)]
        return 200, _page("versions", newest_first, params)

    def _version(self, action_id: str | None, version_id: str | None) -> Reply:
        action = self._action(action_id)
        for version in action.versions:
            if version.id == version_id:
                return 200, _version_json(version)
        raise _Refused(404, "The action version does not exist.")

    # State changes ----------------------------------------------------------------------

    def _draft_changed(self, action: _Action, stamp: str, *, content: bool) -> None:
        """Any PATCH: a new ``updated_at`` and a new build; a content change is undeployed."""
        action.updated_at = stamp
        if content:
            action.revision += 1
        action.status = "pending"
        action.build_ready_at = self._clock() + self.build_seconds
        action.build_outcome = "failed" if self._failing_builds > 0 else "built"
        self._failing_builds = max(self._failing_builds - 1, 0)
        # No refresh here: the PATCH answer says "pending" even when the build is instant.

    def _new_version(self, action: _Action, live_at: float) -> _Version:
        action.numbers_used += 1
        version = _Version(
            id=str(uuid.uuid4()),
            number=action.numbers_used,
            revision=action.revision,
            secrets=[replace(s) for s in action.secrets],
            created_at=self._stamp(),
            live_at=live_at,
        )
        action.versions.append(version)
        # Auth0 keeps 50 versions, deleting the oldest one that is not deployed.
        if len(action.versions) > MAX_VERSIONS:
            oldest = next(v for v in action.versions if not v.deployed)
            action.versions.remove(oldest)
        return version

    def _refresh(self, action: _Action) -> None:
        """Move the build and the deploys along to where the clock says they are."""
        now = self._clock()
        ready_at = action.build_ready_at
        if ready_at is not None:
            if now >= ready_at:
                action.status, action.build_ready_at = action.build_outcome, None
                if action.status == "built":
                    action.built_at = self._stamp()
                    if self.build_moves_updated_at:
                        action.updated_at = action.built_at
            elif now >= ready_at - self.build_seconds / 2:
                action.status = "retrying" if action.build_outcome == "failed" else "building"
        due = [v for v in action.versions if v.live_at <= now]
        newest = max(due, key=lambda v: v.number, default=None)
        for version in action.versions:
            version.deployed = version is newest

    def _stamp(self) -> str:
        """RFC 3339 with nanoseconds, as Auth0 writes them, strictly increasing."""
        ns = max(int(self._clock() * 1e9), self._last_ns + 1)
        self._last_ns = ns
        seconds, fraction = divmod(ns, 10**9)
        whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{whole}.{fraction:09d}Z"


# JSON shapes ------------------------------------------------------------------------


def _live(action: _Action) -> _Version | None:
    return next((v for v in action.versions if v.deployed), None)


def _trigger(trigger_id: str) -> dict[str, str]:
    return {"id": trigger_id, "version": "v3" if trigger_id == "post-login" else "v2"}


def _action_json(action: _Action) -> dict[str, Any]:
    live = _live(action)
    body: dict[str, Any] = {
        "id": action.id,
        "name": action.name,
        "supported_triggers": [_trigger(action.trigger_id)],
        "created_at": action.created_at,
        "updated_at": action.updated_at,
        "code": _CODE,
        "dependencies": [],
        "runtime": "node22",
        "status": action.status,
        "secrets": [s.as_json() for s in action.secrets],
        "all_changes_deployed": live is not None and live.revision == action.revision,
    }
    if action.built_at is not None:
        body["built_at"] = action.built_at
    if live is not None:
        body["deployed_version"] = _version_json(live)
    # Real answers also carry `current_version`, which the OpenAPI schema (closed to extra
    # properties) does not list; the bot never needs it, so the sandbox leaves it out.
    return body


def _version_json(version: _Version) -> dict[str, Any]:
    return {
        "id": version.id,
        "code": _CODE,
        "dependencies": [],
        "deployed": version.deployed,
        "number": version.number,
        "secrets": [s.as_json() for s in version.secrets],
        "status": "built",
        "built_at": version.created_at,
        "created_at": version.created_at,
        "updated_at": version.created_at,
        "runtime": "node22",
    }


def _page(key: str, items: list[dict[str, Any]], params: dict[str, str]) -> dict[str, Any]:
    """One page; Auth0 leaves out ``total`` and ``page`` when they are 0."""
    per_page = int(params.get("per_page", "20"))
    page = int(params.get("page", "0"))
    body: dict[str, Any] = {key: items[page * per_page : (page + 1) * per_page]}
    for name, number in (("total", len(items)), ("page", page), ("per_page", per_page)):
        if number:
            body[name] = number
    return body


def error_envelope(status: int, message: str, error_code: str | None = None) -> dict[str, Any]:
    """Auth0's error body: ``statusCode``, ``error``, ``message`` and maybe ``errorCode``."""
    body: dict[str, Any] = {
        "statusCode": status,
        "error": HTTPStatus(status).phrase,
        "message": message,
    }
    if error_code is not None:
        body["errorCode"] = error_code
    return body


# Request parsing --------------------------------------------------------------------


def _list_params(query: str, allowed: frozenset[str] = _LIST_PARAMS) -> dict[str, str]:
    params = {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}
    for name, value in params.items():
        if name not in allowed or not _valid_param(name, value):
            message = f"Query validation error: 'Invalid value' on property {name}."
            raise _Refused(400, message, "invalid_query_string")
    return params


def _valid_param(name: str, value: str) -> bool:
    if name == "page":
        return value.isdigit()
    if name == "per_page":
        return value.isdigit() and 0 < int(value) <= _MAX_PER_PAGE
    if name in ("deployed", "installed"):
        return value in ("true", "false")
    if name == "triggerId":
        return value in _TRIGGERS
    return True


def _secret_entries(entries: Any) -> dict[str, str | None]:
    """Names to values (None: a name-only entry), refusing what Auth0's validation refuses."""
    if not isinstance(entries, list):
        raise _Refused(400, "Payload validation error: 'Expected type array' on secrets.")
    found: dict[str, str | None] = {}
    for index, entry in enumerate(entries):
        where = f"invalid DraftInformation.Secrets[{index}]: embedded message failed validation"
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not 1 <= len(name) <= 128:
            rule = "value length must be between 1 and 128 runes, inclusive"
            raise _Refused(400, f"{where} | caused by: invalid NameValueOptional.Name: {rule}")
        value = entry.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > 4096):
            rule = "value length must be at most 4096 runes"
            raise _Refused(400, f"{where} | caused by: invalid NameValueOptional.Value: {rule}")
        if name in found:
            raise _Refused(400, f"{where} | caused by: duplicate secret name")
        found[name] = value
    return found
