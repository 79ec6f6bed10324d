"""Auth0 Hooks as a target: secrets live on the hook and change through its secrets endpoint."""

from __future__ import annotations

from bot.approvals.states import Kind
from bot.auth0.errors import HooksUnavailable, InsufficientScope
from bot.auth0.hooks import Hook, HooksApi
from bot.auth0.transport import Auth0Transport
from bot.limits import MAX_SECRETS_PER_HOOK
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
from bot.targets.catalog import HookCatalog
from bot.targets.errors import translated


def described(hook: Hook, tenant: str = DEFAULT_TENANT) -> Described:
    """The hook as pickers and forms show it."""
    ref = TargetRef(TargetKind.HOOK, hook.id, tenant)
    return Described(ref, hook.name, hook.trigger_id, hook.enabled)


class HookTarget:
    """Auth0 Hooks: one call per change, nothing to deploy."""

    kind = TargetKind.HOOK
    max_secrets = MAX_SECRETS_PER_HOOK

    def __init__(
        self, auth0: Auth0Transport, catalog: HookCatalog, tenant: str = DEFAULT_TENANT
    ) -> None:
        self.auth0 = HooksApi(auth0)
        self.catalog = catalog
        self.tenant = tenant

    @translated
    def offer(self, deadline: float | None = None) -> Offer:
        """The hooks, or why the tenant offers none (Hooks retired, or no ``read:hooks``)."""
        try:
            hooks = [described(h, self.tenant) for h in self.catalog.hooks(deadline)]
        except (HooksUnavailable, InsufficientScope) as error:
            return Offer(self.kind, [], error.message)
        return Offer(self.kind, hooks, None if hooks else "the tenant has no hooks")

    @translated
    def listing(self, deadline: float | None = None) -> list[Described]:
        """Every hook, from the short-lived catalog."""
        return [described(h, self.tenant) for h in self.catalog.hooks(deadline)]

    @translated
    def known(self, target_id: str) -> Described | None:
        """The hook with this id as the last list read named it (no Auth0 call)."""
        hook = self.catalog.known(target_id)
        return described(hook, self.tenant) if hook else None

    def find(self, key: str) -> Described | None:
        """The hook whose id or name (case-insensitive) is ``key``."""
        hook = self.catalog.find(key)
        return described(hook, self.tenant) if hook else None

    @translated
    def search(self, query: str, deadline: float) -> list[Described]:
        """Hooks whose name or id contains ``query``."""
        return [described(h, self.tenant) for h in self.catalog.search(query, deadline)]

    @translated
    def describe(self, target_id: str) -> Described:
        """The hook, from the list the picker just loaded when fresh (one Auth0 call fewer)."""
        return described(
            self.catalog.cached(target_id) or self.auth0.get_hook(target_id), self.tenant
        )

    @translated
    def secret_names(self, target_id: str) -> list[str]:
        """The hook's secret names; a deleted hook raises ``TargetGone``."""
        return self.auth0.get_secret_names(target_id)

    @translated
    def inventory(self, target_id: str) -> Inventory:
        """The hook's secret names (Auth0 keeps no stamps for hook secrets)."""
        return Inventory(self.secret_names(target_id))

    @translated
    def apply(self, change: Change, progress: Progress) -> Applied:
        """POST, PATCH or DELETE the hook's secrets (one call: no phases to record)."""
        if change.kind is Kind.REMOVE:
            self.auth0.delete_secrets(change.target_id, [change.name])
        elif change.value is None:
            raise ValueError(f"a {change.kind} change needs a value")
        elif change.kind is Kind.ADD:
            self.auth0.add_secrets(change.target_id, {change.name: change.value})
        else:
            self.auth0.update_secrets(change.target_id, {change.name: change.value})
        return Applied()

    @translated
    def landed(self, change: Change) -> bool:
        """Whether an earlier attempt reached Auth0 (a rotation can't be told, so: no)."""
        present = change.name in self.auth0.get_secret_names(change.target_id)
        return (change.kind is Kind.ADD and present) or (change.kind is Kind.REMOVE and not present)

    def forget(self) -> None:
        """Reload the hook list next time."""
        self.catalog.invalidate()
