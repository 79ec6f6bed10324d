"""A local Auth0 tenant over real HTTP that answers the hook-secret endpoints as Auth0 does."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from os import urandom
from secrets import token_urlsafe
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qs, parse_qsl

from standins.auth0_actions import ACTION_SCOPES, ActionsTenant
from standins.auth0_wire import (
    GENEROUS,
    Answer,
    Bucket,
    Handler,
    Incoming,
    RateLimit,
    RecordedRequest,
    Refusal,
    Server,
    error,
    invalid_body,
    json_answer,
    json_payload,
    json_type,
    not_found,
    oauth_error,
    too_many_requests,
    with_headers,
)

__all__ = ["DEFAULT_SCOPES", "FULL_SCOPES", "Auth0Sandbox", "RateLimit", "RecordedRequest"]

logger = logging.getLogger(__name__)

VALUE_PLACEHOLDER: Final = "_VALUE_NOT_SHOWN_"
MAX_SECRETS_PER_HOOK: Final = 20
DEFAULT_SCOPES: Final = ("read:hooks", "create:hooks", "update:hooks", "delete:hooks")
# The grant CONTRACT §2 asks for, hooks and actions; the default stays hooks-only for now.
FULL_SCOPES: Final = DEFAULT_SCOPES + ACTION_SCOPES

_TRIGGERS: Final = frozenset(
    {
        "credentials-exchange",
        "pre-user-registration",
        "post-user-registration",
        "post-change-password",
        "send-phone-message",
    }
)
_FIELDS: Final = re.compile(
    r"(id|name|script|dependencies|enabled|triggerId)(,(id|name|script|dependencies|enabled|triggerId))*"
)
_HOOK_NAME: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9 -]*[A-Za-z0-9])?")
_HOOK_ID: Final = re.compile(r"[A-Za-z0-9-]*")
_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_WRITES: Final = frozenset({"POST", "PATCH", "DELETE"})
_LIST_PARAMS: Final = frozenset(
    {"page", "per_page", "include_totals", "enabled", "fields", "triggerId"}
)
_HOOKS_PATH: Final = re.compile(r"/api/v2/hooks(?:/(?P<id>[^/]+)(?P<secrets>/secrets)?)?")
# The scope each endpoint demands, as the spec's security section gives it.
_SCOPES: Final = {
    ("hooks", "GET"): "read:hooks",
    ("hook", "GET"): "read:hooks",
    ("secrets", "GET"): "read:hooks",
    ("secrets", "POST"): "update:hooks",
    ("secrets", "PATCH"): "update:hooks",
    ("secrets", "DELETE"): "delete:hooks",
}
_SCRIPT: Final = (
    "module.exports = function(client, scope, audience, context, cb) { cb(null, {}); };"
)


@dataclass
class _StoredHook:
    id: str
    name: str
    trigger_id: str
    enabled: bool
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "script": _SCRIPT,
            "dependencies": {},
            "triggerId": self.trigger_id,
            "enabled": self.enabled,
        }


@dataclass(frozen=True)
class _IssuedToken:
    expires_at: float
    scopes: frozenset[str]


class Auth0Sandbox:
    """A fake tenant on 127.0.0.1 with faults to inject; tests read what it stored and saw."""

    def __init__(
        self,
        domain: str = "sandbox.auth0.local",
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-client-secret",  # noqa: S107 - a fixed fake credential
        scopes: tuple[str, ...] = DEFAULT_SCOPES,
        rate_limit: RateLimit | None = None,
        token_ttl: int = 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.domain = domain
        self.client_id = client_id
        self._client_secret = client_secret
        self._scopes = tuple(scopes)
        self._token_ttl = token_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._api_bucket = Bucket(rate_limit or GENEROUS, clock)
        self._token_bucket = Bucket(GENEROUS, clock)
        self._hooks: dict[str, _StoredHook] = {}
        self._tokens: dict[str, _IssuedToken] = {}
        self._requests: list[RecordedRequest] = []
        self._failures: list[tuple[int, str | None]] = []
        self._drops = 0
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self.latency = 0.0
        self.hooks_disabled = False
        self.hooks_deprecated = False
        # Actions live beside the hooks, under the same lock, clock, tokens and rate limit.
        self.actions = ActionsTenant(self._lock, clock)

    # Lifecycle ----------------------------------------------------------------------

    def start(self) -> str:
        server = Server(("127.0.0.1", 0), Handler)
        server.answer = self._answer
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},  # also how long stop() waits
            name="auth0-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> Auth0Sandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def audience(self) -> str:
        return f"https://{self.domain}/api/v2/"

    # Tenant contents ----------------------------------------------------------------

    def add_hook(
        self,
        name: str,
        trigger_id: str = "credentials-exchange",
        enabled: bool = True,
        secrets: dict[str, str] | None = None,
    ) -> str:
        """Create a hook directly (as if made in the dashboard) and return its id."""
        if not _HOOK_NAME.fullmatch(name):
            raise ValueError(f"Auth0 would refuse the hook name {name!r}")
        if trigger_id not in _TRIGGERS:
            raise ValueError(f"unknown trigger {trigger_id!r}")
        if len(secrets or {}) > MAX_SECRETS_PER_HOOK:
            raise ValueError("a hook holds at most 20 secrets")
        with self._lock:
            if any(hook.name == name for hook in self._hooks.values()):
                raise ValueError(f"a hook named {name!r} already exists")
            hook_id = _new_hook_id(self._clock())
            self._hooks[hook_id] = _StoredHook(
                hook_id, name, trigger_id, enabled, dict(secrets or {})
            )
        return hook_id

    def secrets(self, hook_id: str) -> dict[str, str]:
        """The real stored values, which the API never shows."""
        with self._lock:
            return dict(self._hooks[hook_id].secrets)

    def set_secrets(self, hook_id: str, secrets: dict[str, str]) -> None:
        """Store secrets behind the API's back, as another administrator would."""
        with self._lock:
            self._hooks[hook_id].secrets.update(secrets)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def token_requests(self) -> int:
        return sum(r.method == "POST" and r.path == "/oauth/token" for r in self.requests)

    # Faults and grants --------------------------------------------------------------

    def revoke_tokens(self) -> None:
        """Invalidate every issued token: the API then answers 401 "Invalid token"."""
        with self._lock:
            self._tokens.clear()

    def set_scopes(self, *scopes: str) -> None:
        """Change the grant; tokens already issued keep their scopes, as real JWTs do."""
        with self._lock:
            self._scopes = scopes

    def fail_next(self, n: int = 1, status: int = 503, *, method: str | None = None) -> None:
        """Answer the next ``n`` API requests (of ``method``, if given) with ``status``."""
        with self._lock:
            self._failures.extend([(status, method)] * n)

    def drop_connection_after_write(self, n: int = 1) -> None:
        """Apply the next ``n`` successful writes, then close the socket without answering."""
        with self._lock:
            self._drops += n

    # Serving ------------------------------------------------------------------------

    def _answer(self, incoming: Incoming) -> Answer | None:
        """Answer one request (None: drop the connection) and record it."""
        received_at = self._clock()
        if self.latency > 0:
            time.sleep(self.latency)
        with self._lock:
            answer = self._route(incoming)
            self._requests.append(
                RecordedRequest(
                    method=incoming.method,
                    path=incoming.path,
                    query=incoming.query,
                    headers=incoming.headers,
                    body=incoming.body,
                    received_at=received_at,
                    status=None if answer is None else answer.status,
                    response_headers={} if answer is None else dict(answer.headers),
                    response_body=b"" if answer is None else answer.body,
                )
            )
        # Method, path and status only: bodies may hold secret values.
        logger.debug(
            "auth0 sandbox answered",
            extra={
                "method": incoming.method,
                "path": incoming.path,
                "status": None if answer is None else answer.status,
            },
        )
        return answer

    def _route(self, incoming: Incoming) -> Answer | None:
        if incoming.path == "/oauth/token":
            # The token endpoint has its own, separate limits on Auth0.
            _, headers = self._token_bucket.take()
            token = self._token(incoming) if incoming.method == "POST" else not_found()
            return with_headers(token, headers)
        allowed, headers = self._api_bucket.take()
        if not allowed:
            return with_headers(too_many_requests(), headers)
        answer = self._api(incoming)
        return None if answer is None else with_headers(answer, headers)

    def _token(self, incoming: Incoming) -> Answer:
        form = _token_form(incoming)
        if form.get("grant_type") != "client_credentials":
            return oauth_error(403, "unauthorized_client", "Grant type not allowed for the client.")
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self._client_secret
        ):
            return oauth_error(401, "invalid_client", "Unauthorized")
        if form.get("audience") != self.audience:
            return oauth_error(403, "access_denied", f"Service not found: {form.get('audience')}")
        token = token_urlsafe(24)
        self._tokens[token] = _IssuedToken(self._clock() + self._token_ttl, frozenset(self._scopes))
        body: dict[str, Any] = {
            "access_token": token,
            "expires_in": self._token_ttl,
            "token_type": "Bearer",
        }
        if self._scopes:
            body["scope"] = " ".join(self._scopes)
        return json_answer(200, body)

    def _api(self, incoming: Incoming) -> Answer | None:
        try:
            self._take_failure(incoming.method)
            granted = self._bearer_scopes(incoming)
            answer = self._dispatch(incoming, granted)
        except Refusal as refusal:
            return refusal.answer
        if incoming.method in _WRITES and self._drops > 0:
            self._drops -= 1
            return None
        return answer

    def _take_failure(self, method: str) -> None:
        for index, (status, only) in enumerate(self._failures):
            if only is None or only == method:
                del self._failures[index]
                raise Refusal(error(status, HTTPStatus(status).phrase))

    def _bearer_scopes(self, incoming: Incoming) -> frozenset[str]:
        scheme, _, token = incoming.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Refusal(error(401, "Missing authentication"))
        issued = self._tokens.get(token)
        if issued is None:
            raise Refusal(error(401, "Invalid token"))
        if self._clock() >= issued.expires_at:
            raise Refusal(error(401, "Expired token received for JSON Web Token validation"))
        return issued.scopes

    def _dispatch(self, incoming: Incoming, granted: frozenset[str]) -> Answer:
        if incoming.path.startswith("/api/v2/actions/"):
            body = json_payload(incoming.body) if incoming.body else None
            status, data = self.actions.handle(
                incoming.method, incoming.path, incoming.query, body, granted
            )
            return json_answer(status, data)
        match = _HOOKS_PATH.fullmatch(incoming.path)
        if match is None:
            raise Refusal(not_found())
        if self.hooks_disabled:
            raise Refusal(error(403, "This endpoint is disabled for your tenant."))
        if self.hooks_deprecated:
            raise Refusal(error(403, "You are trying to access a deprecated feature."))
        hook_id = match["id"] or ""
        resource = "secrets" if match["secrets"] else "hook" if hook_id else "hooks"
        scope = _SCOPES.get((resource, incoming.method))
        if scope is None:
            raise Refusal(not_found())
        if scope not in granted:
            message = f"Insufficient scope, expected any of: {scope}"
            raise Refusal(error(403, message, "insufficient_scope"))
        if not _HOOK_ID.fullmatch(hook_id):
            message = "Path validation error: 'String does not match pattern' on property id."
            raise Refusal(error(400, message, "invalid_uri"))
        return self._endpoint(resource, hook_id, incoming)

    def _endpoint(self, resource: str, hook_id: str, incoming: Incoming) -> Answer:
        if resource == "hooks":
            return self._list_hooks(incoming.query)
        if resource == "hook":
            return self._get_hook(hook_id)
        if incoming.method == "GET":
            return self._get_secrets(hook_id)
        if incoming.method == "POST":
            return self._add_secrets(hook_id, incoming.body)
        if incoming.method == "PATCH":
            return self._update_secrets(hook_id, incoming.body)
        return self._delete_secrets(hook_id, incoming.body)

    # Endpoints ----------------------------------------------------------------------

    def _list_hooks(self, query: str) -> Answer:
        params = _list_params(query)
        hooks = [
            hook.as_json()
            for hook in self._hooks.values()
            if params.get("enabled") in (None, str(hook.enabled).lower())
            and params.get("triggerId") in (None, hook.trigger_id)
        ]
        total = len(hooks)
        start, limit = 0, total
        if "page" in params or "per_page" in params:
            limit = int(params.get("per_page", "50"))
            start = int(params.get("page", "0")) * limit
            hooks = hooks[start : start + limit]
        if "fields" in params:
            wanted = params["fields"].split(",")
            hooks = [{key: hook[key] for key in wanted} for hook in hooks]
        if params.get("include_totals") == "true":
            return json_answer(
                200, {"total": total, "start": start, "limit": limit, "hooks": hooks}
            )
        return json_answer(200, hooks)

    def _hook(self, hook_id: str) -> _StoredHook:
        hook = self._hooks.get(hook_id)
        if hook is None:
            raise Refusal(error(404, "Error: Hook does not exist", "HookDoesNotExist"))
        return hook

    def _get_hook(self, hook_id: str) -> Answer:
        return json_answer(200, self._hook(hook_id).as_json())

    def _get_secrets(self, hook_id: str) -> Answer:
        return json_answer(200, dict.fromkeys(self._hook(hook_id).secrets, VALUE_PLACEHOLDER))

    def _add_secrets(self, hook_id: str, body: bytes) -> Answer:
        secrets = _secrets_payload(body)
        hook = self._hook(hook_id)
        if any(name in hook.secrets for name in secrets):
            raise Refusal(error(409, "Secret with the same name already exists."))
        if len(hook.secrets) + len(secrets) > MAX_SECRETS_PER_HOOK:
            # Auth0's wording for this case is unknown; this one names the cap as it might.
            raise Refusal(error(400, "A hook can have at most 20 secrets.", "invalid_body"))
        hook.secrets.update(secrets)
        return json_answer(201, {})

    def _update_secrets(self, hook_id: str, body: bytes) -> Answer:
        secrets = _secrets_payload(body)
        hook = self._hook(hook_id)
        unknown = sorted(set(secrets) - set(hook.secrets))
        if unknown:
            raise Refusal(error(404, f"Secret does not exist: {', '.join(unknown)}"))
        hook.secrets.update(secrets)
        return json_answer(201, {})

    def _delete_secrets(self, hook_id: str, body: bytes) -> Answer:
        names = _names_payload(body)
        hook = self._hook(hook_id)
        for name in names:
            hook.secrets.pop(name, None)
        return Answer(204)


# Request parsing --------------------------------------------------------------------


def _token_form(incoming: Incoming) -> dict[str, str]:
    """The token request's fields, sent as JSON or as a form."""
    if incoming.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(incoming.body or b"{}")
        except ValueError:
            return {}
        return (
            {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}
        )
    return dict(parse_qsl(incoming.body.decode("utf-8", "replace"), keep_blank_values=True))


def _list_params(query: str) -> dict[str, str]:
    params = {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}
    for name, value in params.items():
        if name not in _LIST_PARAMS or not _valid_list_param(name, value):
            raise Refusal(
                error(
                    400,
                    f"Query validation error: 'Invalid value' on property {name}.",
                    "invalid_query_string",
                )
            )
    return params


def _valid_list_param(name: str, value: str) -> bool:
    if name == "page":
        return value.isdigit()
    if name == "per_page":
        return value.isdigit() and int(value) <= 100
    if name in ("include_totals", "enabled"):
        return value in ("true", "false")
    if name == "fields":
        return _FIELDS.fullmatch(value) is not None
    return value in _TRIGGERS


def _secrets_payload(body: bytes) -> dict[str, str]:
    data = json_payload(body)
    if not isinstance(data, dict):
        raise invalid_body(f"Expected type object but found type {json_type(data)}")
    if not data:
        raise invalid_body("Too few properties defined (0), minimum 1")
    if len(data) > MAX_SECRETS_PER_HOOK:
        raise invalid_body(f"Too many properties defined ({len(data)}), maximum 20")
    for name, value in data.items():
        if not isinstance(value, str):
            raise invalid_body(f"Expected type string but found type {json_type(value)} on {name}")
    return data


def _names_payload(body: bytes) -> list[str]:
    data = json_payload(body)
    if not isinstance(data, list):
        raise invalid_body(f"Expected type array but found type {json_type(data)}")
    if not data:
        raise invalid_body("Array is too short (0), minimum 1")
    if not all(isinstance(name, str) for name in data):
        raise invalid_body("Expected type string in array")
    return data


def _new_hook_id(now: float) -> str:
    """A ULID-shaped id: 10 characters of milliseconds, 16 of randomness."""
    number = (int(now * 1000) << 80) | int.from_bytes(urandom(10), "big")
    return "".join(_CROCKFORD[(number >> shift) & 31] for shift in range(125, -1, -5))
