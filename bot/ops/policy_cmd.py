"""``hook-secret-bot policy``: per tenant, each target with the rule that decides it, who may
request it and the approvals it needs: what a security reviewer reads before signing off."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from bot.approvals.policy_file import Policy
from bot.approvals.rules import Rule, Target
from bot.auth0.errors import Auth0Error
from bot.auth0.transport import Auth0Transport
from bot.logs import SECRETS
from bot.ops.check_auth0 import Where, reached
from bot.ops.check_lines import CheckFailed
from bot.ops.tenant_targets import Listed, client_for, list_targets
from bot.targets.tenants import Tenant

ClientFor = Callable[[Tenant], Auth0Transport]
WhereOf = Callable[[Tenant], Where]


@dataclass(frozen=True)
class Row:
    """One target and the rule that decides it (None: no rule covers it)."""

    tenant: str
    target: Listed
    rule: Rule | None

    def as_json(self) -> dict[str, Any]:
        """The contract's keys (CONTRACT §6), nothing else."""
        return {
            "tenant": self.tenant,
            "kind": str(self.target.kind),
            "id": self.target.id,
            "name": self.target.name,
            "rule": self.rule.name if self.rule else None,
            "requesters": list(self.rule.requesters) if self.rule else [],
            "approvals": approvals_json(self.rule) if self.rule else None,
        }

    def text(self) -> str:
        """One line for a person: the target, then who may request it and what it needs."""
        where = f"{self.tenant} · {self.target.kind} {self.target.name} ({self.target.id})"
        if self.rule is None:
            return f"{where}: not requestable: no rule covers it"
        requesters = ", ".join(self.rule.requesters)
        return f'{where}: rule "{self.rule.name}"; requested by {requesters}; {_needs(self.rule)}'


def approvals_json(rule: Rule) -> int | list[dict[str, Any]]:
    """``approvals = N`` as N; a quorum as its terms, ``{"from": [...], "count": K}`` each."""
    if not rule.quorum:
        return rule.required
    return [{"from": list(term.principals), "count": term.count} for term in rule.terms]


def _needs(rule: Rule) -> str:
    if not rule.terms:
        return "no approval: the requester's own submission applies the change"
    if rule.quorum:
        terms = " and ".join(f"{t.count} of {', '.join(t.principals)}" for t in rule.terms)
        return f"approvals: {terms} (distinct people, never the requester) in {rule.channel}"
    approvers = ", ".join(rule.approvers)
    return f"approvals: {rule.required} of {approvers} (never the requester) in {rule.channel}"


def rows(policy: Policy, tenant: Tenant, targets: list[Listed]) -> list[Row]:
    """Each of the tenant's targets with the first rule in file order that matches it."""
    return [
        Row(tenant.name, t, policy.rule_for(Target(tenant.name, t.kind, t.name))) for t in targets
    ]


def show_policy(
    policy: Policy,
    as_json: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
    where: WhereOf = Where.of_tenant,
    client: ClientFor = client_for,
) -> int:
    """Print every tenant's targets in file order; 1 when a tenant could not be read (the
    others are still printed, the problem goes to ``err``). Never prints a secret."""
    out = out or sys.stdout
    err = err or sys.stderr
    status = 0
    for tenant in policy.tenants:
        try:
            targets = _read(tenant, where(tenant), client)
        except (Auth0Error, CheckFailed) as error:
            err.write(SECRETS.scrub(f"{tenant.name}: cannot read the tenant: {error}") + "\n")
            status = 1
            continue
        if not targets and not as_json:
            out.write(f"{tenant.name}: the tenant offers no actions and no hooks\n")
        for row in rows(policy, tenant, targets):
            line = json.dumps(row.as_json()) if as_json else row.text()
            out.write(SECRETS.scrub(line) + "\n")
    return status


def _read(tenant: Tenant, where: Where, client: ClientFor) -> list[Listed]:
    """The tenant's targets; nothing answering is said with where it was looked for."""
    auth0 = client(tenant)
    try:
        return reached(where, functools.partial(list_targets, auth0))
    finally:
        auth0.close()
