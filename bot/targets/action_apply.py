"""The phased, crash-safe apply of a batch of secret changes to one action (under its lock).

Phases, recorded (on every member request's row) before the step they announce:
``planned`` (the intent, before any read) → read, plan, PATCH at once → ``patched`` (what the
PATCH answer showed, the refusals) → read until built, the draft unchanged since the PATCH →
deploy → ``deploy_requested`` (the version) → ``deployed`` (its number). A resumed apply goes on
from the recorded phase: it never patches twice and deploys once, and makes the same checks.
From approval to deployed one batch makes five Auth0 calls when the build takes about
``Waits.expected_build``: read, PATCH, build read, deploy, deployed read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from bot.approvals.states import Kind
from bot.auth0 import action_batch as batch
from bot.auth0 import action_plan as plan
from bot.auth0 import actions as api
from bot.auth0.action_batch import BatchExpectation, Content, Wanted
from bot.auth0.action_plan import Action, ActionVersion, PatchExpectation
from bot.auth0.actions import Waits
from bot.auth0.errors import (
    Auth0Unavailable,
    BuildFailed,
    ConcurrentEdit,
    DeployFailed,
    InsufficientScope,
    OutcomeUnknown,
)
from bot.auth0.transport import Auth0Transport
from bot.targets.base import Applied, Change, Progress
from bot.targets.errors import TargetError

PLANNED: Final = "planned"
PATCHED: Final = "patched"
DEPLOY_REQUESTED: Final = "deploy_requested"
DEPLOYED: Final = "deployed"


@dataclass
class BatchOutcome:
    """What a batch came to: the deployed version (None: nothing was patched), and the
    changes refused before the PATCH, by key, each with its own reason."""

    applied: Applied | None
    refused: dict[str, TargetError] = field(default_factory=dict)


class ActionApply:
    """Runs one batch through its phases; remembers how long builds take."""

    def __init__(self, auth0: Auth0Transport, waits: Waits) -> None:
        self.auth0 = auth0
        self.waits = waits
        self.expected_build = waits.expected_build

    def run(
        self, action_id: str, changes: Mapping[str, Change], progress: Progress
    ) -> BatchOutcome:
        """Apply ``changes`` (keyed by request) as one PATCH, one build, one deploy."""
        resumed = progress.phase
        if resumed is None:
            intent = [[key, str(c.kind), c.name] for key, c in changes.items()]
            progress.record(PLANNED, batch=list(changes), intent=intent)
        patched_at = None
        if progress.phase == PLANNED:
            patched_at = self._patch(action_id, changes, progress, resumed == PLANNED)
        refused = {k: TargetError(r, m) for k, (r, m) in _refusals(progress.data).items()}
        if progress.phase == PLANNED:  # every change refused: nothing was sent
            return BatchOutcome(None, refused)
        version = self._deploy(action_id, progress, resumed == PATCHED, patched_at)
        return BatchOutcome(Applied(version), refused)

    # PATCH -------------------------------------------------------------------------------

    def _patch(
        self, action_id: str, changes: Mapping[str, Change], progress: Progress, resumed: bool
    ) -> float | None:
        """Read, plan from that read and PATCH at once (any wait for the rate limit comes
        before the read); keep what the answer shows. When the PATCH was answered (None:
        nothing was sent, or a dead process's PATCH had landed)."""
        with self.auth0.back_to_back(2):
            current = api.get_action(self.auth0, action_id)
            if resumed and self._landed_before(current, progress):
                return None
            self._can_deploy()
            wanted = {k: Wanted(c.kind, c.name, c.value) for k, c in changes.items()}
            patch, refused = batch.plan_batch(current, wanted)
            reasons = {k: [e.reason, e.message] for k, e in refused.items()}
            if patch is None:
                progress.record(PLANNED, refused=reasons)
                return None
            answer = self._send_patch(patch)
        patched_at = time.monotonic()
        self._record_patched(progress, answer, current, patch.expectation, reasons)
        return patched_at

    def _send_patch(self, patch: batch.BatchPatch) -> Action:
        """The PATCH and its checked answer (after a lost answer: a read showing it landed)."""
        try:
            answer = api.patch_secrets(self.auth0, patch)
            batch.verify_batch(patch.expectation, answer)
        except OutcomeUnknown:
            answer = api.get_action(self.auth0, patch.action_id)
            if not batch.batch_landed(patch.expectation, answer):
                raise Auth0Unavailable("Auth0 did not take the change: nothing changed") from None
        return answer

    def _can_deploy(self) -> None:
        """A PATCH the bot could not deploy would leave an undeployed draft that blocks every
        later change: without ``create:actions`` (when the token lists its scopes), stop here
        (the token is the one the read just used)."""
        scopes = self.auth0.token_scopes()
        if scopes is not None and "create:actions" not in scopes:
            raise InsufficientScope("create:actions", api.DEPLOY_SCOPE)

    def _landed_before(self, current: Action, progress: Progress) -> bool:
        """A resumed ``planned``: whether the dead process's PATCH landed (then ``patched``
        is recorded from this read)."""
        data = progress.data
        if "expectation" in data:  # recorded by an earlier version of the bot, one change
            old = PatchExpectation.from_json(str(data["expectation"]))
            landed = plan.patch_landed(old, current)
        else:
            intent = [(Kind(kind), name) for _, kind, name in data.get("intent", [])]
            landed = batch.intent_landed(intent, current)
        if landed:
            self._record_patched(progress, current, current, None, {})
        return landed

    def _record_patched(
        self,
        progress: Progress,
        answer: Action,
        before: Action,
        expectation: BatchExpectation | None,
        refused: dict[str, list[str]],
    ) -> None:
        live = before.deployed_version
        progress.record(
            PATCHED,
            content=Content.of(answer).to_json(),
            expectation=expectation.to_json() if expectation else None,
            refused=refused,
            deployed_number=live.number if live else None,
        )

    # Build and deploy ----------------------------------------------------------------------

    def _deploy(
        self, action_id: str, progress: Progress, resumed: bool, patched_at: float | None
    ) -> int | None:
        """Deploy once (a resumed apply first looks for its own earlier deploy), then wait."""
        if progress.phase == PATCHED:
            before = progress.data.get("deployed_number")
            earlier = (
                api.version_after(self.auth0, action_id, int(before))
                if resumed and isinstance(before, int)
                else None
            )
            version = earlier or self._build_and_deploy(action_id, progress.data, patched_at)
            progress.record(DEPLOY_REQUESTED, version_id=version.id, version_number=version.number)
        if progress.phase == DEPLOY_REQUESTED:
            number = progress.data.get("version_number")
            version = ActionVersion(
                str(progress.data["version_id"]), number if isinstance(number, int) else None, False
            )
            running = api.wait_until_deployed(self.auth0, action_id, version, self.waits)
            _check_deployed(progress.data, running)
            deployed = running.deployed_version
            progress.record(DEPLOYED, action_version=deployed.number if deployed else None)
        number = progress.data.get("action_version")
        return number if isinstance(number, int) else None

    def _build_and_deploy(
        self, action_id: str, data: Mapping[str, Any], started: float | None
    ) -> ActionVersion:
        """Look at the build once it is expected done, then until built; every look checks
        that the draft is still the bot's, and the deploy follows the last one at once."""
        kept, waits = _kept(data), self.waits
        if started is not None:
            waits.sleep(max(self.expected_build - (time.monotonic() - started), 0.0))
        deadline = waits.clock() + waits.build_timeout
        delay = waits.first_delay
        while True:
            with self.auth0.back_to_back(2):
                action = api.get_action(self.auth0, action_id)
                if kept is not None:  # someone else's edit is never deployed
                    batch.check_unchanged(kept, action)
                elif action.status == "failed":
                    raise BuildFailed()
                if action.status == "built":
                    self._learn(started)
                    check = None if kept is None else partial(batch.check_unchanged, kept)
                    return api.deploy(self.auth0, action_id, waits, check)
            if waits.clock() + delay > deadline:
                raise DeployFailed(
                    f"the action's draft did not finish building within {waits.build_timeout:g} "
                    "s: nothing was deployed"
                )
            waits.sleep(delay)
            delay = min(delay * 2, waits.max_delay)

    def _learn(self, started: float | None) -> None:
        """Builds slower than expected: look later next time (never sooner than configured)."""
        if started is not None:
            took = time.monotonic() - started
            if took > self.expected_build * 1.25:
                self.expected_build = min(took, self.waits.build_timeout / 2)


def _kept(data: Mapping[str, Any]) -> Content | None:
    """What the PATCH answer showed (None: recorded by an earlier version of the bot)."""
    content = data.get("content")
    return Content.from_json(content) if isinstance(content, str) else None


def _check_deployed(data: Mapping[str, Any], running: Action) -> None:
    """The running version holds the secrets the bot's PATCH left (names and stamps; only the
    names for a phase recorded by an earlier version of the bot)."""
    kept = _kept(data)
    if kept is None:
        text = str(data["expectation"])
        old = "steps" not in json.loads(text)
        names = (PatchExpectation if old else BatchExpectation).from_json(text).expected_names
        plan.verify_deployed_names(names, running)
        return
    live = running.deployed_version
    secrets = tuple(sorted(live.secrets if live else (), key=lambda s: s.name))
    if secrets != kept.secrets:
        raise ConcurrentEdit(
            "the action was deployed, but its running version's secrets are not the ones the "
            "bot saved (someone changed the draft meanwhile): look at the action's secrets"
        )


def _refusals(data: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    found = data.get("refused") or {}
    return {str(k): (str(v[0]), str(v[1])) for k, v in found.items()}
