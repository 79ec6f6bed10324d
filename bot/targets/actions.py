"""Auth0 Actions as a target: a phased, crash-safe change to one secret, one action at a time.

Phases, each recorded in the request's row with its audit record before the next step:
``planned`` (the expectation, just before the PATCH) → ``patched`` → ``deploy_requested``
(the version id) → ``deployed`` (its number). A resumed apply reads the phase and goes on: it
tells from the action's ``updated_at`` whether the PATCH landed, never patches twice, and
deploys once.
"""

from __future__ import annotations

from typing import Final

from bot.approvals.states import Kind
from bot.auth0 import action_plan as plan
from bot.auth0 import actions as api
from bot.auth0.action_plan import Action, ActionVersion, PatchExpectation
from bot.auth0.actions import Waits
from bot.auth0.errors import Auth0Unavailable, InsufficientScope, OutcomeUnknown
from bot.auth0.transport import Auth0Transport
from bot.limits import MAX_SECRETS_PER_ACTION
from bot.targets.base import (
    Applied,
    Change,
    Described,
    Inventory,
    Offer,
    Progress,
    TargetKind,
    TargetRef,
)
from bot.targets.catalog import Catalog
from bot.targets.errors import TargetError, translated
from bot.targets.locks import TargetLocks

PLANNED: Final = "planned"
PATCHED: Final = "patched"
DEPLOY_REQUESTED: Final = "deploy_requested"
DEPLOYED: Final = "deployed"


def described(action: Action) -> Described:
    """The action as pickers and forms show it."""
    trigger = action.trigger_ids[0] if action.trigger_ids else "action"
    return Described(TargetRef(TargetKind.ACTION, action.id), action.name, trigger)


class ActionTarget:
    """Auth0 Actions: the whole secret list is PATCHed, then the draft is built and deployed."""

    kind = TargetKind.ACTION
    max_secrets = MAX_SECRETS_PER_ACTION

    def __init__(
        self,
        auth0: Auth0Transport,
        locks: TargetLocks,
        waits: Waits | None = None,
        ttl: float = 60.0,
    ) -> None:
        self.auth0 = auth0
        self.locks = locks
        self.waits = waits or Waits()
        self.missing: str | None = None
        self.catalog: Catalog[Action] = Catalog(self._load, ttl, name="actions")

    def _load(self) -> list[Action]:
        # Without the action scopes the tenant offers no actions to this bot: say why, and
        # cache the empty list like any other so that pickers don't ask again at once.
        try:
            found = api.list_actions(self.auth0)
        except InsufficientScope as error:
            self.missing = error.message
            return []
        self.missing = None
        return found

    @translated
    def offer(self, deadline: float | None = None) -> Offer:
        """The actions, or why there are none (missing ``read:actions``, Auth0 unable to
        answer, or none made yet): the hooks are offered all the same."""
        try:
            found = self.listing(deadline)
        except TargetError as error:
            return Offer(self.kind, [], error.message)
        missing = self.missing or (None if found else "the tenant has no actions")
        return Offer(self.kind, found, missing)

    @translated
    def listing(self, deadline: float | None = None) -> list[Described]:
        """Every action, from the short-lived catalog."""
        return [described(a) for a in self.catalog.items(deadline)]

    @translated
    def find(self, key: str) -> Described | None:
        """The action whose id or name (case-insensitive) is ``key``."""
        action = self.catalog.find(key.removeprefix("action:"))
        return described(action) if action else None

    @translated
    def search(self, query: str, deadline: float) -> list[Described]:
        """Actions whose name or id contains ``query``."""
        return [described(a) for a in self.catalog.search(query, deadline)]

    @translated
    def describe(self, target_id: str) -> Described:
        """The action, from the list just loaded when fresh."""
        return described(self.catalog.cached(target_id) or self.read(target_id))

    @translated
    def read(self, target_id: str) -> Action:
        """The action as Auth0 shows it now (names and stamps, never values)."""
        return api.get_action(self.auth0, target_id)

    @translated
    def secret_names(self, target_id: str) -> list[str]:
        """The action's secret names; a deleted action raises ``TargetGone``."""
        return [s.name for s in self.read(target_id).secrets]

    @translated
    def inventory(self, target_id: str) -> Inventory:
        """Names with Auth0's ``updated_at`` for each, and whether the draft is undeployed."""
        action = self.read(target_id)
        stamps = {s.name: s.updated_at for s in action.secrets}
        return Inventory(list(stamps), stamps, not action.all_changes_deployed)

    @translated
    def apply(self, change: Change, progress: Progress) -> Applied:
        """Change one secret and deploy it, resuming from the last recorded phase."""
        first = self.read(change.target_id)
        if progress.phase is None:  # refuse an unfinished draft before waiting for the lock
            plan.plan_secret_change(first, Kind(change.kind), change.name, change.value)
            self._can_deploy()
        with self.locks.hold(f"{TargetRef(self.kind, change.target_id).tenant}:{change.target_id}"):
            resumed = progress.phase == PATCHED
            if progress.phase in (None, PLANNED):
                self._patch(change, progress, first)
            return Applied(self._deploy(change.target_id, progress, resumed))

    def _can_deploy(self) -> None:
        """A PATCH the bot could not deploy would leave an undeployed draft that blocks every
        later change: without ``create:actions`` (when the token lists its scopes), stop here."""
        scopes = self.auth0.token_scopes()
        if scopes is not None and "create:actions" not in scopes:
            raise InsufficientScope("create:actions", api.DEPLOY_SCOPE)

    def _patch(self, change: Change, progress: Progress, first: Action) -> None:
        """Read again under the lock, PATCH the whole list once, check the answer."""
        current = self.read(change.target_id)
        if progress.phase == PLANNED:
            expectation = PatchExpectation.from_json(str(progress.data["expectation"]))
            if plan.patch_landed(expectation, current):  # an earlier process's PATCH arrived
                progress.record(PATCHED)
                return
        patch = plan.plan_secret_change(current, Kind(change.kind), change.name, change.value)
        live = current.deployed_version or first.deployed_version
        progress.record(
            PLANNED,
            expectation=patch.expectation.to_json(),
            deployed_number=live.number if live else None,
        )
        try:
            plan.verify_patch(patch.expectation, api.patch_secrets(self.auth0, patch))
        except OutcomeUnknown:
            if not api.read_back(self.auth0, patch.expectation):
                raise Auth0Unavailable("Auth0 did not take the change: nothing changed") from None
        progress.record(PATCHED)

    def _deploy(self, action_id: str, progress: Progress, resumed: bool) -> int | None:
        """Deploy once (a resumed apply first looks for its own earlier deploy), then wait."""
        if progress.phase == PATCHED:
            before = progress.data.get("deployed_number")
            earlier = (
                api.version_after(self.auth0, action_id, int(before))
                if resumed and isinstance(before, int)
                else None
            )
            version = earlier or self._build_and_deploy(action_id)
            progress.record(DEPLOY_REQUESTED, version_id=version.id, version_number=version.number)
        if progress.phase == DEPLOY_REQUESTED:
            number = progress.data.get("version_number")
            version = ActionVersion(
                str(progress.data["version_id"]), number if isinstance(number, int) else None, False
            )
            running = api.wait_until_deployed(self.auth0, action_id, version, self.waits)
            expectation = PatchExpectation.from_json(str(progress.data["expectation"]))
            plan.verify_deployed(expectation, running)
            deployed = running.deployed_version
            progress.record(DEPLOYED, action_version=deployed.number if deployed else None)
        number = progress.data.get("action_version")
        return number if isinstance(number, int) else None

    def _build_and_deploy(self, action_id: str) -> ActionVersion:
        api.wait_until_built(self.auth0, action_id, self.waits)
        return api.deploy(self.auth0, action_id, self.waits)

    @translated
    def landed(self, change: Change) -> bool:
        """Always False: a resumed apply reads the recorded phase and Auth0 back itself."""
        return False

    def forget(self) -> None:
        """Reload the action list next time."""
        self.catalog.invalidate()

    def close(self) -> None:
        """Stop the catalog's refresh thread."""
        self.catalog.close()
