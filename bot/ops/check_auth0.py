"""``check``'s Auth0 lines: the token and its scopes, hooks, actions, and what the form offers.

A tenant needs only one kind of target: a kind the tenant lacks (Hooks, retired on
2026-11-18) or the application is not granted is an ``ok`` line saying what the form offers
instead. A kind granted in part is a failure (a half grant breaks at apply time), and so is
a tenant offering neither. Without a token nothing else is asked: those lines are skipped.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final, TypeVar
from urllib.parse import urlsplit

from bot.auth0.actions import list_actions
from bot.auth0.errors import Auth0Error, Auth0Unavailable, HooksUnavailable, InsufficientScope
from bot.auth0.hooks import HooksApi
from bot.auth0.transport import Auth0Transport
from bot.ops.check_lines import FAIL, OK, SKIP, Check, CheckFailed
from bot.settings import TenantSettings
from bot.targets.tenants import Tenant

# What the contract asks of the machine-to-machine application (CONTRACT §2), per kind.
ACTION_SCOPES: Final = ("read:actions", "update:actions", "create:actions")
HOOK_SCOPES: Final = ("read:hooks", "create:hooks", "update:hooks", "delete:hooks")
GRANT_PLACE: Final = "Auth0 Dashboard → Applications → APIs → Auth0 Management API"
HOOKS_RETIRED: Final = "2026-11-18"
# How long a reachability probe may take: check is run by a person waiting at a terminal.
PROBE_TIMEOUT: Final = 5.0
SCOPES_LINE: Final = "auth0 token"
HOOKS_LINE: Final = "auth0 GET /api/v2/hooks"
ACTIONS_LINE: Final = "auth0 GET /api/v2/actions/actions"
TARGETS_LINE: Final = "auth0 targets"
T = TypeVar("T")


class Unreachable(CheckFailed):
    """Nothing answers where the settings point at Auth0."""


@dataclass(frozen=True)
class Found:
    """What a probe found about one kind of target."""

    kind: str
    detail: str
    usable: bool = False  # the request form offers this kind
    failed: bool = False  # a FAIL line: something to fix
    unreachable: bool = False  # Auth0 stopped answering during the probe
    on_tenant: bool = True  # False: the tenant has none of this kind at all

    def check(self, name: str, offers: str) -> Check:
        """Its line; a kind that is simply not there says what the form offers instead."""
        if self.failed or self.unreachable:
            return Check(FAIL, name, self.detail)
        return Check(OK, name, self.detail if self.usable else f"{self.detail}; {offers}")


@dataclass(frozen=True)
class Where:
    """Where the settings point at a tenant's Auth0, and what to check when nothing answers."""

    url: str
    variable: str

    @classmethod
    def of_settings(cls, settings: TenantSettings) -> Where:
        """The one tenant of the AUTH0_* variables."""
        if settings.auth0_base_url:
            return cls(settings.auth0_base_url, "AUTH0_BASE_URL")
        return cls(f"https://{settings.auth0_domain}", "AUTH0_DOMAIN")

    @classmethod
    def of_tenant(cls, tenant: Tenant) -> Where:
        """A tenant of the policy file, named by its place in the file."""
        place = "base_url" if tenant.base_url else "domain"
        url = tenant.base_url or f"https://{tenant.domain}"
        return cls(url, f"tenants.{tenant.name}.{place} in HOOK_SECRET_POLICY_FILE")


def auth0_checks(where: Where, auth0: Auth0Transport) -> list[Check]:
    """The token, hooks, actions and targets lines, in that order."""
    try:
        scopes = reached(where, auth0.token_scopes)
    except (CheckFailed, Auth0Error) as error:
        problem = str(error)
        lost = isinstance(error, Unreachable | Auth0Unavailable)
        why = f"Auth0 could not be reached ({problem})" if lost else "no Auth0 token (see above)"
        skipped = [Check(SKIP, name, why) for name in (HOOKS_LINE, ACTIONS_LINE, TARGETS_LINE)]
        return [Check(FAIL, SCOPES_LINE, problem), *skipped]
    hooks = _probe(where, "hooks", lambda: _hooks(auth0, scopes))
    actions = _probe(where, "actions", lambda: _actions(auth0, scopes))
    offered = [found.kind for found in (actions, hooks) if found.usable]
    offers = f"the form offers {' and '.join(offered) or 'nothing'}"
    lacking = [found.kind for found in (actions, hooks) if not found.on_tenant]
    return [
        token_check(scopes, lacking),
        hooks.check(HOOKS_LINE, offers),
        actions.check(ACTIONS_LINE, offers),
        _targets(hooks, actions, offered),
    ]


def token_check(scopes: frozenset[str] | None, tenant_lacks: Collection[str] = ()) -> Check:
    """The token line: the scopes that matter, or which are missing from a kind granted in
    part (a kind the tenant lacks needs none)."""
    if scopes is None:  # Auth0 may leave `scope` out of the token answer
        return Check(
            OK,
            SCOPES_LINE,
            "token issued (Auth0 did not list its scopes; the next checks read hooks and actions)",
        )
    kinds = {"actions": ACTION_SCOPES, "hooks": HOOK_SCOPES}
    granted = [scope for needed in kinds.values() for scope in needed if scope in scopes]
    missing = [
        scope
        for kind, needed in kinds.items()
        if kind not in tenant_lacks and any(s in scopes for s in needed)
        for scope in needed
        if scope not in scopes
    ]
    if missing:
        them = "them" if len(missing) > 1 else "it"
        return Check(
            FAIL,
            SCOPES_LINE,
            f"the Auth0 application lacks {', '.join(missing)}: grant {them} in {GRANT_PLACE}",
        )
    if not granted:
        return Check(
            FAIL,
            SCOPES_LINE,
            f"the Auth0 application has no action or hook scope: grant "
            f"{', '.join(ACTION_SCOPES)} in {GRANT_PLACE}",
        )
    return Check(OK, SCOPES_LINE, "token issued with " + " ".join(granted))


def _hooks(auth0: Auth0Transport, scopes: frozenset[str] | None) -> Found:
    """Asked even without a hook scope: a tenant without Hooks says so, which is worth saying."""
    try:
        hooks = HooksApi(auth0).list_hooks()
    except HooksUnavailable:
        return Found("hooks", f"none on this tenant (retired {HOOKS_RETIRED})", on_tenant=False)
    except InsufficientScope:
        if scopes is None or not scopes & set(HOOK_SCOPES):
            return Found("hooks", "not granted to this application")
        raise
    return Found("hooks", f"{count(len(hooks), 'hook')} readable", usable=True)


def _actions(auth0: Auth0Transport, scopes: frozenset[str] | None) -> Found:
    to_offer = f"to offer actions, grant {', '.join(ACTION_SCOPES)} in {GRANT_PLACE}"
    if scopes is not None and not scopes & set(ACTION_SCOPES):
        return Found("actions", f"not granted to this application ({to_offer})")
    missing = [s for s in ACTION_SCOPES if scopes is not None and s not in scopes]
    grant = f"grant {'them' if len(missing) > 1 else 'it'} in {GRANT_PLACE}"
    try:
        found = list_actions(auth0)
    except InsufficientScope:
        if scopes is None:
            return Found("actions", f"not granted to this application ({to_offer})")
        raise CheckFailed(
            f"the Auth0 application lacks {', '.join(missing) or 'read:actions'}: {grant}"
        ) from None
    if missing:
        raise CheckFailed(
            f"{count(len(found), 'action')} readable, but the Auth0 application lacks "
            f"{', '.join(missing)} (changing needs update:actions, deploying create:actions): "
            f"{grant}"
        )
    detail = f"{count(len(found), 'action')} readable, and the token may change and deploy them"
    return Found("actions", detail, usable=True)


def _targets(hooks: Found, actions: Found, offered: list[str]) -> Check:
    """Which kinds of target the request form will offer, from the two probes."""
    if hooks.unreachable or actions.unreachable:
        return Check(SKIP, TARGETS_LINE, "Auth0 could not be reached: no conclusion about targets")
    if offered:
        return Check(OK, TARGETS_LINE, "the request form offers " + " and ".join(offered))
    return Check(
        FAIL,
        TARGETS_LINE,
        "the request form would offer nothing: the lines above say "
        f"what to fix (on a tenant without Hooks, grant {', '.join(ACTION_SCOPES)})",
    )


def _probe(where: Where, kind: str, probe: Callable[[], Found]) -> Found:
    """Run one kind's probe; every failure becomes that kind's FAIL line."""
    try:
        return reached(where, probe)
    except (Unreachable, Auth0Unavailable) as error:
        return Found(kind, str(error), unreachable=True)
    except (CheckFailed, Auth0Error) as error:
        return Found(kind, str(error), failed=True)
    except Exception as error:  # one line per check: a crash is that check failing
        return Found(kind, f"{type(error).__name__}: {error}", failed=True)


def reached(where: Where, probe: Callable[[], T]) -> T:
    """``probe()``, with an Auth0 that can't be reached named by the variable pointing at it."""
    try:
        return probe()
    except Auth0Unavailable as error:
        why = _unreachable(where.url)
        if why is None:  # it answers: a timeout or a 5xx, which the message says
            raise
        raise Unreachable(f"cannot reach {where.url}: {why}: check {where.variable}") from error


def _unreachable(url: str) -> str | None:
    """Why nothing answers at ``url`` (the name, the port), or None when something does."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return f"the name {host} does not resolve"
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
    except ConnectionRefusedError:
        return f"{host} refuses connections on port {port}"
    except OSError as error:
        return f"{host}:{port} does not answer ({type(error).__name__})"
    return None


def count(number: int, noun: str) -> str:
    """``1 hook``, ``2 hooks``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
