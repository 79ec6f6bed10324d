"""The action target against the sandbox tenant over real HTTP: a change's phases, and an apply
resumed from each recorded phase (never a second PATCH, one deploy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bot.approvals.states import Kind
from bot.auth0 import action_plan
from bot.auth0 import actions as api
from bot.auth0.actions import Waits
from bot.auth0.errors import ConcurrentEdit
from bot.auth0.transport import Auth0Transport
from bot.targets import ActionTarget, Change, NoProgress, TargetLocks
from bot.targets.errors import TargetError
from standins.auth0 import FULL_SCOPES, Auth0Sandbox

OTHERS = {"ONE": "value-one", "TWO": "value-two", "THREE": "value-three"}
QUICK = Waits(
    first_delay=0.01, max_delay=0.05, build_timeout=5.0, deploy_timeout=5.0, expected_build=0.01
)


@pytest.fixture
def sandbox() -> Iterator[Auth0Sandbox]:
    with Auth0Sandbox(scopes=FULL_SCOPES) as running:
        yield running


@pytest.fixture
def target(sandbox: Auth0Sandbox) -> Iterator[ActionTarget]:
    client = Auth0Transport(
        domain=sandbox.domain,
        client_id=sandbox.client_id,
        client_secret=SecretStr("sandbox-client-secret"),
        base_url=sandbox.url,
        timeout=5.0,
        retry_backoff=0.01,
    )
    target = ActionTarget(client, TargetLocks(), QUICK)
    yield target
    target.close()
    client.close()


def rotate(action_id: str, value: str = "rotated-one") -> Change:
    return Change(Kind.UPDATE, action_id, "ONE", SecretStr(value))


def count(sandbox: Auth0Sandbox, method: str, suffix: str = "") -> int:
    return sum(1 for r in sandbox.requests if r.method == method and r.path.endswith(suffix))


def test_a_change_records_every_phase_and_returns_the_deployed_version(
    sandbox: Auth0Sandbox, target: ActionTarget
) -> None:
    """planned → patched → deploy_requested → deployed, the version number returned."""
    action_id = sandbox.actions.add("Enrich", dict(OTHERS))
    progress = NoProgress()
    applied = target.apply(rotate(action_id), progress)
    assert progress.phase == "deployed" and applied.version == 2
    assert progress.data["action_version"] == 2 and progress.data["deployed_number"] == 1
    assert sandbox.actions.deployed_secrets(action_id) == {**OTHERS, "ONE": "rotated-one"}
    assert (count(sandbox, "PATCH"), count(sandbox, "POST", "/deploy")) == (1, 1)


def planned(target: ActionTarget, action_id: str, *, send: bool) -> NoProgress:
    """What a process records just before its PATCH (and, with ``send``, the PATCH it then
    sent before dying)."""
    patch = action_plan.plan_secret_change(
        target.read(action_id), Kind.UPDATE, "ONE", SecretStr("rotated-one")
    )
    if send:
        api.patch_secrets(target.auth0, patch)
    return NoProgress("planned", {"expectation": patch.expectation.to_json(), "deployed_number": 1})


def test_resumed_after_a_patch_that_landed_it_does_not_patch_again(
    sandbox: Auth0Sandbox, target: ActionTarget
) -> None:
    """A process died after its PATCH landed but before recording ``patched``: the resumed
    apply sees the stamps moved as planned, records ``patched`` and only deploys."""
    action_id = sandbox.actions.add("Enrich", dict(OTHERS))
    resumed = planned(target, action_id, send=True)
    assert target.apply(rotate(action_id), resumed).version == 2
    assert (count(sandbox, "PATCH"), count(sandbox, "POST", "/deploy")) == (1, 1)
    assert sandbox.actions.deployed_secrets(action_id) == {**OTHERS, "ONE": "rotated-one"}


def test_resumed_after_a_plan_whose_patch_never_arrived_it_patches_once(
    sandbox: Auth0Sandbox, target: ActionTarget
) -> None:
    """``planned`` recorded, PATCH never sent: the action is untouched, so one PATCH now."""
    action_id = sandbox.actions.add("Enrich", dict(OTHERS))
    resumed = planned(target, action_id, send=False)
    assert target.apply(rotate(action_id), resumed).version == 2
    assert (count(sandbox, "PATCH"), count(sandbox, "POST", "/deploy")) == (1, 1)
    assert sandbox.actions.deployed_secrets(action_id) == {**OTHERS, "ONE": "rotated-one"}


def test_resumed_after_the_deploy_was_requested_it_only_waits(
    sandbox: Auth0Sandbox, target: ActionTarget
) -> None:
    """``deploy_requested`` recorded: no PATCH, no second deploy, the version confirmed."""
    action_id = sandbox.actions.add("Enrich", dict(OTHERS))
    first = NoProgress()
    target.apply(rotate(action_id), first)
    resumed = NoProgress("deploy_requested", {**first.data})
    assert target.apply(rotate(action_id), resumed).version == 2
    assert (count(sandbox, "PATCH"), count(sandbox, "POST", "/deploy")) == (1, 1)


def test_resumed_after_patched_finds_its_own_earlier_deploy(
    sandbox: Auth0Sandbox, target: ActionTarget
) -> None:
    """The deploy went out but ``deploy_requested`` was never recorded: the resumed apply finds
    the version created since the plan and does not deploy again."""
    action_id = sandbox.actions.add("Enrich", dict(OTHERS))
    first = NoProgress()
    target.apply(rotate(action_id), first)
    resumed = NoProgress(
        "patched",
        {k: first.data[k] for k in ("expectation", "deployed_number")},
    )
    assert target.apply(rotate(action_id), resumed).version == 2
    assert (count(sandbox, "PATCH"), count(sandbox, "POST", "/deploy")) == (1, 1)


def test_a_dashboard_edit_after_the_plan_is_a_concurrent_edit_on_resume(
    sandbox: Auth0Sandbox, target: ActionTarget
) -> None:
    """``planned`` recorded, then someone edited the action: it is not ours, so the resumed
    apply refuses with ``concurrent_edit`` and sends nothing."""
    action_id = sandbox.actions.add("Enrich", dict(OTHERS))
    resumed = planned(target, action_id, send=False)
    sandbox.actions.edit(action_id, {"TWO": "dashboard"})
    with pytest.raises(TargetError) as caught:
        target.apply(rotate(action_id), resumed)
    assert isinstance(caught.value.__cause__, ConcurrentEdit)
    assert caught.value.reason == "concurrent_edit"
    assert count(sandbox, "PATCH") == 0 and count(sandbox, "POST", "/deploy") == 0
    assert sandbox.actions.draft_secrets(action_id)["TWO"] == "dashboard"


class Crash(Exception):
    """The process died at this point."""


class CrashingAt(NoProgress):
    """Phases kept in memory until recording ``crash_at``, where the process dies (just
    before it is recorded, or with ``after`` just after)."""

    def __init__(self, crash_at: str, after: bool) -> None:
        super().__init__()
        self.crash_at, self.after = crash_at, after

    def record(self, phase: str, **data: object) -> None:
        if phase == self.crash_at and self.after:
            super().record(phase, **data)
        if phase == self.crash_at:
            raise Crash(phase)
        super().record(phase, **data)


def crashed(target: ActionTarget, action_id: str, at: str, after: bool = False) -> NoProgress:
    """What a process that died just before (``after``: just after) recording ``at`` left in
    the request's row."""
    progress = CrashingAt(at, after)
    with pytest.raises(Crash):
        target.apply(rotate(action_id), progress)
    return NoProgress(progress.phase, dict(progress.data))


def test_resumed_after_a_patch_whose_phase_was_never_recorded_it_deploys_once(
    sandbox: Auth0Sandbox, target: ActionTarget
) -> None:
    """The PATCH landed but the process died before recording ``patched``: the row says only
    ``planned`` (the intent, recorded before the read). The resumed apply sees the intended
    change in the undeployed draft, as one PATCH makes it: no second PATCH, one deploy."""
    action_id = sandbox.actions.add("Enrich", dict(OTHERS))
    resumed = crashed(target, action_id, "patched")
    assert resumed.phase == "planned" and count(sandbox, "PATCH") == 1
    assert target.apply(rotate(action_id), resumed).version == 2
    assert (count(sandbox, "PATCH"), count(sandbox, "POST", "/deploy")) == (1, 1)
    assert sandbox.actions.deployed_secrets(action_id) == {**OTHERS, "ONE": "rotated-one"}


def test_resumed_after_planned_with_someone_elses_draft_edit_sends_nothing(
    sandbox: Auth0Sandbox, target: ActionTarget
) -> None:
    """``planned`` recorded, the PATCH never sent, and someone left an undeployed edit: the
    bot cannot tell that draft from its own, so it neither PATCHes nor deploys."""
    action_id = sandbox.actions.add("Enrich", dict(OTHERS))
    resumed = NoProgress("planned", {"batch": [""], "intent": [["", "update", "ONE"]]})
    sandbox.actions.edit(action_id, {"TWO": "dashboard"})
    with pytest.raises(TargetError) as caught:
        target.apply(rotate(action_id), resumed)
    assert caught.value.reason == "concurrent_edit"
    assert count(sandbox, "PATCH") == 0 and count(sandbox, "POST", "/deploy") == 0


def test_a_resumed_apply_checks_the_draft_against_the_patch_answer_before_deploying(
    sandbox: Auth0Sandbox, target: ActionTarget
) -> None:
    """The process died after recording ``patched``; someone edits the draft before the
    restart. The resumed apply compares the draft with what the PATCH answer showed (kept in
    the row) and deploys nothing: ``concurrent_edit``, no second PATCH."""
    action_id = sandbox.actions.add("Enrich", dict(OTHERS))
    resumed = crashed(target, action_id, "patched", after=True)
    assert resumed.phase == "patched"
    sandbox.actions.edit(action_id, {"TWO": "dashboard"})
    with pytest.raises(TargetError) as caught:
        target.apply(rotate(action_id), resumed)
    assert caught.value.reason == "concurrent_edit"
    assert "someone else edited the action's draft" in caught.value.message
    assert count(sandbox, "PATCH") == 1 and count(sandbox, "POST", "/deploy") == 0
    assert sandbox.actions.deployed_secrets(action_id) == OTHERS
