"""HooksApi and its Auth0Transport against the sandbox over real HTTP: tokens, retries, errors."""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from pydantic import SecretStr

from bot.auth0.errors import (
    Auth0Error,
    Auth0Unavailable,
    AuthenticationFailed,
    HookFull,
    HookNotFound,
    HooksUnavailable,
    InsufficientScope,
    InvalidRequest,
    RateLimited,
    SecretConflict,
    SecretNotFound,
)
from bot.auth0.hooks import Hook, HooksApi
from bot.auth0.rate_limit import retry_at as _retry_at
from bot.auth0.transport import Auth0Transport
from standins.auth0 import Auth0Sandbox, RateLimit, RecordedRequest

CLIENT_SECRET = "sandbox-client-secret"
VALUE = "s3cr3t-value-that-must-not-leak"
UNKNOWN_HOOK = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
# Auth0's OpenAPI document, the hooks and actions paths (tests/reference/README.md: source).
SPEC = Path(__file__).parent / "reference" / "auth0" / "management-api.hooks-actions.openapi.json"

MakeClient = Callable[..., HooksApi]


class Sleeps:
    """A real sleep that remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        time.sleep(seconds)


# Fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    return OpenAPI.from_dict(json.loads(SPEC.read_text()))


@pytest.fixture
def sandbox(spec: OpenAPI) -> Iterator[Auth0Sandbox]:
    """A running sandbox; afterwards every API exchange it saw is checked against the spec."""
    with Auth0Sandbox() as running:
        yield running
        assert spec_violations(spec, running) == []


@pytest.fixture
def make_client(sandbox: Auth0Sandbox) -> Iterator[MakeClient]:
    transports: list[Auth0Transport] = []

    def make(**overrides: Any) -> HooksApi:
        options: dict[str, Any] = {
            "domain": sandbox.domain,
            "client_id": sandbox.client_id,
            "client_secret": SecretStr(CLIENT_SECRET),
            "base_url": sandbox.url,
            "timeout": 5.0,
            "rate_limit_deadline": 5.0,
            "retry_backoff": 0.01,
        }
        options.update(overrides)
        transport = Auth0Transport(**options)
        transports.append(transport)
        return HooksApi(transport)

    yield make
    for transport in transports:
        transport.close()


@pytest.fixture
def client(make_client: MakeClient) -> HooksApi:
    return make_client()


def api_calls(sandbox: Auth0Sandbox, method: str | None = None) -> list[RecordedRequest]:
    return [
        r
        for r in sandbox.requests
        if r.path.startswith("/api/v2/") and (method is None or r.method == method)
    ]


# OpenAPI conformance -------------------------------------------------------------------


def spec_violations(spec: OpenAPI, sandbox: Auth0Sandbox) -> list[str]:
    """Every API request, and every answer the spec describes, checked against the spec."""
    problems: list[str] = []
    for recorded in api_calls(sandbox):
        request = MockRequest(
            f"https://{sandbox.domain}",
            recorded.method,
            recorded.path,
            args=recorded.params,
            headers=recorded.headers,
            data=recorded.body,
            content_type=recorded.headers.get("content-type", "application/json"),
        )
        where = f"{recorded.method} {recorded.path}?{recorded.query}"
        if not recorded.headers.get("authorization", "").startswith("Bearer "):
            problems.append(f"{where}: no bearer token")
        with warnings.catch_warnings():
            # openapi-core cannot check the oauth2 scheme and warns; the bearer is checked above.
            warnings.simplefilter("ignore", UserWarning)
            problems += [f"{where}: {e!r}" for e in spec.iter_request_errors(request)]
            problems += [f"{where} → {e!r}" for e in response_errors(spec, request, recorded)]
    return problems


def response_errors(spec: OpenAPI, request: MockRequest, recorded: RecordedRequest) -> list[Any]:
    if recorded.status is None or recorded_contradicts_spec(recorded):
        return []
    response = MockResponse(
        recorded.response_body,
        status_code=recorded.status,
        headers=recorded.response_headers,
        content_type=recorded.response_headers.get("Content-Type", "application/json"),
    )
    # Injected faults (503 and the like) are answers the spec does not list.
    return [
        e
        for e in spec.iter_response_errors(request, response)
        if not isinstance(e, ResponseNotFound)
    ]


def recorded_contradicts_spec(recorded: RecordedRequest) -> bool:
    """GET secrets of a hook with none answers {} on the wire; the spec says minProperties 1."""
    return (
        recorded.method == "GET"
        and recorded.path.endswith("/secrets")
        and recorded.status == 200
        and json.loads(recorded.response_body) == {}
    )


def test_every_client_request_matches_the_openapi_spec(
    spec: OpenAPI, sandbox: Auth0Sandbox, client: HooksApi
) -> None:
    """Each operation the client sends validates against Auth0's OpenAPI subset, answers too."""
    hook_id = sandbox.add_hook("one", secrets={"OLD": "x"})
    client.list_hooks()
    client.get_hook(hook_id)
    client.add_secrets(hook_id, {"NEW": SecretStr(VALUE)})
    client.update_secrets(hook_id, {"NEW": SecretStr("rotated")})
    client.delete_secrets(hook_id, ["OLD"])
    assert {r.method for r in api_calls(sandbox)} == {"GET", "POST", "PATCH", "DELETE"}
    assert spec_violations(spec, sandbox) == []


def test_spec_check_catches_a_bad_request(spec: OpenAPI) -> None:
    """The conformance check itself flags a request the spec forbids (per_page over 100)."""
    with Auth0Sandbox() as sandbox, httpx.Client(base_url=sandbox.url) as http:
        http.get("/api/v2/hooks", params={"per_page": 101})
        assert spec_violations(spec, sandbox)


# Reads ---------------------------------------------------------------------------------


def test_list_hooks_returns_every_page_including_disabled_hooks(
    sandbox: Auth0Sandbox, client: HooksApi
) -> None:
    """230 hooks come back from three pages of 100, disabled ones included."""
    for n in range(230):
        sandbox.add_hook(f"hook-{n:03}", enabled=n % 3 != 0)
    hooks = client.list_hooks()
    assert len(hooks) == 230
    assert len({hook.id for hook in hooks}) == 230
    assert sum(not hook.enabled for hook in hooks) == 77
    pages = [r.params for r in api_calls(sandbox)]
    assert pages == [
        {"page": str(n), "per_page": "100", "include_totals": "true"} for n in range(3)
    ]


def test_get_hook_returns_a_frozen_hook(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """get_hook parses id, name, trigger and enabled into a Hook."""
    hook_id = sandbox.add_hook("register", trigger_id="pre-user-registration", enabled=False)
    assert client.get_hook(hook_id) == Hook(hook_id, "register", "pre-user-registration", False)


def test_get_secret_names_lists_names_only(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """get_secret_names gives the names, and [] for a hook without secrets."""
    full = sandbox.add_hook("full", secrets={"A": "1", "B": "2"})
    empty = sandbox.add_hook("empty")
    assert client.get_secret_names(full) == ["A", "B"]
    assert client.get_secret_names(empty) == []


# Writes --------------------------------------------------------------------------------


def test_add_secrets_posts_the_value(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """add_secrets POSTs {name: value} once and the tenant stores it."""
    hook_id = sandbox.add_hook("one")
    client.add_secrets(hook_id, {"API_KEY": SecretStr(VALUE)})
    assert sandbox.secrets(hook_id) == {"API_KEY": VALUE}
    [post] = api_calls(sandbox, "POST")
    assert post.json() == {"API_KEY": VALUE}


def test_update_secrets_patches_and_accepts_201(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """update_secrets PATCHes the new value; Auth0's 201 counts as success."""
    hook_id = sandbox.add_hook("one", secrets={"API_KEY": "old", "OTHER": "keep"})
    client.update_secrets(hook_id, {"API_KEY": SecretStr("new")})
    assert sandbox.secrets(hook_id) == {"API_KEY": "new", "OTHER": "keep"}


def test_delete_secrets_sends_a_json_array(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """delete_secrets DELETEs with a JSON array of names and the names are gone."""
    hook_id = sandbox.add_hook("one", secrets={"A": "1", "B": "2"})
    client.delete_secrets(hook_id, ["A"])
    assert sandbox.secrets(hook_id) == {"B": "2"}
    [delete] = api_calls(sandbox, "DELETE")
    assert delete.json() == ["A"]


def test_placeholder_is_never_sent(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """Sending _VALUE_NOT_SHOWN_ as a value raises InvalidRequest before any HTTP."""
    hook_id = sandbox.add_hook("one", secrets={"A": "real"})
    with pytest.raises(InvalidRequest, match="placeholder"):
        client.update_secrets(hook_id, {"A": SecretStr("_VALUE_NOT_SHOWN_")})
    with pytest.raises(InvalidRequest):
        client.add_secrets(hook_id, {"B": SecretStr("_VALUE_NOT_SHOWN_")})
    assert sandbox.requests == []
    assert sandbox.secrets(hook_id) == {"A": "real"}


def test_malformed_hook_ids_are_refused_before_sending(
    sandbox: Auth0Sandbox, client: HooksApi
) -> None:
    """A hook id that could change the URL path raises InvalidRequest without any HTTP."""
    with pytest.raises(InvalidRequest):
        client.get_secret_names("../../clients")
    assert sandbox.requests == []


# Tokens --------------------------------------------------------------------------------


def test_token_request_uses_json_and_the_slashed_audience(
    sandbox: Auth0Sandbox, client: HooksApi
) -> None:
    """The token is asked for with JSON client credentials and audience https://{domain}/api/v2/."""
    assert client.transport.token_scopes() == frozenset(
        {"read:hooks", "create:hooks", "update:hooks", "delete:hooks"}
    )
    [token] = sandbox.requests
    assert token.headers["content-type"] == "application/json"
    assert token.json() == {
        "grant_type": "client_credentials",
        "client_id": sandbox.client_id,
        "client_secret": CLIENT_SECRET,
        "audience": f"https://{sandbox.domain}/api/v2/",
    }


def test_token_without_scope_field_leaves_scopes_unknown(
    sandbox: Auth0Sandbox, client: HooksApi
) -> None:
    """A token answer without ``scope`` says nothing about scopes: None, not an empty set."""
    sandbox.set_scopes()
    assert client.transport.token_scopes() is None


def test_token_is_cached_across_calls(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """Several calls reuse one token."""
    hook_id = sandbox.add_hook("one")
    for _ in range(3):
        client.get_secret_names(hook_id)
    assert sandbox.token_requests == 1


def test_concurrent_callers_share_one_token_request(
    sandbox: Auth0Sandbox, client: HooksApi
) -> None:
    """Ten threads calling at once cause exactly one token request."""
    hook_id = sandbox.add_hook("one")
    sandbox.latency = 0.1  # keep the first token request in flight while the others arrive
    barrier = threading.Barrier(10)
    results: list[list[str]] = []

    def call() -> None:
        barrier.wait()
        results.append(client.get_secret_names(hook_id))

    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [[]] * 10
    assert sandbox.token_requests == 1


def test_token_is_renewed_before_it_expires(sandbox: Auth0Sandbox, make_client: MakeClient) -> None:
    """Once the cached token is within a minute of expiry, the next call fetches a new one."""
    now = [time.time()]
    client = make_client(clock=lambda: now[0])
    hook_id = sandbox.add_hook("one")
    client.get_secret_names(hook_id)
    now[0] += 86400 - 59
    client.get_secret_names(hook_id)
    assert sandbox.token_requests == 2


def test_revoked_token_is_renewed_once_and_the_call_retried(
    sandbox: Auth0Sandbox, client: HooksApi
) -> None:
    """A 401 "Invalid token" makes the client fetch one new token and retry once."""
    hook_id = sandbox.add_hook("one")
    client.get_secret_names(hook_id)
    sandbox.revoke_tokens()
    assert client.get_secret_names(hook_id) == []
    assert sandbox.token_requests == 2
    assert [r.status for r in api_calls(sandbox)] == [200, 401, 200]


def test_repeated_401_raises_authentication_failed(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """If the API refuses the renewed token too, AuthenticationFailed is raised."""
    hook_id = sandbox.add_hook("one")
    sandbox.fail_next(2, status=401)
    with pytest.raises(AuthenticationFailed):
        client.get_secret_names(hook_id)
    assert sandbox.token_requests == 2


def test_wrong_client_secret_raises_authentication_failed(make_client: MakeClient) -> None:
    """A 401 invalid_client from the token endpoint is AuthenticationFailed, secret not shown."""
    client = make_client(client_secret=SecretStr("wrong-secret-xyz"))
    with pytest.raises(AuthenticationFailed, match="invalid_client") as caught:
        client.list_hooks()
    assert caught.value.reason == "auth_failed"
    assert "wrong-secret-xyz" not in str(caught.value) + repr(caught.value)


def test_ungranted_audience_raises_authentication_failed(
    sandbox: Auth0Sandbox, make_client: MakeClient
) -> None:
    """A 403 access_denied from the token endpoint is AuthenticationFailed."""
    client = make_client(domain="other-tenant.auth0.local")
    with pytest.raises(AuthenticationFailed, match="not authorized"):
        client.list_hooks()
    assert sandbox.requests[0].json()["audience"] == "https://other-tenant.auth0.local/api/v2/"


# Error mapping -------------------------------------------------------------------------


def test_unknown_hook_raises_hook_not_found(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """Auth0's 404 HookDoesNotExist becomes HookNotFound on reads and writes."""
    with pytest.raises(HookNotFound) as caught:
        client.get_hook(UNKNOWN_HOOK)
    assert caught.value.reason == "hook_not_found"
    with pytest.raises(HookNotFound):
        client.add_secrets(UNKNOWN_HOOK, {"A": SecretStr(VALUE)})
    with pytest.raises(HookNotFound):
        client.update_secrets(UNKNOWN_HOOK, {"A": SecretStr(VALUE)})


def test_existing_name_raises_conflict_without_posting(
    sandbox: Auth0Sandbox, client: HooksApi
) -> None:
    """Adding a name the hook already has raises SecretConflict and sends no POST."""
    hook_id = sandbox.add_hook("one", secrets={"A": "old"})
    with pytest.raises(SecretConflict, match="A") as caught:
        client.add_secrets(hook_id, {"A": SecretStr(VALUE)})
    assert caught.value.reason == "conflict"
    assert api_calls(sandbox, "POST") == []
    assert sandbox.secrets(hook_id) == {"A": "old"}


def test_auth0_409_raises_conflict(sandbox: Auth0Sandbox, make_client: MakeClient) -> None:
    """A name added by someone else between check and POST gets Auth0's 409: SecretConflict."""
    hook_id = sandbox.add_hook("one")

    def race(operation: str, status: int | str, seconds: float) -> None:
        if operation == "get_secrets":
            sandbox.set_secrets(hook_id, {"A": "theirs"})

    client = make_client(observer=race)
    with pytest.raises(SecretConflict):
        client.add_secrets(hook_id, {"A": SecretStr(VALUE)})
    assert [r.status for r in api_calls(sandbox, "POST")] == [409]
    assert sandbox.secrets(hook_id) == {"A": "theirs"}


def test_unknown_secret_raises_secret_not_found(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """PATCH's 404 and a DELETE of a missing name both raise SecretNotFound."""
    hook_id = sandbox.add_hook("one", secrets={"A": "1"})
    with pytest.raises(SecretNotFound) as caught:
        client.update_secrets(hook_id, {"NOPE": SecretStr(VALUE)})
    assert caught.value.reason == "secret_not_found"
    with pytest.raises(SecretNotFound, match="NOPE"):
        client.delete_secrets(hook_id, ["NOPE"])
    assert api_calls(sandbox, "DELETE") == []


def test_full_hook_raises_hook_full_without_posting(
    sandbox: Auth0Sandbox, client: HooksApi
) -> None:
    """19 existing secrets plus 2 new ones raise HookFull before any POST."""
    hook_id = sandbox.add_hook("one", secrets={f"S{n}": "v" for n in range(19)})
    with pytest.raises(HookFull, match="20") as caught:
        client.add_secrets(hook_id, {"A": SecretStr("1"), "B": SecretStr("2")})
    assert caught.value.reason == "hook_full"
    client.add_secrets(hook_id, {"A": SecretStr("1")})
    with pytest.raises(HookFull, match="already has 20 secrets"):
        client.add_secrets(hook_id, {"B": SecretStr("2")})
    assert len(api_calls(sandbox, "POST")) == 1


def test_auth0_400_about_the_cap_raises_hook_full(
    sandbox: Auth0Sandbox, make_client: MakeClient
) -> None:
    """If the hook fills up between the count and the POST, Auth0's 400 becomes HookFull."""
    hook_id = sandbox.add_hook("one")

    def race(operation: str, status: int | str, seconds: float) -> None:
        if operation == "get_secrets":
            sandbox.set_secrets(hook_id, {f"S{n}": "v" for n in range(20)})

    with pytest.raises(HookFull):
        make_client(observer=race).add_secrets(hook_id, {"A": SecretStr(VALUE)})
    assert [r.status for r in api_calls(sandbox, "POST")] == [400]


def test_other_400_raises_invalid_request(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """A 400 that is not about the cap raises InvalidRequest."""
    hook_id = sandbox.add_hook("one")
    sandbox.fail_next(1, status=400)
    with pytest.raises(InvalidRequest) as caught:
        client.get_hook(hook_id)
    assert caught.value.reason == "invalid_request"


@pytest.mark.parametrize(
    ("grant", "call", "scope"),
    [
        (("read:hooks",), lambda c, h: c.add_secrets(h, {"B": SecretStr(VALUE)}), "update:hooks"),
        (("read:hooks", "update:hooks"), lambda c, h: c.delete_secrets(h, ["A"]), "delete:hooks"),
        (("update:hooks",), lambda c, h: c.list_hooks(), "read:hooks"),
    ],
    ids=["add", "delete", "list"],
)
def test_missing_scope_raises_insufficient_scope(
    sandbox: Auth0Sandbox,
    make_client: MakeClient,
    grant: tuple[str, ...],
    call: Callable[[HooksApi, str], object],
    scope: str,
) -> None:
    """Auth0's 403 insufficient_scope becomes InsufficientScope naming the scope to grant."""
    hook_id = sandbox.add_hook("one", secrets={"A": "1"})
    sandbox.set_scopes(*grant)
    client = make_client()
    with pytest.raises(InsufficientScope) as caught:
        call(client, hook_id)
    assert caught.value.scope == scope
    assert caught.value.reason == "insufficient_scope"
    assert f"`{scope}`" in str(caught.value)
    assert "Applications → APIs" in str(caught.value)


def test_disabled_hooks_raise_hooks_unavailable(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """A 403 "disabled for your tenant" becomes HooksUnavailable."""
    sandbox.hooks_disabled = True
    with pytest.raises(HooksUnavailable) as caught:
        client.list_hooks()
    assert caught.value.reason == "hooks_unavailable"


def test_hooks_endpoint_gone_raises_hooks_unavailable(
    sandbox: Auth0Sandbox, client: HooksApi
) -> None:
    """A 404 on the hooks list itself (hooks retired) becomes HooksUnavailable."""
    sandbox.fail_next(1, status=404)
    with pytest.raises(HooksUnavailable):
        client.list_hooks()


def test_every_error_has_a_reason_and_a_message() -> None:
    """Each error class carries a distinct audit reason and a non-empty default message."""
    errors: list[Auth0Error] = [
        HookNotFound(),
        SecretConflict(),
        SecretNotFound(),
        HookFull(),
        InsufficientScope("update:hooks"),
        HooksUnavailable(),
        RateLimited(retry_at=1.0),
        Auth0Unavailable(),
        InvalidRequest(),
        AuthenticationFailed(),
    ]
    reasons = [error.reason for error in errors]
    assert len(set(reasons)) == len(reasons)
    assert all(str(error) and isinstance(error, Auth0Error) for error in errors)
    assert str(HookFull()) == "the hook already has 20 secrets, Auth0's maximum"


def test_insufficient_scope_parses_auth0s_message() -> None:
    """The scope is read from "Insufficient scope, expected any of: ..."."""
    parsed = InsufficientScope.from_auth0_message(
        "Insufficient scope, expected any of: read:hooks", "update:hooks"
    )
    assert parsed.scope == "read:hooks"
    assert InsufficientScope.from_auth0_message("Forbidden", "delete:hooks").scope == "delete:hooks"


# Rate limits ---------------------------------------------------------------------------


def test_429s_are_waited_out_until_the_reset_instant(make_client: MakeClient) -> None:
    """Within the deadline the client sleeps until x-ratelimit-reset and never raises."""
    sleeps = Sleeps()
    waits: list[float] = []
    with Auth0Sandbox(rate_limit=RateLimit.FREE) as sandbox:
        hook_id = sandbox.add_hook("one")
        client = make_client(base_url=sandbox.url, sleep=sleeps, on_rate_limit_wait=waits.append)
        for _ in range(4):
            assert client.get_secret_names(hook_id) == []
        calls = api_calls(sandbox)
    limited = [n for n, r in enumerate(calls) if r.status == 429]
    assert limited, "the FREE bucket should have answered 429 at least once"
    for n in limited:
        reset = float(calls[n].response_headers["x-ratelimit-reset"])
        assert calls[n + 1].received_at >= reset
    assert waits == sleeps.calls
    assert sum(r.status == 200 for r in calls) == 4


def test_rate_limited_when_the_wait_would_pass_the_deadline(make_client: MakeClient) -> None:
    """With a deadline shorter than the announced reset, RateLimited carries retry_at."""
    sleeps = Sleeps()
    with Auth0Sandbox(rate_limit=RateLimit.FREE) as sandbox:
        hook_id = sandbox.add_hook("one")
        client = make_client(base_url=sandbox.url, sleep=sleeps, rate_limit_deadline=0.01)
        with pytest.raises(RateLimited) as caught:
            exhaust(client, hook_id, calls=10)
        last = api_calls(sandbox)[-1]
    assert caught.value.reason == "rate_limited"
    assert caught.value.retry_at == float(last.response_headers["x-ratelimit-reset"])
    assert sleeps.calls == []


def exhaust(client: HooksApi, hook_id: str, calls: int) -> None:
    for _ in range(calls):
        client.get_secret_names(hook_id)


def test_retry_after_wins_over_the_reset_header() -> None:
    """Retry-After (seconds or HTTP date) is used when sent, else x-ratelimit-reset, else 1 s."""
    now = 1_000.0
    assert _retry_at(httpx.Headers({"retry-after": "3", "x-ratelimit-reset": "2000"}), now) == 1003
    date = "Thu, 01 Jan 1970 00:16:50 GMT"  # epoch 1010
    assert _retry_at(httpx.Headers({"retry-after": date}), now) == 1010
    assert _retry_at(httpx.Headers({"x-ratelimit-reset": "1005"}), now) == 1005
    assert _retry_at(httpx.Headers({}), now) == 1001


# Lost answers --------------------------------------------------------------------------


def test_reads_retry_5xx_with_backoff(sandbox: Auth0Sandbox, make_client: MakeClient) -> None:
    """Two 503s on a GET are retried with exponential backoff, then the read succeeds."""
    sleeps = Sleeps()
    client = make_client(sleep=sleeps)
    hook_id = sandbox.add_hook("one", secrets={"A": "1"})
    sandbox.fail_next(2, status=503)
    assert client.get_secret_names(hook_id) == ["A"]
    assert sleeps.calls == [0.01, 0.02]
    assert [r.status for r in api_calls(sandbox)] == [503, 503, 200]


def test_reads_give_up_after_the_retries(sandbox: Auth0Sandbox, make_client: MakeClient) -> None:
    """More 5xx than read_retries allows raise Auth0Unavailable."""
    client = make_client(read_retries=2)
    hook_id = sandbox.add_hook("one")
    sandbox.fail_next(3, status=502)
    with pytest.raises(Auth0Unavailable) as caught:
        client.get_hook(hook_id)
    assert caught.value.reason == "auth0_unavailable"
    assert len(api_calls(sandbox)) == 3


def test_timeouts_raise_auth0_unavailable(sandbox: Auth0Sandbox, make_client: MakeClient) -> None:
    """An answer slower than the timeout, every time, raises Auth0Unavailable without httpx."""
    client = make_client(timeout=0.1, read_retries=1)
    client.transport.token_scopes()
    sandbox.latency = 0.3
    with pytest.raises(Auth0Unavailable) as caught:
        client.list_hooks()
    # httpx's timeout error holds the request: it must not travel along as a cause or context.
    assert not any(isinstance(link, httpx.HTTPError) for link in exception_chain(caught.value))


def test_post_with_lost_reply_is_read_back_not_reposted(
    sandbox: Auth0Sandbox, client: HooksApi
) -> None:
    """After a dropped connection on POST, a read-back finds the secret: one POST, one secret."""
    hook_id = sandbox.add_hook("one")
    sandbox.drop_connection_after_write()
    client.add_secrets(hook_id, {"API_KEY": SecretStr(VALUE)})
    assert sandbox.secrets(hook_id) == {"API_KEY": VALUE}
    assert [r.status for r in api_calls(sandbox, "POST")] == [None]
    assert [r.method for r in api_calls(sandbox)] == ["GET", "POST", "GET"]


def test_post_that_did_not_land_is_retried_once(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """A 503 on POST with nothing stored is read back, then POSTed once more."""
    hook_id = sandbox.add_hook("one")
    sandbox.fail_next(1, status=503, method="POST")
    client.add_secrets(hook_id, {"API_KEY": SecretStr(VALUE)})
    assert sandbox.secrets(hook_id) == {"API_KEY": VALUE}
    assert [r.status for r in api_calls(sandbox, "POST")] == [503, 201]


def test_post_failing_twice_raises_without_a_third_try(
    sandbox: Auth0Sandbox, client: HooksApi
) -> None:
    """Two unanswered POSTs raise Auth0Unavailable saying the outcome is unknown."""
    hook_id = sandbox.add_hook("one")
    sandbox.fail_next(3, status=503, method="POST")
    with pytest.raises(Auth0Unavailable, match="may or may not"):
        client.add_secrets(hook_id, {"API_KEY": SecretStr(VALUE)})
    assert len(api_calls(sandbox, "POST")) == 2
    assert sandbox.secrets(hook_id) == {}


def test_conflict_on_the_retry_after_a_lost_reply_means_it_landed(
    sandbox: Auth0Sandbox, make_client: MakeClient
) -> None:
    """If the lost POST lands after the read-back, the retry's 409 counts as success."""
    hook_id = sandbox.add_hook("one")
    seen: list[tuple[str, int | str]] = []

    def late_landing(operation: str, status: int | str, seconds: float) -> None:
        seen.append((operation, status))
        if seen[-2:] == [("post_secrets", 503), ("get_secrets", 200)]:
            sandbox.set_secrets(hook_id, {"API_KEY": VALUE})

    client = make_client(observer=late_landing)
    sandbox.fail_next(1, status=503, method="POST")
    client.add_secrets(hook_id, {"API_KEY": SecretStr(VALUE)})
    assert [r.status for r in api_calls(sandbox, "POST")] == [503, 409]


def test_delete_with_lost_reply_is_read_back(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """After a dropped connection on DELETE, a read-back confirms it: one DELETE sent."""
    hook_id = sandbox.add_hook("one", secrets={"A": "1", "B": "2"})
    sandbox.drop_connection_after_write()
    client.delete_secrets(hook_id, ["A"])
    assert sandbox.secrets(hook_id) == {"B": "2"}
    assert len(api_calls(sandbox, "DELETE")) == 1


def test_patch_is_retried_after_a_lost_reply(sandbox: Auth0Sandbox, client: HooksApi) -> None:
    """PATCH sets the same value again, so a 503 is simply retried."""
    hook_id = sandbox.add_hook("one", secrets={"A": "old"})
    sandbox.fail_next(1, status=503, method="PATCH")
    client.update_secrets(hook_id, {"A": SecretStr("new")})
    assert sandbox.secrets(hook_id) == {"A": "new"}
    assert [r.status for r in api_calls(sandbox, "PATCH")] == [503, 201]


# Observability and secrecy -------------------------------------------------------------


def test_observer_sees_every_exchange(sandbox: Auth0Sandbox, make_client: MakeClient) -> None:
    """The observer gets (operation, status or "error", seconds) after each HTTP exchange."""
    seen: list[tuple[str, int | str, float]] = []
    client = make_client(observer=lambda *args: seen.append(args))
    hook_id = sandbox.add_hook("one")
    sandbox.drop_connection_after_write()
    client.add_secrets(hook_id, {"A": SecretStr(VALUE)})
    assert [(op, status) for op, status, _ in seen] == [
        ("token", 200),
        ("get_secrets", 200),
        ("post_secrets", "error"),
        ("get_secrets", 200),
    ]
    assert all(seconds >= 0 for _, _, seconds in seen)


def test_secret_value_never_reaches_logs_errors_or_reprs(
    sandbox: Auth0Sandbox, client: HooksApi, caplog: pytest.LogCaptureFixture
) -> None:
    """Whether adds succeed, lose their answer or fail, no log, error or repr holds a secret."""
    caplog.set_level(logging.DEBUG)
    hook_id = sandbox.add_hook("one", secrets={"TAKEN": "x"})
    sandbox.drop_connection_after_write()
    client.add_secrets(hook_id, {"A": SecretStr(VALUE)})
    sandbox.fail_next(2, status=503, method="POST")
    raised: list[Auth0Error] = []
    for secrets in ({"B": SecretStr(VALUE)}, {"TAKEN": SecretStr(VALUE)}):
        with pytest.raises(Auth0Error) as caught:
            client.add_secrets(hook_id, secrets)
        raised.append(caught.value)
    sandbox.fail_next(1, status=400, method="PATCH")
    with pytest.raises(InvalidRequest) as invalid:
        client.update_secrets(hook_id, {"A": SecretStr(VALUE)})
    raised.append(invalid.value)
    secrets_in_play = (VALUE, CLIENT_SECRET, *tokens_issued(sandbox))
    for error in raised:
        for link in exception_chain(error):
            assert not isinstance(link, httpx.HTTPError), "httpx errors hold the request body"
            text = f"{link} {link!r} {link.__dict__!r}"
            assert not any(secret in text for secret in secrets_in_play)
    for record in caplog.records:
        line = f"{record.getMessage()} {record.__dict__!r}"
        assert not any(secret in line for secret in secrets_in_play)
    assert CLIENT_SECRET not in repr(client.transport)


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    link: BaseException | None = error
    while link is not None:
        yield link
        link = link.__cause__ or link.__context__


def tokens_issued(sandbox: Auth0Sandbox) -> list[str]:
    return [
        json.loads(r.response_body)["access_token"]
        for r in sandbox.requests
        if r.path == "/oauth/token" and r.status == 200
    ]
