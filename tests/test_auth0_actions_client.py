"""Auth0 Action secrets: the pure planner and verifier, and each step against the sandbox."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from openapi_core import OpenAPI
from pydantic import SecretStr

from bot.approvals.states import Kind
from bot.auth0 import action_plan, actions
from bot.auth0.action_plan import Action, ActionSecret, ActionVersion, PatchExpectation
from bot.auth0.actions import Waits
from bot.auth0.errors import (
    ActionFull,
    ActionNotFound,
    Auth0Error,
    Auth0Unavailable,
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
from bot.auth0.transport import Auth0Transport
from standins.auth0 import FULL_SCOPES, Auth0Sandbox, RecordedRequest
from tests.test_auth0_actions_sandbox import actions_spec_violations, load_actions_spec
from tests.test_auth0_client import CLIENT_SECRET, Sleeps

VALUE = "n3w-action-s3cr3t-that-must-not-leak"
OTHERS = {"DB_URL": "postgres://keep", "API_KEY": "key-keep", "WEBHOOK": "hook-keep"}
FAST = Waits(build_timeout=5.0, deploy_timeout=5.0, first_delay=0.02, max_delay=0.1)
T0 = "2026-11-20T10:00:00.000000000Z"
T1 = "2026-11-20T10:05:00.000000000Z"
T2 = "2026-11-20T10:06:00.000000000Z"


# Pure layer: the planner ---------------------------------------------------------------


def action_with(*secrets: tuple[str, str], deployed: bool = True, status: str = "built") -> Action:
    return Action(
        id="a1b2c3d4-0000-4000-8000-000000000001",
        name="login",
        updated_at=T1,
        status=status,
        all_changes_deployed=deployed,
        secrets=tuple(ActionSecret(name, stamp) for name, stamp in secrets),
    )


THREE = action_with(("A", T0), ("B", T0), ("C", T0))


def entries(patch: action_plan.SecretsPatch) -> list[dict[str, str]]:
    body = json.loads(patch.body())
    assert list(body) == ["secrets"]
    return list(body["secrets"])


def test_plan_add_sends_the_others_name_only_and_the_new_value() -> None:
    """Adding sends every other secret as {"name"} and only the new one with its value."""
    patch = action_plan.plan_secret_change(THREE, Kind.ADD, "NEW", SecretStr(VALUE))
    assert entries(patch) == [
        {"name": "A"},
        {"name": "B"},
        {"name": "C"},
        {"name": "NEW", "value": VALUE},
    ]
    assert patch.expectation.expected_names == {"A", "B", "C", "NEW"}
    assert patch.expectation.name_updated_at is None


def test_plan_update_sends_the_value_once() -> None:
    """Rotating B sends A and C name-only and B with the new value, remembering B's stamp."""
    patch = action_plan.plan_secret_change(THREE, Kind.UPDATE, "B", SecretStr(VALUE))
    assert entries(patch) == [{"name": "A"}, {"name": "C"}, {"name": "B", "value": VALUE}]
    assert (patch.expectation.name_updated_at, patch.expectation.action_updated_at) == (T0, T1)


def test_plan_remove_leaves_the_name_out_and_sends_no_value() -> None:
    """Removing B sends only A and C, name-only; removing the last secret sends [] on purpose."""
    patch = action_plan.plan_secret_change(THREE, Kind.REMOVE, "B", None)
    assert entries(patch) == [{"name": "A"}, {"name": "C"}]
    last = action_plan.plan_secret_change(action_with(("ONLY", T0)), Kind.REMOVE, "ONLY", None)
    assert entries(last) == []
    assert last.expectation.expected_names == frozenset()


@pytest.mark.parametrize(
    ("action", "kind", "name", "value", "error"),
    [
        (action_with(("A", T0), deployed=False), Kind.ADD, "N", "v", DraftNotDeployed),
        (action_with(("A", T0), status="failed"), Kind.ADD, "N", "v", BuildFailed),
        (THREE, Kind.ADD, "A", "v", SecretConflict),
        (THREE, Kind.UPDATE, "NOPE", "v", SecretNotFound),
        (THREE, Kind.REMOVE, "NOPE", None, SecretNotFound),
        (
            action_with(*((f"S{n}", T0) for n in range(30))),
            Kind.ADD,
            "N",
            "v",
            ActionFull,
        ),
        (THREE, Kind.ADD, "N" * 129, "v", InvalidRequest),
        (THREE, Kind.ADD, "", "v", InvalidRequest),
        (THREE, Kind.ADD, "N", "v" * 4097, InvalidRequest),
        (THREE, Kind.ADD, "N", None, InvalidRequest),
        (THREE, Kind.REMOVE, "A", "v", InvalidRequest),
    ],
)
def test_plan_refuses_what_must_not_be_sent(
    action: Action, kind: Kind, name: str, value: str | None, error: type[Auth0Error]
) -> None:
    """Undeployed drafts, failed builds, name clashes, missing names, 30 secrets and the
    length limits are refused before anything is sent."""
    with pytest.raises(error) as caught:
        action_plan.plan_secret_change(
            action, kind, name, None if value is None else SecretStr(value)
        )
    assert caught.value.reason == error.reason


def test_plan_accepts_the_limits_exactly() -> None:
    """A 128-character name, a 4,096-character value and the 30th secret are accepted."""
    twenty_nine = action_with(*((f"S{n}", T0) for n in range(29)))
    patch = action_plan.plan_secret_change(twenty_nine, Kind.ADD, "N" * 128, SecretStr("v" * 4096))
    assert len(patch.expectation.expected_names) == 30


def test_expectation_survives_a_restart_as_json() -> None:
    """The expectation round-trips through JSON (to be stored with the request), value-free."""
    patch = action_plan.plan_secret_change(THREE, Kind.UPDATE, "B", SecretStr(VALUE))
    stored = patch.expectation.to_json()
    assert VALUE not in stored
    assert PatchExpectation.from_json(stored) == patch.expectation


def test_plan_repr_never_shows_the_value() -> None:
    """The plan's repr (what a log or traceback would print) never holds the value."""
    patch = action_plan.plan_secret_change(THREE, Kind.ADD, "NEW", SecretStr(VALUE))
    assert VALUE not in repr(patch)


# Pure layer: the verifier --------------------------------------------------------------


def answer(*secrets: tuple[str, str], updated_at: str = T2) -> Action:
    return Action(
        id=THREE.id,
        name="login",
        updated_at=updated_at,
        status="pending",
        all_changes_deployed=False,
        secrets=tuple(ActionSecret(name, stamp) for name, stamp in secrets),
    )


def rotate_b() -> PatchExpectation:
    return action_plan.plan_secret_change(THREE, Kind.UPDATE, "B", SecretStr(VALUE)).expectation


def test_verify_accepts_the_expected_answer() -> None:
    """The changed secret's stamp moved and the others' did not: accepted, for each kind."""
    action_plan.verify_patch(rotate_b(), answer(("A", T0), ("B", T2), ("C", T0)))
    add = action_plan.plan_secret_change(THREE, Kind.ADD, "N", SecretStr(VALUE)).expectation
    action_plan.verify_patch(add, answer(("A", T0), ("B", T0), ("C", T0), ("N", T2)))
    remove = action_plan.plan_secret_change(THREE, Kind.REMOVE, "B", None).expectation
    action_plan.verify_patch(remove, answer(("A", T0), ("C", T0)))


@pytest.mark.parametrize(
    ("secrets", "phrase"),
    [
        ((("A", T0), ("B", T2)), "missing C"),
        ((("A", T0), ("B", T2), ("C", T0), ("X", T2)), "unexpected X"),
        ((("A", T0), ("B", T2), ("C", T2)), "changed: C"),
        ((("A", T0), ("B", T0), ("C", T0)), "B did not change"),
        ((("A", T0), ("B", T2), ("C", T0), ("C", T0)), "twice"),
    ],
)
def test_verify_flags_anything_else_as_a_concurrent_edit(
    secrets: tuple[tuple[str, str], ...], phrase: str
) -> None:
    """A name missing or extra, another stamp moved, or the target's not: concurrent_edit."""
    with pytest.raises(ConcurrentEdit, match=phrase) as caught:
        action_plan.verify_patch(rotate_b(), answer(*secrets))
    assert caught.value.reason == "concurrent_edit"


def test_patch_landed_reads_the_stamps() -> None:
    """Unchanged action: not landed; the expected stamps: landed; anything else: concurrent_edit."""
    expectation = rotate_b()
    assert (
        action_plan.patch_landed(
            expectation, answer(("A", T0), ("B", T0), ("C", T0), updated_at=T1)
        )
        is False
    )
    assert action_plan.patch_landed(expectation, answer(("A", T0), ("B", T2), ("C", T0))) is True
    with pytest.raises(ConcurrentEdit):
        action_plan.patch_landed(expectation, answer(("A", T2), ("B", T0), ("C", T0)))


# Against the sandbox over real HTTP ----------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    return load_actions_spec()


@pytest.fixture
def sandbox(spec: OpenAPI) -> Iterator[Auth0Sandbox]:
    """A running sandbox with quick builds; afterwards its Actions traffic is checked against
    the OpenAPI subset."""
    with Auth0Sandbox(scopes=FULL_SCOPES) as running:
        running.actions.build_seconds = 0.2
        yield running
        assert actions_spec_violations(spec, running) == []


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sandbox: Auth0Sandbox, sleeps: Sleeps) -> Iterator[Auth0Transport]:
    with Auth0Transport(
        domain=sandbox.domain,
        client_id=sandbox.client_id,
        client_secret=SecretStr(CLIENT_SECRET),
        base_url=sandbox.url,
        timeout=5.0,
        rate_limit_deadline=5.0,
        retry_backoff=0.01,
        sleep=sleeps,
    ) as made:
        yield made


def calls(sandbox: Auth0Sandbox, method: str, suffix: str = "") -> list[RecordedRequest]:
    return [
        r
        for r in sandbox.requests
        if r.method == method and r.path.startswith("/api/v2/actions/") and r.path.endswith(suffix)
    ]


def apply(
    client: Auth0Transport, action_id: str, kind: Kind, name: str, value: str | None
) -> Action:
    """Every step of one change, in the order the workflow runs them."""
    patch = action_plan.plan_secret_change(
        actions.get_action(client, action_id),
        kind,
        name,
        None if value is None else SecretStr(value),
    )
    action_plan.verify_patch(patch.expectation, actions.patch_secrets(client, patch))
    actions.wait_until_built(client, action_id, FAST)
    version = actions.deploy(client, action_id, FAST)
    running = actions.wait_until_deployed(client, action_id, version, FAST)
    action_plan.verify_deployed(patch.expectation, running)
    return running


@pytest.mark.parametrize("deploy_status", [200, 202])
@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        (Kind.ADD, "NEW", {**OTHERS, "NEW": VALUE}),
        (Kind.UPDATE, "API_KEY", {**OTHERS, "API_KEY": VALUE}),
        (Kind.REMOVE, "API_KEY", {k: v for k, v in OTHERS.items() if k != "API_KEY"}),
    ],
)
def test_one_change_keeps_every_other_deployed_value(
    sandbox: Auth0Sandbox,
    client: Auth0Transport,
    deploy_status: int,
    kind: Kind,
    name: str,
    expected: dict[str, str],
) -> None:
    """Add, rotate or remove on an action holding three secrets: the deployed values of the
    others are unchanged, one PATCH carried only the new value, one deploy, version 2 runs."""
    sandbox.actions.deploy_status = deploy_status
    sandbox.actions.deploy_seconds = 0.2
    action_id = sandbox.actions.add("login", OTHERS)
    done = apply(client, action_id, kind, name, None if kind is Kind.REMOVE else VALUE)
    assert sandbox.actions.deployed_secrets(action_id) == expected
    [patch] = calls(sandbox, "PATCH")
    values = [entry["value"] for entry in patch.json()["secrets"] if "value" in entry]
    assert values == ([] if kind is Kind.REMOVE else [VALUE])
    assert len(calls(sandbox, "POST", "/deploy")) == 1
    assert done.deployed_version is not None and done.deployed_version.number == 2
    assert done.all_changes_deployed is True


def test_list_actions_follows_pages_and_missing_keys(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """230 actions come from three pages of 100; a name nobody has gives [] (no total key)."""
    for n in range(230):
        sandbox.actions.add(f"action-{n:03}")
    listed = actions.list_actions(client)
    assert len({a.id for a in listed}) == 230
    assert [r.params["page"] for r in calls(sandbox, "GET")] == ["0", "1", "2"]
    assert actions.list_actions(client, name="nobody") == []
    [named] = actions.list_actions(client, name="action-007")
    assert named.name == "action-007"


def test_list_actions_follows_smaller_pages_than_asked(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """If Auth0 answers 50 per page when asked for 100, paging follows total, missing none."""
    sandbox.actions.page_cap = 50
    for n in range(120):
        sandbox.actions.add(f"action-{n:03}")
    assert len({a.id for a in actions.list_actions(client)}) == 120
    assert [r.params["page"] for r in calls(sandbox, "GET")] == ["0", "1", "2"]


def test_get_action_parses_what_the_bot_needs(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """get_action gives names with stamps, status, all_changes_deployed and the running version."""
    action_id = sandbox.actions.add("login", {"A": "1"}, trigger_id="credentials-exchange")
    action = actions.get_action(client, action_id)
    assert [s.name for s in action.secrets] == ["A"]
    assert (action.status, action.all_changes_deployed, action.trigger_ids) == (
        "built",
        True,
        ("credentials-exchange",),
    )
    assert action.deployed_version == ActionVersion(
        action.deployed_version.id if action.deployed_version else "", 1, True, ("A",)
    )


@pytest.mark.parametrize(
    "patch_404", ["That action does not exist.", "Action not found and cannot be updated."]
)
def test_unknown_action_is_action_not_found_at_every_step(
    sandbox: Auth0Sandbox, client: Auth0Transport, patch_404: str
) -> None:
    """GET, PATCH (either 404 wording) and deploy of a deleted action raise ActionNotFound."""
    sandbox.actions.patch_not_found_message = patch_404
    action_id = sandbox.actions.add("login", {"A": "1"})
    patch = action_plan.plan_secret_change(
        actions.get_action(client, action_id), Kind.ADD, "N", SecretStr(VALUE)
    )
    gone = replace(patch.expectation, action_id="00000000-0000-4000-8000-000000000000")
    lost = action_plan.SecretsPatch(gone, patch.value)
    for step in (
        lambda: actions.get_action(client, gone.action_id),
        lambda: actions.patch_secrets(client, lost),
        lambda: actions.deploy(client, gone.action_id, FAST),
    ):
        with pytest.raises(ActionNotFound) as caught:
            step()
        assert caught.value.reason == "action_not_found"


def test_reads_are_retried_after_5xx_then_give_up(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """A GET answered 503 is retried with backoff; four 503s in a row are auth0_unavailable."""
    action_id = sandbox.actions.add("login", OTHERS)
    sandbox.fail_next(1, 503, method="GET")
    assert actions.get_action(client, action_id).id == action_id
    assert [r.status for r in calls(sandbox, "GET")] == [503, 200]
    sandbox.fail_next(4, 503, method="GET")
    with pytest.raises(Auth0Unavailable) as caught:
        actions.get_action(client, action_id)
    assert caught.value.reason == "auth0_unavailable"
    assert not isinstance(caught.value, OutcomeUnknown)


def test_revoked_token_is_renewed_once(sandbox: Auth0Sandbox, client: Auth0Transport) -> None:
    """A 401 on an actions call renews the token and repeats the call."""
    action_id = sandbox.actions.add("login", OTHERS)
    actions.get_action(client, action_id)
    sandbox.revoke_tokens()
    assert actions.get_action(client, action_id).id == action_id
    assert sandbox.token_requests == 2


def test_malformed_action_id_is_refused_before_sending(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """An id that could change the URL path raises InvalidRequest without any HTTP."""
    with pytest.raises(InvalidRequest):
        actions.get_action(client, "../../clients")
    assert sandbox.requests == []


def test_edit_between_read_and_patch_is_a_concurrent_edit(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """Someone rotates another secret in the Dashboard between the read and the PATCH: the
    answer shows it, nothing is deployed, and their value is kept."""
    action_id = sandbox.actions.add("login", OTHERS)
    patch = action_plan.plan_secret_change(
        actions.get_action(client, action_id), Kind.ADD, "NEW", SecretStr(VALUE)
    )
    sandbox.actions.edit(action_id, {"WEBHOOK": "dashboard-value"})
    with pytest.raises(ConcurrentEdit, match="changed: WEBHOOK"):
        action_plan.verify_patch(patch.expectation, actions.patch_secrets(client, patch))
    assert sandbox.actions.draft_secrets(action_id)["WEBHOOK"] == "dashboard-value"
    assert sandbox.actions.deployed_secrets(action_id) == OTHERS
    assert calls(sandbox, "POST", "/deploy") == []


@pytest.mark.parametrize("unknown_name", ["reject", "empty"])
def test_secret_deleted_between_read_and_patch_is_a_concurrent_edit(
    sandbox: Auth0Sandbox, client: Auth0Transport, unknown_name: str
) -> None:
    """A secret deleted in the Dashboard meanwhile is caught whether Auth0 refuses the
    name-only entry (400) or stores it empty; nothing is deployed."""
    sandbox.actions.name_only_unknown = unknown_name
    action_id = sandbox.actions.add("login", OTHERS)
    patch = action_plan.plan_secret_change(
        actions.get_action(client, action_id), Kind.UPDATE, "API_KEY", SecretStr(VALUE)
    )
    sandbox.actions.edit(action_id, remove=("DB_URL",))
    with pytest.raises(ConcurrentEdit):
        action_plan.verify_patch(patch.expectation, actions.patch_secrets(client, patch))
    assert sandbox.actions.deployed_secrets(action_id) == OTHERS
    assert calls(sandbox, "POST", "/deploy") == []


def test_lost_patch_answer_is_read_back_as_landed(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """The PATCH lands but its answer is lost: OutcomeUnknown, then read_back says it landed;
    nothing was sent twice."""
    action_id = sandbox.actions.add("login", OTHERS)
    patch = action_plan.plan_secret_change(
        actions.get_action(client, action_id), Kind.UPDATE, "API_KEY", SecretStr(VALUE)
    )
    sandbox.drop_connection_after_write()
    with pytest.raises(OutcomeUnknown) as caught:
        actions.patch_secrets(client, patch)
    assert caught.value.reason == "auth0_unavailable"
    assert actions.read_back(client, patch.expectation) is True
    assert len(calls(sandbox, "PATCH")) == 1
    assert sandbox.actions.draft_secrets(action_id)["API_KEY"] == VALUE


def test_patch_answered_503_is_read_back_as_not_landed(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """A PATCH answered 503 is not retried blindly: read_back says it did not land."""
    action_id = sandbox.actions.add("login", OTHERS)
    patch = action_plan.plan_secret_change(
        actions.get_action(client, action_id), Kind.ADD, "NEW", SecretStr(VALUE)
    )
    sandbox.fail_next(1, 503, method="PATCH")
    with pytest.raises(OutcomeUnknown):
        actions.patch_secrets(client, patch)
    assert actions.read_back(client, patch.expectation) is False
    assert sandbox.actions.draft_secrets(action_id) == OTHERS


def test_lost_patch_then_someone_else_edits_is_a_concurrent_edit(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """When the lost PATCH did not land but the action changed anyway, read_back refuses."""
    action_id = sandbox.actions.add("login", OTHERS)
    patch = action_plan.plan_secret_change(
        actions.get_action(client, action_id), Kind.ADD, "NEW", SecretStr(VALUE)
    )
    sandbox.fail_next(1, 503, method="PATCH")
    with pytest.raises(OutcomeUnknown):
        actions.patch_secrets(client, patch)
    sandbox.actions.edit(action_id, {"DB_URL": "dashboard"})
    with pytest.raises(ConcurrentEdit):
        actions.read_back(client, patch.expectation)


def test_failed_build_is_reported_without_a_deploy(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """A build that goes retrying then failed raises BuildFailed; no deploy is sent."""
    sandbox.actions.fail_next_builds()
    action_id = sandbox.actions.add("login", OTHERS)
    patch = action_plan.plan_secret_change(
        actions.get_action(client, action_id), Kind.ADD, "NEW", SecretStr(VALUE)
    )
    actions.patch_secrets(client, patch)
    with pytest.raises(BuildFailed) as caught:
        actions.wait_until_built(client, action_id, FAST)
    assert caught.value.reason == "build_failed"
    assert calls(sandbox, "POST", "/deploy") == []
    assert "retrying" in {json_status(r) for r in calls(sandbox, "GET")}


def json_status(recorded: RecordedRequest) -> Any:
    return json.loads(recorded.response_body).get("status")


def test_build_that_never_finishes_is_deploy_failed(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """A draft still building after the build timeout raises DeployFailed, bounded in time."""
    sandbox.actions.build_seconds = 60.0
    action_id = sandbox.actions.add("login", OTHERS)
    sandbox.actions.edit(action_id, {"X": "1"})
    started = time.monotonic()
    with pytest.raises(DeployFailed):
        actions.wait_until_built(
            client, action_id, Waits(build_timeout=0.5, first_delay=0.05, max_delay=0.1)
        )
    assert time.monotonic() - started < 2.0


def test_deploy_while_building_waits_and_retries(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """Deploying straight after the PATCH meets the 400 'built' state, waits for the build and
    deploys once it is built."""
    sandbox.actions.build_seconds = 0.4
    action_id = sandbox.actions.add("login", OTHERS)
    patch = action_plan.plan_secret_change(
        actions.get_action(client, action_id), Kind.ADD, "NEW", SecretStr(VALUE)
    )
    actions.patch_secrets(client, patch)
    version = actions.deploy(client, action_id, FAST)
    assert [r.status for r in calls(sandbox, "POST", "/deploy")] == [400, 200]
    assert version.number == 2


def test_deploy_without_create_actions_names_the_scope(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """With update:actions but not create:actions the PATCH works and the deploy raises
    InsufficientScope naming create:actions."""
    sandbox.set_scopes("read:actions", "update:actions")
    action_id = sandbox.actions.add("login", OTHERS)
    patch = action_plan.plan_secret_change(
        actions.get_action(client, action_id), Kind.ADD, "NEW", SecretStr(VALUE)
    )
    actions.patch_secrets(client, patch)
    actions.wait_until_built(client, action_id, FAST)
    with pytest.raises(InsufficientScope) as caught:
        actions.deploy(client, action_id, FAST)
    assert caught.value.scope == "create:actions"
    assert "`update:actions` alone cannot publish" in str(caught.value)


def test_hooks_only_grant_cannot_list_actions(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """Without read:actions, listing raises InsufficientScope naming read:actions."""
    sandbox.set_scopes("read:hooks", "update:hooks")
    with pytest.raises(InsufficientScope) as caught:
        actions.list_actions(client)
    assert caught.value.scope == "read:actions"


def test_deploy_429_is_waited_out(
    sandbox: Auth0Sandbox, client: Auth0Transport, sleeps: Sleeps
) -> None:
    """A 429 on the deploy (recorded) is waited out like any other call, then it deploys."""
    action_id = sandbox.actions.add("login", OTHERS)
    sandbox.fail_next(1, 429, method="POST")
    assert actions.deploy(client, action_id, FAST).number == 2
    assert [r.status for r in calls(sandbox, "POST", "/deploy")] == [429, 200]
    assert sleeps.calls


def test_deploy_429_past_the_budget_is_rate_limited(sandbox: Auth0Sandbox) -> None:
    """When 429s outlast the wait budget the deploy raises RateLimited, deploying nothing."""
    action_id = sandbox.actions.add("login", OTHERS)
    with Auth0Transport(
        domain=sandbox.domain,
        client_id=sandbox.client_id,
        client_secret=SecretStr(CLIENT_SECRET),
        base_url=sandbox.url,
        rate_limit_deadline=0.0,
    ) as impatient:
        sandbox.fail_next(1, 429, method="POST")
        with pytest.raises(RateLimited) as caught:
            actions.deploy(impatient, action_id, FAST)
    assert caught.value.reason == "rate_limited"
    assert sandbox.actions.deployed_number(action_id) == 1


def test_lost_deploy_answer_is_found_in_the_versions(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """The deploy lands but its answer is lost: OutcomeUnknown, and version_after finds it."""
    action_id = sandbox.actions.add("login", OTHERS)
    assert actions.version_after(client, action_id, 1) is None
    sandbox.drop_connection_after_write()
    with pytest.raises(OutcomeUnknown):
        actions.deploy(client, action_id, FAST)
    found = actions.version_after(client, action_id, 1)
    assert found is not None and found.number == 2
    assert len(calls(sandbox, "POST", "/deploy")) == 1


def test_deploy_that_never_runs_is_deploy_failed(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """A version that does not start running before the deploy timeout raises DeployFailed."""
    sandbox.actions.deploy_seconds = 60.0
    action_id = sandbox.actions.add("login", OTHERS)
    version = actions.deploy(client, action_id, FAST)
    with pytest.raises(DeployFailed) as caught:
        actions.wait_until_deployed(
            client, action_id, version, Waits(deploy_timeout=0.3, first_delay=0.05)
        )
    assert caught.value.reason == "deploy_failed"


def test_draft_changed_between_patch_and_deploy_is_reported(
    sandbox: Auth0Sandbox, client: Auth0Transport
) -> None:
    """A secret removed in the Dashboard after the bot's PATCH is published by the deploy:
    verify_deployed says so, naming the missing secret."""
    action_id = sandbox.actions.add("login", OTHERS)
    patch = action_plan.plan_secret_change(
        actions.get_action(client, action_id), Kind.ADD, "NEW", SecretStr(VALUE)
    )
    action_plan.verify_patch(patch.expectation, actions.patch_secrets(client, patch))
    sandbox.actions.edit(action_id, remove=("WEBHOOK",))
    actions.wait_until_built(client, action_id, FAST)
    version = actions.deploy(client, action_id, FAST)
    running = actions.wait_until_deployed(client, action_id, version, FAST)
    with pytest.raises(ConcurrentEdit, match="missing WEBHOOK"):
        action_plan.verify_deployed(patch.expectation, running)


def test_no_value_in_logs_or_errors(
    sandbox: Auth0Sandbox, client: Auth0Transport, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole change and a concurrent edit log nothing and raise nothing holding the value."""
    caplog.set_level(logging.DEBUG)
    action_id = sandbox.actions.add("login", OTHERS)
    apply(client, action_id, Kind.ADD, "NEW", VALUE)
    patch = action_plan.plan_secret_change(
        actions.get_action(client, action_id), Kind.UPDATE, "NEW", SecretStr(VALUE + "2")
    )
    sandbox.actions.edit(action_id, {"DB_URL": "x"})
    with pytest.raises(ConcurrentEdit) as caught:
        action_plan.verify_patch(patch.expectation, actions.patch_secrets(client, patch))
    assert VALUE not in caplog.text
    assert VALUE not in str(caught.value) and VALUE not in repr(caught.value)
