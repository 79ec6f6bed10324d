"""The sandbox tenant answers Auth0 Actions over real HTTP as recorded, checked against the spec."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse

from standins.auth0 import FULL_SCOPES, Auth0Sandbox, RateLimit, RecordedRequest

SECRET = "sandbox-client-secret"
VALUE = "action-s3cr3t-that-must-not-leak"
UNKNOWN_ACTION = "00000000-0000-4000-8000-000000000000"
NOT_BUILT = "A draft must be in the 'built' state before it can be deployed."
# Auth0's OpenAPI subset for Actions, kept under tests/reference with its source.
SPEC = Path(__file__).parent / "reference" / "auth0" / "management-api.actions.openapi.json"


class Clock:
    """A clock the test moves by hand, so builds and deploys finish when the test says."""

    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now


# OpenAPI conformance -------------------------------------------------------------------


def load_actions_spec() -> OpenAPI:
    """The Actions OpenAPI subset every sandbox exchange is checked against."""
    return OpenAPI.from_dict(json.loads(SPEC.read_text()))


def actions_spec_violations(spec: OpenAPI, sandbox: Auth0Sandbox) -> list[str]:
    """Every /actions request the sandbox saw, and each answer the spec describes, checked.

    A deploy answered 200 (as recorded) is checked against the spec's 202 body.
    """
    problems: list[str] = []
    for recorded in sandbox.requests:
        if not recorded.path.startswith("/api/v2/actions/"):
            continue
        request = MockRequest(
            f"https://{sandbox.domain}",
            recorded.method,
            recorded.path,
            args=recorded.params,
            headers=recorded.headers,
            data=recorded.body or None,
            content_type=recorded.headers.get("content-type", "application/json"),
        )
        where = f"{recorded.method} {recorded.path}?{recorded.query}"
        with warnings.catch_warnings():
            # openapi-core cannot check the oauth2 scheme and warns; the sandbox checks bearers.
            warnings.simplefilter("ignore", UserWarning)
            problems += [f"{where}: {e!r}" for e in spec.iter_request_errors(request)]
            problems += [f"{where} → {e!r}" for e in _answer_errors(spec, request, recorded)]
    return problems


def _answer_errors(spec: OpenAPI, request: MockRequest, recorded: RecordedRequest) -> list[Any]:
    if recorded.status is None:
        return []
    status = recorded.status
    if status == 200 and recorded.path.endswith("/deploy"):
        status = 202
    response = MockResponse(
        recorded.response_body,
        status_code=status,
        headers=recorded.response_headers,
        content_type=recorded.response_headers.get("Content-Type", "application/json"),
    )
    # Injected faults (503 and the like) are answers the spec does not list.
    return [
        e
        for e in spec.iter_response_errors(request, response)
        if not isinstance(e, ResponseNotFound)
    ]


# Fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    return load_actions_spec()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sandbox(spec: OpenAPI, clock: Clock) -> Iterator[Auth0Sandbox]:
    """A running sandbox; afterwards every Actions exchange it saw is checked against the spec."""
    with Auth0Sandbox(scopes=FULL_SCOPES, clock=clock) as running:
        yield running
        assert actions_spec_violations(spec, running) == []


@contextmanager
def authorized(sandbox: Auth0Sandbox) -> Iterator[httpx.Client]:
    """An HTTP client holding a fresh token with the sandbox's current grant."""
    with httpx.Client(base_url=sandbox.url, timeout=5.0) as client:
        token_body = {
            "grant_type": "client_credentials",
            "client_id": sandbox.client_id,
            "client_secret": SECRET,
            "audience": sandbox.audience,
        }
        token = client.post("/oauth/token", json=token_body).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


@pytest.fixture
def http(sandbox: Auth0Sandbox) -> Iterator[httpx.Client]:
    with authorized(sandbox) as client:
        yield client


def path(action_id: str, tail: str = "") -> str:
    return f"/api/v2/actions/actions/{action_id}{tail}"


def names(body: dict[str, Any]) -> list[str]:
    return [secret["name"] for secret in body["secrets"]]


def stamps(body: dict[str, Any]) -> dict[str, str]:
    return {secret["name"]: secret["updated_at"] for secret in body["secrets"]}


# Spec check ----------------------------------------------------------------------------


def test_spec_check_catches_requests_the_spec_forbids() -> None:
    """The check flags an unknown PATCH key and a non-integer per_page; the sandbox 400s both."""
    spec = load_actions_spec()
    with Auth0Sandbox(scopes=FULL_SCOPES) as sandbox, authorized(sandbox) as http:
        action_id = sandbox.actions.add("login", {"A": "1"})
        patched = http.patch(path(action_id), json={"secrets": [{"name": "A"}], "etag": "x"})
        listed = http.get("/api/v2/actions/actions", params={"per_page": "lots"})
        assert (patched.status_code, listed.status_code) == (400, 400)
        assert listed.json()["errorCode"] == "invalid_query_string"
        assert len(actions_spec_violations(spec, sandbox)) == 2


# Listing -------------------------------------------------------------------------------


def test_list_leaves_out_zero_page_and_total(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """As recorded: an empty match answers {"actions": [], "per_page": 50}, no page or total."""
    sandbox.actions.add("login")
    answer = http.get("/api/v2/actions/actions", params={"actionName": "nope", "per_page": 50})
    assert (answer.status_code, answer.json()) == (200, {"actions": [], "per_page": 50})


def test_list_matches_action_name_exactly(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """actionName is an exact match; list items carry secrets, status and all_changes_deployed."""
    action_id = sandbox.actions.add("login", {"API_KEY": VALUE})
    sandbox.actions.add("login-extra")
    body = http.get("/api/v2/actions/actions", params={"actionName": "login"}).json()
    assert {key: body[key] for key in ("total", "per_page")} == {"total": 1, "per_page": 20}
    assert "page" not in body
    [item] = body["actions"]
    assert item["id"] == action_id
    assert names(item) == ["API_KEY"]
    assert (item["status"], item["all_changes_deployed"]) == ("built", True)


def test_list_pages(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """page and per_page slice the list; total counts every match."""
    for n in range(5):
        sandbox.actions.add(f"action-{n}")
    body = http.get("/api/v2/actions/actions", params={"page": 2, "per_page": 2}).json()
    assert [a["name"] for a in body["actions"]] == ["action-4"]
    assert {key: body[key] for key in ("total", "page", "per_page")} == {
        "total": 5,
        "page": 2,
        "per_page": 2,
    }


def test_list_filters_by_trigger_and_deployed(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """triggerId and deployed filter the list."""
    sandbox.actions.add("login")
    sandbox.actions.add("m2m", trigger_id="credentials-exchange", deployed=False)
    listed = http.get("/api/v2/actions/actions", params={"triggerId": "credentials-exchange"})
    assert [a["name"] for a in listed.json()["actions"]] == ["m2m"]
    deployed = http.get("/api/v2/actions/actions", params={"deployed": "true"}).json()
    assert [a["name"] for a in deployed["actions"]] == ["login"]


# Get and 404 ---------------------------------------------------------------------------


def test_get_shows_names_and_stamps_never_values(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """GET gives each secret's name and updated_at, the deployed version, never a value."""
    action_id = sandbox.actions.add("login", {"A": VALUE, "B": VALUE})
    answer = http.get(path(action_id))
    assert answer.status_code == 200
    body = answer.json()
    assert VALUE not in answer.text
    assert set(body["secrets"][0]) == {"name", "updated_at"}
    assert body["deployed_version"]["number"] == 1
    assert body["deployed_version"]["deployed"] is True
    assert names(body["deployed_version"]) == ["A", "B"]


def test_unknown_action_gets_the_recorded_404(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """GET, PATCH and deploy of an unknown id answer the recorded 404 body."""
    recorded = {"statusCode": 404, "error": "Not Found", "message": "That action does not exist."}
    for answer in (
        http.get(path(UNKNOWN_ACTION)),
        http.patch(path(UNKNOWN_ACTION), json={"secrets": []}),
        http.post(path(UNKNOWN_ACTION, "/deploy")),
    ):
        assert (answer.status_code, answer.json()) == (404, recorded)


def test_patch_404_body_is_configurable(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """The unrecorded PATCH 404 body can be switched to the spec's wording."""
    sandbox.actions.patch_not_found_message = "Action not found and cannot be updated."
    answer = http.patch(path(UNKNOWN_ACTION), json={"secrets": []})
    assert answer.status_code == 404
    assert answer.json()["message"] == "Action not found and cannot be updated."


# PATCH ---------------------------------------------------------------------------------


def test_name_only_patch_keeps_the_other_values(
    sandbox: Auth0Sandbox, http: httpx.Client, clock: Clock
) -> None:
    """Name-only entries keep their value and updated_at; only the sent value changes."""
    action_id = sandbox.actions.add("login", {"A": "a-value", "B": "b-value", "C": "c-value"})
    before = stamps(http.get(path(action_id)).json())
    clock.now += 5
    body = {"secrets": [{"name": "A"}, {"name": "B", "value": "b-rotated"}, {"name": "C"}]}
    answer = http.patch(path(action_id), json=body)
    assert answer.status_code == 200
    after = answer.json()
    assert sandbox.actions.draft_secrets(action_id) == {
        "A": "a-value",
        "B": "b-rotated",
        "C": "c-value",
    }
    assert stamps(after)["A"] == before["A"]
    assert stamps(after)["C"] == before["C"]
    assert stamps(after)["B"] == after["updated_at"] != before["B"]
    assert (after["status"], after["all_changes_deployed"]) == ("pending", False)


def test_patch_replaces_the_whole_list(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """A name left out is deleted; [] deletes every secret; the deployed version keeps its own."""
    action_id = sandbox.actions.add("login", {"A": "1", "B": "2"})
    assert names(http.patch(path(action_id), json={"secrets": [{"name": "B"}]}).json()) == ["B"]
    assert sandbox.actions.draft_secrets(action_id) == {"B": "2"}
    emptied = http.patch(path(action_id), json={"secrets": []}).json()
    assert emptied["secrets"] == []
    assert names(emptied["deployed_version"]) == ["A", "B"]
    assert sandbox.actions.deployed_secrets(action_id) == {"A": "1", "B": "2"}


def test_patch_lists_existing_secrets_first(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """As recorded, the answer puts existing secrets first, not in request order."""
    action_id = sandbox.actions.add("login", {"foo": "1"})
    body = {"secrets": [{"name": "bar", "value": "2"}, {"name": "foo", "value": "3"}]}
    assert names(http.patch(path(action_id), json=body).json()) == ["foo", "bar"]


def test_name_only_identical_patch_stays_deployed(
    sandbox: Auth0Sandbox, http: httpx.Client
) -> None:
    """A name-only PATCH of the same names moves updated_at but keeps all_changes_deployed."""
    action_id = sandbox.actions.add("login", {"A": "1"})
    before = http.get(path(action_id)).json()
    after = http.patch(path(action_id), json={"secrets": [{"name": "A"}]}).json()
    assert after["updated_at"] > before["updated_at"]
    assert after["all_changes_deployed"] is True


def test_leaving_secrets_out_keeps_them(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """A PATCH without a secrets key keeps every secret."""
    action_id = sandbox.actions.add("login", {"A": "1"})
    answer = http.patch(path(action_id), json={"name": "renamed"})
    assert (answer.json()["name"], names(answer.json())) == ("renamed", ["A"])
    assert sandbox.actions.draft_secrets(action_id) == {"A": "1"}


def test_name_only_entry_for_a_new_name_is_configurable(
    sandbox: Auth0Sandbox, http: httpx.Client
) -> None:
    """Unrecorded: by default a name-only entry for an unknown name is a 400 and changes nothing;
    switched to "empty" it is stored with an empty value."""
    action_id = sandbox.actions.add("login", {"A": "1"})
    refused = http.patch(path(action_id), json={"secrets": [{"name": "A"}, {"name": "NEW"}]})
    assert refused.status_code == 400
    assert sandbox.actions.draft_secrets(action_id) == {"A": "1"}
    sandbox.actions.name_only_unknown = "empty"
    accepted = http.patch(path(action_id), json={"secrets": [{"name": "A"}, {"name": "NEW"}]})
    assert names(accepted.json()) == ["A", "NEW"]
    assert sandbox.actions.draft_secrets(action_id) == {"A": "1", "NEW": ""}


@pytest.mark.parametrize(
    ("entry", "phrase"),
    [
        ({"name": "N" * 129, "value": "x"}, "between 1 and 128 runes"),
        ({"name": "", "value": "x"}, "between 1 and 128 runes"),
        ({"name": "LONG", "value": "x" * 4097}, "at most 4096 runes"),
    ],
)
def test_patch_refuses_names_and_values_over_the_limits(
    sandbox: Auth0Sandbox, http: httpx.Client, entry: dict[str, str], phrase: str
) -> None:
    """Names outside 1–128 characters and values over 4,096 are a 400; nothing changes."""
    action_id = sandbox.actions.add("login", {"A": "1"})
    answer = http.patch(path(action_id), json={"secrets": [{"name": "A"}, entry]})
    assert answer.status_code == 400
    assert phrase in answer.json()["message"]
    assert sandbox.actions.draft_secrets(action_id) == {"A": "1"}


def test_patch_refuses_a_31st_secret(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """An action holds at most 30 secrets: a 31st is a 400 naming the cap."""
    thirty = {f"S{n}": "v" for n in range(30)}
    action_id = sandbox.actions.add("login", thirty)
    entries = [{"name": name} for name in thirty] + [{"name": "ONE_MORE", "value": "x"}]
    answer = http.patch(path(action_id), json={"secrets": entries})
    assert answer.status_code == 400
    assert "30" in answer.json()["message"]
    assert len(sandbox.actions.draft_secrets(action_id)) == 30


def test_patch_refuses_duplicate_names(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """Two entries with one name are a 400."""
    action_id = sandbox.actions.add("login", {"A": "1"})
    answer = http.patch(path(action_id), json={"secrets": [{"name": "A"}, {"name": "A"}]})
    assert answer.status_code == 400


# Build and deploy ----------------------------------------------------------------------


def test_build_moves_pending_building_built(
    sandbox: Auth0Sandbox, http: httpx.Client, clock: Clock
) -> None:
    """After a PATCH the draft is pending, then building, then built after build_seconds."""
    sandbox.actions.build_seconds = 10.0
    action_id = sandbox.actions.add("login", {"A": "1"})
    assert http.patch(path(action_id), json={"secrets": [{"name": "A", "value": "2"}]}).json()[
        "status"
    ] == ("pending")
    clock.now += 6
    assert http.get(path(action_id)).json()["status"] == "building"
    clock.now += 5
    assert http.get(path(action_id)).json()["status"] == "built"


def test_deploy_while_building_is_400(
    sandbox: Auth0Sandbox, http: httpx.Client, clock: Clock
) -> None:
    """Deploying a draft that is not built answers the reported 400; once built, it deploys."""
    sandbox.actions.build_seconds = 10.0
    action_id = sandbox.actions.add("login", {"A": "1"})
    http.patch(path(action_id), json={"secrets": [{"name": "A", "value": "2"}]})
    early = http.post(path(action_id, "/deploy"))
    assert (early.status_code, early.json()["message"]) == (400, NOT_BUILT)
    clock.now += 10
    assert http.post(path(action_id, "/deploy")).status_code == 200


def test_deploy_answers_200_with_a_version_then_deploys(
    sandbox: Auth0Sandbox, http: httpx.Client, clock: Clock
) -> None:
    """Deploy answers 200 with a new version (deployed: false); after deploy_seconds it runs."""
    sandbox.actions.deploy_seconds = 3.0
    action_id = sandbox.actions.add("login", {"A": "old", "B": "keep"})
    http.patch(path(action_id), json={"secrets": [{"name": "A", "value": "new"}, {"name": "B"}]})
    answer = http.post(path(action_id, "/deploy"))
    assert answer.status_code == 200
    version = answer.json()
    assert (version["number"], version["deployed"]) == (2, False)
    assert version["action"]["all_changes_deployed"] is False
    assert "action_id" not in version  # as recorded, although the spec lists it
    assert http.get(path(action_id)).json()["deployed_version"]["number"] == 1
    assert sandbox.actions.deployed_secrets(action_id) == {"A": "old", "B": "keep"}
    clock.now += 3
    body = http.get(path(action_id)).json()
    assert (body["deployed_version"]["id"], body["deployed_version"]["deployed"]) == (
        version["id"],
        True,
    )
    assert body["all_changes_deployed"] is True
    assert sandbox.actions.deployed_secrets(action_id) == {"A": "new", "B": "keep"}


def test_deploy_can_answer_202_as_specified(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """With deploy_status 202 the deploy answers as the OpenAPI spec says."""
    sandbox.actions.deploy_status = 202
    action_id = sandbox.actions.add("login")
    answer = http.post(path(action_id, "/deploy"))
    assert (answer.status_code, answer.json()["number"]) == (202, 2)


def test_failed_build_goes_through_retrying_and_cannot_deploy(
    sandbox: Auth0Sandbox, http: httpx.Client, clock: Clock
) -> None:
    """fail_next_builds makes the draft go retrying then failed; deploying it is a 400."""
    sandbox.actions.build_seconds = 4.0
    sandbox.actions.fail_next_builds()
    action_id = sandbox.actions.add("login", {"A": "1"})
    http.patch(path(action_id), json={"secrets": [{"name": "A", "value": "2"}]})
    clock.now += 2
    assert http.get(path(action_id)).json()["status"] == "retrying"
    clock.now += 2
    assert http.get(path(action_id)).json()["status"] == "failed"
    assert http.post(path(action_id, "/deploy")).status_code == 400
    assert sandbox.actions.deployed_number(action_id) == 1


def test_versions_list_newest_first_and_get_one(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """Each deploy adds a version; the list is newest first; a version can be read by id."""
    action_id = sandbox.actions.add("login", {"A": "1"})
    second = http.post(path(action_id, "/deploy")).json()
    listing = http.get(path(action_id, "/versions")).json()
    assert [v["number"] for v in listing["versions"]] == [2, 1]
    assert listing["total"] == 2
    one = http.get(path(action_id, f"/versions/{second['id']}"))
    assert (one.status_code, one.json()["number"]) == (200, 2)
    assert http.get(path(action_id, f"/versions/{UNKNOWN_ACTION}")).status_code == 404


def test_an_action_keeps_50_versions(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """A 51st deploy deletes the oldest version that is not deployed; numbers keep counting."""
    action_id = sandbox.actions.add("login")
    for _ in range(50):
        assert http.post(path(action_id, "/deploy")).status_code == 200
    listing = http.get(path(action_id, "/versions"), params={"per_page": 100}).json()
    assert listing["total"] == 50
    numbers = [v["number"] for v in listing["versions"]]
    assert (numbers[0], numbers[-1]) == (51, 2)


def test_never_deployed_action_has_no_deployed_version(
    sandbox: Auth0Sandbox, http: httpx.Client
) -> None:
    """A new, undeployed action has all_changes_deployed false and no deployed_version."""
    action_id = sandbox.actions.add("draft", {"A": "1"}, deployed=False)
    body = http.get(path(action_id)).json()
    assert body["all_changes_deployed"] is False
    assert "deployed_version" not in body
    assert sandbox.actions.deployed_secrets(action_id) == {}


def test_direct_edit_changes_the_draft_like_the_dashboard(
    sandbox: Auth0Sandbox, http: httpx.Client, clock: Clock
) -> None:
    """edit() changes a draft secret behind the API's back: updated_at moves, nothing deployed."""
    action_id = sandbox.actions.add("login", {"A": "1", "B": "2"})
    before = http.get(path(action_id)).json()
    clock.now += 1
    sandbox.actions.edit(action_id, {"B": "dashboard"}, remove=("A",))
    after = http.get(path(action_id)).json()
    assert names(after) == ["B"]
    assert stamps(after)["B"] > stamps(before)["B"]
    assert after["all_changes_deployed"] is False
    assert sandbox.actions.draft_secrets(action_id) == {"B": "dashboard"}


# Scopes, hooks off, limits and faults --------------------------------------------------


def test_deploy_needs_create_actions(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """With update:actions but not create:actions, deploy is a 403 naming create:actions."""
    action_id = sandbox.actions.add("login")
    sandbox.set_scopes("read:actions", "update:actions")
    with authorized(sandbox) as fresh:
        answer = fresh.post(path(action_id, "/deploy"))
        listing = fresh.get("/api/v2/actions/actions")
    assert answer.status_code == 403
    assert answer.json() == {
        "statusCode": 403,
        "error": "Forbidden",
        "message": "Insufficient scope, expected any of: create:actions",
        "errorCode": "insufficient_scope",
    }
    assert listing.status_code == 200


def test_application_without_action_scopes_reads_hooks_only(
    sandbox: Auth0Sandbox, http: httpx.Client
) -> None:
    """A hooks-only grant lists hooks but gets 403 read:actions on the actions list."""
    sandbox.set_scopes("read:hooks")
    with authorized(sandbox) as fresh:
        assert fresh.get("/api/v2/hooks").status_code == 200
        answer = fresh.get("/api/v2/actions/actions")
    assert answer.status_code == 403
    assert answer.json()["message"] == "Insufficient scope, expected any of: read:actions"


@pytest.mark.parametrize(
    ("switch", "message"),
    [
        ("hooks_disabled", "This endpoint is disabled for your tenant."),
        ("hooks_deprecated", "You are trying to access a deprecated feature."),
    ],
)
def test_hooks_off_while_actions_work(
    sandbox: Auth0Sandbox, http: httpx.Client, switch: str, message: str
) -> None:
    """Hooks answer 403 disabled or deprecated while the actions endpoints keep serving."""
    sandbox.actions.add("login")
    setattr(sandbox, switch, True)
    hooks = http.get("/api/v2/hooks")
    assert (hooks.status_code, hooks.json()["message"]) == (403, message)
    assert len(http.get("/api/v2/actions/actions").json()["actions"]) == 1


def test_actions_share_the_rate_limit(clock: Clock) -> None:
    """On the FREE bucket the third call at once is the recorded 429, on actions as on hooks."""
    with Auth0Sandbox(scopes=FULL_SCOPES, rate_limit=RateLimit.FREE, clock=clock) as sandbox:
        action_id = sandbox.actions.add("login")
        with authorized(sandbox) as http:
            answers = [http.post(path(action_id, "/deploy")) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["message"] == "Global limit has been reached"
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(
        answers[2].headers
    )


def test_faults_apply_to_actions(sandbox: Auth0Sandbox, http: httpx.Client) -> None:
    """fail_next and a dropped connection after the write work on actions calls too."""
    action_id = sandbox.actions.add("login", {"A": "1"})
    sandbox.fail_next(1, 503, method="PATCH")
    failed = http.patch(path(action_id), json={"secrets": [{"name": "A", "value": "2"}]})
    assert failed.status_code == 503
    assert sandbox.actions.draft_secrets(action_id) == {"A": "1"}
    sandbox.drop_connection_after_write()
    with pytest.raises(httpx.RemoteProtocolError):
        http.patch(path(action_id), json={"secrets": [{"name": "A", "value": "2"}]})
    assert sandbox.actions.draft_secrets(action_id) == {"A": "2"}


def test_sandbox_never_logs_action_values(
    sandbox: Auth0Sandbox, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing logged, nor the tenant's repr, contains a stored action secret value."""
    caplog.set_level(logging.DEBUG)
    action_id = sandbox.actions.add("login")
    http.patch(path(action_id), json={"secrets": [{"name": "A", "value": VALUE}]})
    assert VALUE not in caplog.text
    assert VALUE not in repr(sandbox.actions._actions)
    assert VALUE not in repr(sandbox.requests)
