"""``policy``'s rows: the approvals as the file wrote them, and the default rule's shape."""

from __future__ import annotations

from pydantic import SecretStr

from bot.approvals.quorum import Term
from bot.approvals.rules import Rule, Target
from bot.ops.policy_cmd import approvals_json, rows
from bot.ops.tenant_targets import Listed
from bot.settings import Mode, TenantSettings, load_settings
from bot.settings.policy_file import default_policy
from bot.targets.base import TargetKind
from bot.targets.tenants import Tenant


def _rule(approvers: tuple[str, ...], terms: tuple[Term, ...]) -> Rule:
    return Rule("r", "*", ("*",), ("U0REQ",), approvers, "C0X", terms)


def test_approvals_are_shown_as_the_file_wrote_them() -> None:
    """``approvals = N`` is N, ``0`` is 0, and a quorum (even of one term) is its terms."""
    assert approvals_json(_rule(("S0SEC",), (Term(("S0SEC",), 2),))) == 2
    assert approvals_json(_rule((), ())) == 0
    one_term = _rule((), (Term(("U0A", "U0B"), 2),))
    assert approvals_json(one_term) == [{"from": ["U0A", "U0B"], "count": 2}]


def _tenant_settings(**values: str) -> TenantSettings:
    settings = load_settings(
        Mode.POLICY,
        _env_file=None,
        auth0_domain="acme.eu.auth0.com",
        auth0_client_id="client",
        auth0_client_secret="client-secret",
        hook_secret_requesters="U0REQ,S0ENG",
        **values,
    )
    assert isinstance(settings, TenantSettings)
    return settings


def test_without_a_file_one_default_tenant_and_rule_cover_every_target() -> None:
    """The variables make tenant ``default`` and rule ``default``: one approver from the
    approvers by default, none with HOOK_SECRET_REQUIRED_APPROVALS=0; every target covered."""
    settings = _tenant_settings(
        hook_secret_approvers="S0SEC", hook_secret_approval_channel="C0APPROVE"
    )
    policy = default_policy(settings)
    (tenant,) = policy.tenants
    assert (tenant.name, tenant.domain, tenant.client_secret.get_secret_value()) == (
        "default",
        "acme.eu.auth0.com",
        "client-secret",
    )
    rule = policy.rule_for(Target("default", TargetKind.HOOK, "anything"))
    assert rule is not None and (rule.name, rule.required, rule.channel) == (
        "default",
        1,
        "C0APPROVE",
    )
    assert approvals_json(rule) == 1 and rule.requesters == ("U0REQ", "S0ENG")
    self_service = default_policy(_tenant_settings(hook_secret_required_approvals="0"))
    assert approvals_json(self_service.rules[0]) == 0


def test_a_target_no_rule_covers_has_no_rule_and_no_requesters() -> None:
    """Such a row says ``rule: null``, nobody may request it, and its approvals are null."""
    settings = _tenant_settings(hook_secret_required_approvals="0")
    policy = default_policy(settings).model_copy(update={"rules": ()})
    tenant = Tenant("default", "acme.eu.auth0.com", "c", SecretStr("s"))
    (row,) = rows(policy, tenant, [Listed(TargetKind.ACTION, "a1", "x")])
    assert row.as_json() == {
        "tenant": "default",
        "kind": "action",
        "id": "a1",
        "name": "x",
        "rule": None,
        "requesters": [],
        "approvals": None,
    }
    assert row.text().endswith("not requestable: no rule covers it")
