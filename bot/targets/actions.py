"""Auth0 Actions as a target: listing, reading, and crash-safe changes one action at a time.

Changes to one action are serialised by a per-action lock (``serialised``) and may go in
batches: the phases of an apply are ``action_apply.py``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager

from bot.auth0 import actions as api
from bot.auth0.action_plan import Action
from bot.auth0.actions import Waits
from bot.auth0.errors import InsufficientScope
from bot.auth0.transport import Auth0Transport
from bot.limits import MAX_SECRETS_PER_ACTION
from bot.targets.action_apply import ActionApply, BatchOutcome
from bot.targets.base import (
    DEFAULT_TENANT,
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


def described(action: Action, tenant: str = DEFAULT_TENANT) -> Described:
    """The action as pickers and forms show it."""
    trigger = action.trigger_ids[0] if action.trigger_ids else "action"
    return Described(TargetRef(TargetKind.ACTION, action.id, tenant), action.name, trigger)


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
        tenant: str = DEFAULT_TENANT,
    ) -> None:
        self.tenant = tenant
        self.auth0 = auth0
        self.locks = locks
        self.waits = waits or Waits()
        self.missing: str | None = None
        self.catalog: Catalog[Action] = Catalog(self._load, ttl, name="actions")
        self.runner = ActionApply(auth0, self.waits)

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
        return [described(a, self.tenant) for a in self.catalog.items(deadline)]

    @translated
    def known(self, target_id: str) -> Described | None:
        """The action with this id as the last list read named it (no Auth0 call)."""
        action = self.catalog.known(target_id)
        return described(action, self.tenant) if action else None

    def find(self, key: str) -> Described | None:
        """The action whose id or name (case-insensitive) is ``key``."""
        action = self.catalog.find(key.removeprefix("action:"))
        return described(action, self.tenant) if action else None

    @translated
    def search(self, query: str, deadline: float) -> list[Described]:
        """Actions whose name or id contains ``query``."""
        return [described(a, self.tenant) for a in self.catalog.search(query, deadline)]

    @translated
    def describe(self, target_id: str) -> Described:
        """The action, from the list just loaded when fresh."""
        return described(self.catalog.cached(target_id) or self.read(target_id), self.tenant)

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

    def serialised(self, target_id: str) -> AbstractContextManager[None]:
        """Hold the action's lock (across replicas on PostgreSQL): one batch at a time."""
        return self.locks.hold(f"{self.tenant}:{target_id}")

    def ready_to_send(self) -> AbstractContextManager[None]:
        """Wait for room under the rate limit for a read and the PATCH planned from it, which
        then go back to back (changes approved during the wait can still join the batch)."""
        return self.auth0.back_to_back(2)

    @translated
    def apply(self, change: Change, progress: Progress) -> Applied:
        """Change one secret and deploy it, resuming from the last recorded phase; waits for
        the bot's own earlier changes to this action (the plan is made under the lock)."""
        with self.serialised(change.target_id):
            outcome = self.apply_batch({"": change}, progress)
        if "" in outcome.refused:
            raise outcome.refused[""]
        return outcome.applied or Applied()

    @translated
    def apply_batch(self, changes: Mapping[str, Change], progress: Progress) -> BatchOutcome:
        """Apply several changes to one action (the caller holds ``serialised``) as one PATCH,
        one build and one deploy; each change refused before the PATCH is refused alone."""
        (action_id,) = {c.target_id for c in changes.values()}
        return self.runner.run(action_id, changes, progress)

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
