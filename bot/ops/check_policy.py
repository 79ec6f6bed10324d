"""``hook-secret-bot check`` with a policy file: every tenant's Auth0 lines, prefixed with its
name, and every rule's channel, requesters and whether the people it lists can meet its
approvals (groups resolved through Slack, people matched to quorum terms)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from slack_sdk import WebClient

from bot.approvals.policy_file import Policy
from bot.approvals.quorum import attainable, progress
from bot.approvals.rules import Rule
from bot.auth0.transport import Auth0Transport
from bot.logs import SECRETS
from bot.ops.check import (
    channel_probe,
    database_probe,
    people_probe,
    read_back,
    run_probe,
    slack_checks,
)
from bot.ops.check_auth0 import Where, auth0_checks
from bot.ops.check_lines import OK, Check, CheckFailed
from bot.ops.tenant_targets import client_for
from bot.serve.runtime import register_settings_secrets, slack_client
from bot.settings import PolicySettings
from bot.targets.tenants import Tenant

Members = Callable[[str], frozenset[str]]


def run_policy_checks(
    settings: PolicySettings,
    out: TextIO | None = None,
    slack: WebClient | None = None,
    client: Callable[[Tenant], Auth0Transport] = client_for,
) -> int:
    """Print one line per check; 0 only when every check passes. Never prints a secret."""
    register_settings_secrets(settings)  # the Slack tokens and every tenant's client secret
    out = out or sys.stdout
    slack = slack or slack_client(settings)
    policy = settings.policy
    results = [Check(OK, "settings", _summary(policy))]
    slack_checks(results, settings, slack, lambda team: _slack_dependents(policy, slack, team))
    for tenant in policy.tenants:
        results.extend(_tenant_checks(tenant, client))
    run_probe(results, "database", lambda: database_probe(settings.database_url))
    for check in results:
        out.write(SECRETS.scrub(check.line()) + "\n")
    return 0 if all(c.ok for c in results) else 1


def _summary(policy: Policy) -> str:
    tenants = ", ".join(t.name for t in policy.tenants)
    rules = len(policy.rules)
    return (
        f"all variables valid; HOOK_SECRET_POLICY_FILE: {len(policy.tenants)} tenant"
        f"{'' if len(policy.tenants) == 1 else 's'} ({tenants}), {rules} rule"
        f"{'' if rules == 1 else 's'}"
    )


def _tenant_checks(tenant: Tenant, client: Callable[[Tenant], Auth0Transport]) -> list[Check]:
    """The tenant's token, hooks, actions and targets lines, each prefixed with its name."""
    auth0 = client(tenant)
    try:
        checks = auth0_checks(Where.of_tenant(tenant), auth0)
    finally:
        auth0.close()
    return [Check(c.status, f"{tenant.name} {c.name}", c.detail) for c in checks]


def _slack_dependents(
    policy: Policy, slack: WebClient, team_id: str
) -> list[tuple[str, Callable[[], str]]]:
    """The read-back line, then each rule's channel, requesters and approvals."""
    probes: list[tuple[str, Callable[[], str]]] = [("slack read-back", lambda: read_back(slack))]
    members = _members(slack, team_id)
    for rule in policy.rules:
        label = f'rule "{rule.name}"'
        channel = rule.channel
        if channel and rule.terms:
            probes.append((f"{label} channel", _channel(slack, channel)))
        probes.append((f"{label} requesters", people_probe(slack, team_id, list(rule.requesters))))
        probes.append((f"{label} approvals", _approvals_probe(rule, members)))
    return probes


def _channel(slack: WebClient, channel: str) -> Callable[[], str]:
    return lambda: channel_probe(slack, channel)


def _members(slack: WebClient, team_id: str) -> Members:
    """A user group's members, asked of Slack once per check run."""
    known: dict[str, frozenset[str]] = {}

    def members(group: str) -> frozenset[str]:
        if group not in known:
            response = slack.usergroups_users_list(usergroup=group, team_id=team_id)
            known[group] = frozenset(response.get("users") or [])
        return known[group]

    return members


def _approvals_probe(rule: Rule, members: Members) -> Callable[[], str]:
    def probe() -> str:
        if not rule.terms:
            return "none needed: the requester's own submission applies the change"
        candidates: dict[str, set[int]] = {}
        for index, term in enumerate(rule.terms):
            for person in _people(term.principals, members):
                candidates.setdefault(person, set()).add(index)
        people = f"{len(candidates)} {'person' if len(candidates) == 1 else 'people'}"
        if attainable(rule.terms, candidates):
            return f"{rule.required} needed, which the {people} listed can give"
        most = progress(rule.terms, sorted(candidates), lambda p, i: i in candidates[p], "")
        raise CheckFailed(
            f"{rule.required} needed from distinct people, but the {people} listed can give at "
            f"most {most.counted}: add people to the rule's lists (or to their user groups)"
        )

    return probe


def _people(principals: tuple[str, ...], members: Members) -> set[str]:
    people = {p for p in principals if not p.startswith("S")}
    for group in (p for p in principals if p.startswith("S")):
        people |= members(group)
    return people
