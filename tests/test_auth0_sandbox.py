"""The Auth0 sandbox answers over real HTTP with the recorded bodies, codes and headers."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from standins.auth0 import DEFAULT_SCOPES, Auth0Sandbox, RateLimit

SECRET = "sandbox-client-secret"
VALUE = "s3cr3t-value-that-must-not-leak"


@pytest.fixture
def sandbox() -> Iterator[Auth0Sandbox]:
    with Auth0Sandbox() as running:
        yield running


@pytest.fixture
def http(sandbox: Auth0Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, timeout=5.0) as client:
        yield client


def token_body(sandbox: Auth0Sandbox, **overrides: str) -> dict[str, str]:
    body = {
        "grant_type": "client_credentials",
        "client_id": sandbox.client_id,
        "client_secret": SECRET,
        "audience": f"https://{sandbox.domain}/api/v2/",
    }
    body.update(overrides)
    return body


def bearer(http: httpx.Client, sandbox: Auth0Sandbox) -> dict[str, str]:
    token = http.post("/oauth/token", json=token_body(sandbox)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def secrets_path(hook_id: str) -> str:
    return f"/api/v2/hooks/{hook_id}/secrets"


# Token endpoint ------------------------------------------------------------------------


def test_token_endpoint_issues_a_bearer_token_with_the_granted_scopes(
    sandbox: Auth0Sandbox, http: httpx.Client
) -> None:
    """A JSON client-credentials request gets a 24 h bearer token listing its scopes."""
    answer = http.post("/oauth/token", json=token_body(sandbox))
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert body["scope"].split() == list(DEFAULT_SCOPES)


def test_token_endpoint_accepts_a_form_body(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """The token request may also be sent form-encoded."""
    answer = http.post("/oauth/token", data=token_body(sandbox))
    assert answer.status_code == 200
    assert answer.json()["access_token"]


def test_token_endpoint_refuses_a_wrong_client_secret(
    sandbox: Auth0Sandbox, http: httpx.Client
) -> None:
    """A wrong client secret gets 401 invalid_client in the OAuth shape."""
    answer = http.post("/oauth/token", json=token_body(sandbox, client_secret="wrong"))
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def test_token_endpoint_refuses_an_audience_without_trailing_slash(
    sandbox: Auth0Sandbox, http: httpx.Client
) -> None:
    """The audience must be exactly https://{domain}/api/v2/, or 403 access_denied."""
    audience = f"https://{sandbox.domain}/api/v2"
    answer = http.post("/oauth/token", json=token_body(sandbox, audience=audience))
    assert answer.status_code == 403
    assert answer.json()["error"] == "access_denied"


def test_token_without_scopes_has_no_scope_field(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """A grant with no scopes yields a token answer without ``scope``."""
    sandbox.set_scopes()
    assert "scope" not in http.post("/oauth/token", json=token_body(sandbox)).json()


# Bearer checks -------------------------------------------------------------------------


def test_api_requires_a_bearer_token(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """A call without Authorization gets 401 in Auth0's error envelope."""
    answer = http.get("/api/v2/hooks")
    assert answer.status_code == 401
    assert answer.json()["statusCode"] == 401
    assert answer.json()["error"] == "Unauthorized"


def test_revoked_tokens_get_invalid_token(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """After revoke_tokens() a previously good token gets 401 "Invalid token"."""
    headers = bearer(http, sandbox)
    assert http.get("/api/v2/hooks", headers=headers).status_code == 200
    sandbox.revoke_tokens()
    answer = http.get("/api/v2/hooks", headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"statusCode": 401, "error": "Unauthorized", "message": "Invalid token"}


def test_expired_tokens_get_expired_token() -> None:
    """A token past its lifetime gets 401 "Expired token ..."."""
    now = [1_000_000.0]
    with (
        Auth0Sandbox(token_ttl=60, clock=lambda: now[0]) as sandbox,
        httpx.Client(base_url=sandbox.url) as http,
    ):
        headers = bearer(http, sandbox)
        now[0] += 61
        answer = http.get("/api/v2/hooks", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["message"].startswith("Expired token")


# Hooks ---------------------------------------------------------------------------------


def test_hook_ids_look_like_ulids(sandbox: Auth0Sandbox) -> None:
    """Hook ids are 26 Crockford base-32 characters, unique per hook."""
    ids = {sandbox.add_hook(f"hook-{n}") for n in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", hook_id) for hook_id in ids)


def test_add_hook_refuses_names_auth0_refuses(sandbox: Auth0Sandbox) -> None:
    """Hook names may not start or end with a dash or a space."""
    for name in ("-bad", "bad ", "bad_name", ""):
        with pytest.raises(ValueError, match="hook name"):
            sandbox.add_hook(name)


def test_list_hooks_is_a_bare_array_by_default(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """GET /hooks answers a bare array of hooks with Auth0's fields."""
    hook_id = sandbox.add_hook("one")
    answer = http.get("/api/v2/hooks", headers=bearer(http, sandbox))
    assert answer.status_code == 200
    [hook] = answer.json()
    assert hook["id"] == hook_id
    assert set(hook) == {"id", "name", "script", "dependencies", "triggerId", "enabled"}


def test_list_hooks_pages_with_totals(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """include_totals wraps a 0-based page in {total, start, limit, hooks}."""
    for n in range(5):
        sandbox.add_hook(f"hook-{n}")
    params: dict[str, int | str] = {"page": 1, "per_page": 2, "include_totals": "true"}
    body = http.get("/api/v2/hooks", params=params, headers=bearer(http, sandbox)).json()
    assert {k: body[k] for k in ("total", "start", "limit")} == {"total": 5, "start": 2, "limit": 2}
    assert [hook["name"] for hook in body["hooks"]] == ["hook-2", "hook-3"]


def test_list_hooks_refuses_more_than_100_per_page(
    sandbox: Auth0Sandbox, http: httpx.Client
) -> None:
    """per_page above 100 is a 400 query validation error."""
    answer = http.get("/api/v2/hooks", params={"per_page": 101}, headers=bearer(http, sandbox))
    assert answer.status_code == 400
    assert answer.json()["errorCode"] == "invalid_query_string"


def test_list_hooks_filters_and_projects(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """enabled, triggerId and fields filter and trim the list."""
    sandbox.add_hook("on")
    sandbox.add_hook("off", enabled=False)
    sandbox.add_hook("register", trigger_id="pre-user-registration")
    headers = bearer(http, sandbox)
    disabled = http.get("/api/v2/hooks", params={"enabled": "false"}, headers=headers).json()
    assert [hook["name"] for hook in disabled] == ["off"]
    params = {"triggerId": "pre-user-registration", "fields": "name,enabled"}
    assert http.get("/api/v2/hooks", params=params, headers=headers).json() == [
        {"name": "register", "enabled": True}
    ]


def test_unknown_hook_gets_the_recorded_404(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """GET /hooks/{id} of an unknown id answers Auth0's recorded HookDoesNotExist body."""
    answer = http.get("/api/v2/hooks/01HZZZZZZZZZZZZZZZZZZZZZZZ", headers=bearer(http, sandbox))
    assert answer.status_code == 404
    assert answer.json() == {
        "statusCode": 404,
        "error": "Not Found",
        "message": "Error: Hook does not exist",
        "errorCode": "HookDoesNotExist",
    }


def test_hooks_disabled_tenant_answers_403(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """With hooks switched off, every hooks endpoint answers 403 "disabled for your tenant"."""
    headers = bearer(http, sandbox)
    sandbox.hooks_disabled = True
    answer = http.get("/api/v2/hooks", headers=headers)
    assert answer.status_code == 403
    assert answer.json()["message"] == "This endpoint is disabled for your tenant."


def test_missing_scope_gets_auth0s_insufficient_scope_body(
    sandbox: Auth0Sandbox, http: httpx.Client
) -> None:
    """A token without update:hooks gets the recorded 403 insufficient_scope envelope on POST."""
    hook_id = sandbox.add_hook("one")
    sandbox.set_scopes("read:hooks")
    answer = http.post(secrets_path(hook_id), json={"A": "1"}, headers=bearer(http, sandbox))
    assert answer.status_code == 403
    assert answer.json() == {
        "statusCode": 403,
        "error": "Forbidden",
        "message": "Insufficient scope, expected any of: update:hooks",
        "errorCode": "insufficient_scope",
    }


# Secrets -------------------------------------------------------------------------------


def test_get_secrets_shows_placeholders_or_empty_object(
    sandbox: Auth0Sandbox, http: httpx.Client
) -> None:
    """GET secrets never shows values: the placeholder per name, {} when there are none."""
    full = sandbox.add_hook("full", secrets={"A": VALUE})
    empty = sandbox.add_hook("empty")
    headers = bearer(http, sandbox)
    assert http.get(secrets_path(full), headers=headers).json() == {"A": "_VALUE_NOT_SHOWN_"}
    assert http.get(secrets_path(empty), headers=headers).json() == {}


def test_post_secrets_stores_and_answers_201(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """POST adds new names and answers 201 {}."""
    hook_id = sandbox.add_hook("one")
    answer = http.post(secrets_path(hook_id), json={"A": VALUE}, headers=bearer(http, sandbox))
    assert (answer.status_code, answer.json()) == (201, {})
    assert sandbox.secrets(hook_id) == {"A": VALUE}


def test_post_secrets_is_not_an_upsert(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """POST of an existing name answers 409 and leaves the stored value alone."""
    hook_id = sandbox.add_hook("one", secrets={"A": "old"})
    answer = http.post(secrets_path(hook_id), json={"A": "new"}, headers=bearer(http, sandbox))
    assert answer.status_code == 409
    assert answer.json()["message"] == "Secret with the same name already exists."
    assert sandbox.secrets(hook_id) == {"A": "old"}


def test_post_secrets_refuses_to_pass_20(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """POST answers 400 when the hook would hold more than 20 secrets."""
    hook_id = sandbox.add_hook("one", secrets={f"S{n}": "v" for n in range(20)})
    answer = http.post(secrets_path(hook_id), json={"A": "1"}, headers=bearer(http, sandbox))
    assert answer.status_code == 400
    assert "20" in answer.json()["message"]
    assert len(sandbox.secrets(hook_id)) == 20


def test_post_secrets_to_unknown_hook_is_404(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """POST to an unknown hook answers the hook 404 body."""
    path = secrets_path("01HZZZZZZZZZZZZZZZZZZZZZZZ")
    answer = http.post(path, json={"A": "1"}, headers=bearer(http, sandbox))
    assert answer.status_code == 404
    assert answer.json()["errorCode"] == "HookDoesNotExist"


def test_patch_secrets_updates_and_answers_201(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """PATCH changes only the names sent and answers 201, not 200."""
    hook_id = sandbox.add_hook("one", secrets={"A": "old", "B": "keep"})
    answer = http.patch(secrets_path(hook_id), json={"A": "new"}, headers=bearer(http, sandbox))
    assert answer.status_code == 201
    assert sandbox.secrets(hook_id) == {"A": "new", "B": "keep"}


def test_patch_of_unknown_name_is_404(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """PATCH naming a secret the hook lacks answers 404 and changes nothing."""
    hook_id = sandbox.add_hook("one", secrets={"A": "old"})
    body = {"A": "new", "NOPE": "x"}
    answer = http.patch(secrets_path(hook_id), json=body, headers=bearer(http, sandbox))
    assert answer.status_code == 404
    assert sandbox.secrets(hook_id) == {"A": "old"}


def test_delete_secrets_answers_204_empty(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """DELETE with a JSON array of names removes them and answers 204 with no body."""
    hook_id = sandbox.add_hook("one", secrets={"A": "1", "B": "2"})
    answer = http.request(
        "DELETE", secrets_path(hook_id), json=["A"], headers=bearer(http, sandbox)
    )
    assert (answer.status_code, answer.content) == (204, b"")
    assert sandbox.secrets(hook_id) == {"B": "2"}


def test_payload_validation_errors_are_400_invalid_body(
    sandbox: Auth0Sandbox, http: httpx.Client
) -> None:
    """A non-object secrets body is a 400 invalid_body."""
    hook_id = sandbox.add_hook("one")
    answer = http.post(secrets_path(hook_id), json=["A"], headers=bearer(http, sandbox))
    assert answer.status_code == 400
    assert answer.json()["errorCode"] == "invalid_body"


# Rate limits and faults ----------------------------------------------------------------


def test_every_response_carries_rate_limit_headers(
    sandbox: Auth0Sandbox, http: httpx.Client
) -> None:
    """Token, success and error answers all carry x-ratelimit-limit/remaining/reset."""
    headers = bearer(http, sandbox)
    http.get("/api/v2/hooks", headers=headers)
    http.get("/api/v2/hooks/01HZZZZZZZZZZZZZZZZZZZZZZZ", headers=headers)
    http.get("/api/v2/hooks")
    for recorded in sandbox.requests:
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(
            recorded.response_headers
        )


def test_free_preset_answers_429_after_its_burst() -> None:
    """The FREE bucket allows 2 at once, then 429 with the recorded body and a reset instant."""
    with (
        Auth0Sandbox(rate_limit=RateLimit.FREE) as sandbox,
        httpx.Client(base_url=sandbox.url) as http,
    ):
        headers = bearer(http, sandbox)
        answers = [http.get("/api/v2/hooks", headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json() == {
        "statusCode": 429,
        "error": "Too Many Requests",
        "message": "Global limit has been reached",
        "errorCode": "too_many_requests",
    }
    assert answers[2].headers["x-ratelimit-remaining"] == "0"
    assert int(answers[2].headers["x-ratelimit-reset"]) >= int(time.time())


def test_rate_limit_presets_match_auth0s_published_buckets() -> None:
    """Presets are Auth0's published free, Essentials and Enterprise buckets."""
    assert (RateLimit.FREE.burst, RateLimit.FREE.per_second) == (2, 2.0)
    assert (RateLimit.ESSENTIALS.burst, RateLimit.ESSENTIALS.per_second * 60) == (10, 150)
    assert (RateLimit.ENTERPRISE.burst, RateLimit.ENTERPRISE.per_second) == (50, 16.0)


def test_fail_next_answers_the_given_status_then_recovers(
    sandbox: Auth0Sandbox, http: httpx.Client
) -> None:
    """fail_next(n, status) fails the next n API calls (of a method, if given), then serves."""
    headers = bearer(http, sandbox)
    sandbox.fail_next(1, 503)
    sandbox.fail_next(1, 500, method="POST")
    assert http.get("/api/v2/hooks", headers=headers).status_code == 503
    assert http.get("/api/v2/hooks", headers=headers).status_code == 200
    hook_id = sandbox.add_hook("one")
    assert http.post(secrets_path(hook_id), json={"A": "1"}, headers=headers).status_code == 500
    assert sandbox.secrets(hook_id) == {}


def test_dropped_connection_keeps_the_write(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """drop_connection_after_write stores the write and closes the socket without answering."""
    hook_id = sandbox.add_hook("one")
    headers = bearer(http, sandbox)
    sandbox.drop_connection_after_write()
    with pytest.raises(httpx.RemoteProtocolError):
        http.post(secrets_path(hook_id), json={"A": VALUE}, headers=headers)
    assert sandbox.secrets(hook_id) == {"A": VALUE}
    assert sandbox.requests[-1].status is None


def test_latency_delays_every_answer(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """Setting latency makes each answer take at least that long."""
    sandbox.latency = 0.2
    started = time.monotonic()
    http.post("/oauth/token", json=token_body(sandbox))
    assert time.monotonic() - started >= 0.2


def test_requests_are_recorded_from_many_threads(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """Concurrent requests are all recorded, with their query and body."""
    headers = bearer(http, sandbox)
    threads = [
        threading.Thread(target=http.get, args=("/api/v2/hooks",), kwargs={"headers": headers})
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sandbox.token_requests == 1
    assert sum(r.path == "/api/v2/hooks" for r in sandbox.requests) == 20
    assert sandbox.requests[0].json()["grant_type"] == "client_credentials"


def test_sandbox_never_logs_secret_values(
    sandbox: Auth0Sandbox, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing the sandbox logs, nor a recorded request's repr, contains a stored value."""
    hook_id = sandbox.add_hook("one")
    caplog.set_level(logging.DEBUG)
    http.post(secrets_path(hook_id), json={"A": VALUE}, headers=bearer(http, sandbox))
    assert VALUE not in caplog.text
    assert all(VALUE not in repr(record.__dict__) for record in caplog.records)
    assert VALUE not in repr(sandbox.requests)
