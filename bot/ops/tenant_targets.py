"""What the operator commands read from each tenant: its Auth0 client and the targets it offers."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from bot.auth0.actions import list_actions
from bot.auth0.errors import Auth0Error, HooksUnavailable, InsufficientScope
from bot.auth0.hooks import HooksApi
from bot.auth0.rate_limit import PacedTransport
from bot.auth0.transport import Auth0Transport
from bot.logs import SECRETS
from bot.targets.base import TargetKind
from bot.targets.tenants import Tenant


@dataclass(frozen=True)
class Listed:
    """One target a tenant offers: its kind, Auth0 id and name."""

    kind: TargetKind
    id: str
    name: str


class NothingReadable(Auth0Error):
    """The tenant's application may read neither actions nor hooks."""

    reason = "nothing_readable"
    default_message = (
        "the Auth0 application may read neither actions nor hooks: grant read:actions "
        "(or read:hooks) in Auth0 Dashboard → Applications → APIs → Auth0 Management API"
    )


def client_for(tenant: Tenant) -> Auth0Transport:
    """The tenant's own Management API client, paced on its own (its secret is redacted)."""
    SECRETS.pin(tenant.client_secret.get_secret_value())
    return Auth0Transport(
        domain=tenant.domain,
        client_id=tenant.client_id,
        client_secret=tenant.client_secret,
        base_url=tenant.base_url,
        transport=PacedTransport(),
    )


def list_targets(auth0: Auth0Transport) -> list[Listed]:
    """Actions, then hooks, each by name; a kind the tenant lacks or the application is not
    granted is left out (``NothingReadable`` when that is both)."""
    actions: list[Listed] | None = None
    hooks: list[Listed] | None = None
    with contextlib.suppress(InsufficientScope):
        actions = [Listed(TargetKind.ACTION, a.id, a.name) for a in list_actions(auth0)]
    with contextlib.suppress(HooksUnavailable, InsufficientScope):
        hooks = [Listed(TargetKind.HOOK, h.id, h.name) for h in HooksApi(auth0).list_hooks()]
    if actions is None and hooks is None:
        raise NothingReadable
    return sorted(actions or [], key=_by_name) + sorted(hooks or [], key=_by_name)


def _by_name(target: Listed) -> tuple[str, str]:
    return (target.name, target.id)
