"""Where tenants and rules come from: ``HOOK_SECRET_POLICY_FILE``, or the variables as ``default``.

With a policy file, the eight variables that would describe the one tenant and rule must be
unset (CONTRACT §6), and the file's problems are settings problems (``HOOK_SECRET_POLICY_FILE:
…`` lines). A tenant's ``client_secret_env`` is looked up in the environment, then in the
``.env`` file the settings read, the environment winning as it does for every setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from dotenv import dotenv_values

from bot.approvals.policy_file import Policy, PolicyError, load
from bot.approvals.quorum import Term
from bot.approvals.rules import Rule
from bot.targets.base import DEFAULT_TENANT
from bot.targets.tenants import Tenant

if TYPE_CHECKING:
    from bot.settings import PolicyFileSettings, TenantSettings

VARIABLE: Final = "HOOK_SECRET_POLICY_FILE"
DEFAULT_RULE: Final = "default"
# CONTRACT §2: what must be unset with a policy file, and where the file says it instead.
EXCLUDED: Final = {
    "AUTH0_DOMAIN": "tenants",
    "AUTH0_CLIENT_ID": "tenants",
    "AUTH0_CLIENT_SECRET": "tenants",
    "AUTH0_BASE_URL": "tenants",
    "HOOK_SECRET_REQUESTERS": "rules",
    "HOOK_SECRET_APPROVERS": "rules",
    "HOOK_SECRET_APPROVAL_CHANNEL": "rules",
    "HOOK_SECRET_REQUIRED_APPROVALS": "rules",
}


def environment(overrides: Mapping[str, Any]) -> dict[str, str]:
    """The variables as the settings see them: the ``.env`` file, overridden by the
    environment (``_env_file`` in ``overrides`` names another file, or None for none)."""
    env_files = overrides.get("_env_file", ".env")
    if env_files is None or isinstance(env_files, str | Path):
        env_files = [] if env_files is None else [env_files]
    values: dict[str, str] = {}
    for env_file in env_files:  # later files win, as in pydantic-settings
        if Path(env_file).is_file():
            read = dotenv_values(env_file, encoding="utf-8")
            values |= {name: value for name, value in read.items() if value is not None}
    return values | dict(os.environ)


def excluded_problems(overrides: Mapping[str, Any]) -> list[str]:
    """One line for each variable set beside the policy file (empty means unset, as always)."""
    given = {name.upper(): value for name, value in environment(overrides).items()}
    given |= {name.upper(): value for name, value in overrides.items() if value is not None}
    return [
        f"{name}: must be unset when {VARIABLE} is set (the file's {where} say it)"
        for name, where in EXCLUDED.items()
        if str(given.get(name, "")).strip()
    ]


def read_file(path: str, overrides: Mapping[str, Any]) -> tuple[Policy | None, list[str]]:
    """The file's policy, or its problems (one ``HOOK_SECRET_POLICY_FILE: …`` line each)."""
    try:
        return load(Path(path.strip()), environment(overrides)), []
    except PolicyError as error:
        return None, error.problems


def default_policy(settings: TenantSettings) -> Policy:
    """Without a file: the ``default`` tenant from ``AUTH0_*`` and the ``default`` rule from
    ``HOOK_SECRET_*``, covering every target (CONTRACT §6)."""
    approvers = tuple(settings.hook_secret_approvers)
    terms = (Term(approvers, 1),) if settings.hook_secret_required_approvals else ()
    tenant = Tenant(
        name=DEFAULT_TENANT,
        domain=settings.auth0_domain,
        client_id=settings.auth0_client_id,
        client_secret=settings.auth0_client_secret,
        base_url=settings.auth0_base_url,
    )
    rule = Rule(
        name=DEFAULT_RULE,
        tenant=DEFAULT_TENANT,
        targets=("*",),
        requesters=tuple(settings.hook_secret_requesters),
        approvers=approvers,
        channel=settings.hook_secret_approval_channel,
        terms=terms,
    )
    return Policy(tenants=(tenant,), rules=(rule,))


def policy_of(settings: TenantSettings | PolicyFileSettings) -> Policy:
    """The tenants and rules the settings describe, with or without a policy file."""
    from bot.settings import PolicyFileSettings

    if isinstance(settings, PolicyFileSettings):
        return settings.policy
    return default_policy(settings)
