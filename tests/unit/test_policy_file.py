"""The policy file: parsing, every problem with its place, first match, shadowed rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.approvals.policy_file import PolicyError, load
from bot.approvals.rules import Target
from bot.targets.base import TargetKind

ENV = {"AUTH0_PROD_CLIENT_SECRET": "prod-secret-value", "AUTH0_DEV_CLIENT_SECRET": "dev-secret"}

EXAMPLE = """
[tenants.prod]
domain = "acme.eu.auth0.com"
client_id = "Yf2ZnK3oX8cP1qR7sT4uV6wA9bD0eG5h"
client_secret_env = "AUTH0_PROD_CLIENT_SECRET"

[tenants.dev]
domain = "acme-dev.eu.auth0.com"
client_id = "Qm7Lp2Xc9Vb4Nz1Ks8Dj3Hf6Gt5Wr0Ya"
client_secret_env = "AUTH0_DEV_CLIENT_SECRET"

[[rules]]
name = "dev self-service"
tenant = "dev"
targets = ["*"]
requesters = ["S0ENGINEERS"]
approvals = 0

[[rules]]
name = "payments"
tenant = "prod"
targets = ["payments-*"]
requesters = ["S0PAYMENTS"]
channel = "C0PAYMENTS"
approvals = [ { from = ["S0SECURITY"], count = 1 }, { from = ["U0LEAD1", "U0LEAD2"], count = 1 } ]

[[rules]]
name = "prod"
tenant = "prod"
requesters = ["S0ENGINEERS"]
approvers = ["S0SECURITY"]
channel = "C0PRODAPPROVALS"
approvals = 2
ttl = 3600
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] = ENV) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load(write(tmp_path, text), env)
    return caught.value.problems


def test_the_contracts_example_loads_and_the_first_matching_rule_decides(tmp_path: Path) -> None:
    """CONTRACT §6's example: dev is self-service, payments-* a quorum, the rest of prod 2."""
    policy = load(write(tmp_path, EXAMPLE), ENV)
    assert [t.name for t in policy.tenants] == ["prod", "dev"]
    assert policy.tenant("prod") is not None
    assert policy.tenant("prod").client_secret.get_secret_value() == "prod-secret-value"  # type: ignore[union-attr]
    decide = policy.rule_for
    assert decide(Target("dev", TargetKind.ACTION, "anything")).name == "dev self-service"  # type: ignore[union-attr]
    payments = decide(Target("prod", TargetKind.ACTION, "payments-enrich"))
    assert payments is not None and payments.name == "payments" and payments.required == 2
    prod = decide(Target("prod", TargetKind.HOOK, "enrich-profile"))
    assert prod is not None and (prod.name, prod.required, prod.ttl) == ("prod", 2, 3600)
    assert decide(Target("staging", TargetKind.HOOK, "x")) is None


def test_kind_prefixed_globs_match_one_kind_only(tmp_path: Path) -> None:
    """``action:pay*`` covers actions named pay…, not hooks of that name."""
    text = EXAMPLE.replace('targets = ["payments-*"]', 'targets = ["action:payments-*"]')
    policy = load(write(tmp_path, text), ENV)
    assert policy.rule_for(Target("prod", TargetKind.ACTION, "payments-x")).name == "payments"  # type: ignore[union-attr]
    assert policy.rule_for(Target("prod", TargetKind.HOOK, "payments-x")).name == "prod"  # type: ignore[union-attr]


def test_default_rule_names_count_from_one(tmp_path: Path) -> None:
    """A rule without a name is "rule N", N its place in the file."""
    text = EXAMPLE.replace('name = "payments"\n', "")
    policy = load(write(tmp_path, text), ENV)
    assert [r.name for r in policy.rules] == ["dev self-service", "rule 2", "prod"]


def test_every_problem_is_reported_at_once_with_its_place(tmp_path: Path) -> None:
    """Unknown keys, an unknown tenant, a missing channel, too few approvers, an unset
    secret variable: one line each, each starting with the variable and the place."""
    text = (
        EXAMPLE.replace("ttl = 3600", 'ttl = 3600\ncolour = "red"')
        .replace('tenant = "dev"', 'tenant = "qa"')
        .replace('channel = "C0PAYMENTS"\n', "")
        .replace('approvers = ["S0SECURITY"]', 'approvers = ["U0ONLY"]')
    )
    found = problems(tmp_path, text, {"AUTH0_PROD_CLIENT_SECRET": "x"})
    assert all(line.startswith("HOOK_SECRET_POLICY_FILE: ") for line in found)
    places = [line.split(": ")[1] for line in found]
    assert "rules[3].colour" in places
    found = problems(
        tmp_path, text.replace('colour = "red"', ""), {"AUTH0_PROD_CLIENT_SECRET": "x"}
    )
    places = [line.split(": ")[1] for line in found]
    assert places == [
        "tenants.dev.client_secret_env",
        "rules[1].tenant",
        "rules[2].channel",
        "rules[3].approvers",
    ]
    assert "AUTH0_DEV_CLIENT_SECRET" in found[0]
    assert "prod-secret" not in "\n".join(found)


def test_schema_and_meaning_problems_come_in_one_round(tmp_path: Path) -> None:
    """An unknown key and a bad value do not hide what the well-formed parts mean: an unset
    secret variable, a rule naming an unknown tenant, a shadowed rule (numbered as in the file)."""
    text = (
        EXAMPLE.replace('client_id = "Qm7', 'colour = "red"\nclient_id = "Qm7')
        .replace('tenant = "dev"', 'tenant = "qa"')
        .replace("approvals = 2", "approvals = 11")
        + '\n[[rules]]\ntenant = "prod"\ntargets = ["payments-core"]\nrequesters = ["S0X"]\n'
        + "approvals = 0\n"
    )
    found = problems(tmp_path, text, {"AUTH0_PROD_CLIENT_SECRET": "x"})
    assert [line.split(": ")[1] for line in found] == [
        "tenants.dev.colour",
        "rules[3].approvals",
        "tenants.dev.client_secret_env",
        "rules[1].tenant",
        "rules[4]",
    ]
    assert '"payments" (rules[2])' in found[-1]


def test_a_syntax_error_names_its_line(tmp_path: Path) -> None:
    """A TOML syntax error is one line with where it is."""
    (line,) = problems(
        tmp_path, EXAMPLE.replace('tenant = "prod"\ntargets', "tenant = prod\ntargets")
    )
    assert line.startswith("HOOK_SECRET_POLICY_FILE: TOML syntax error") and "line 21" in line


def test_bad_values_name_their_place(tmp_path: Path) -> None:
    """Wrong shapes and ranges are refused where they stand."""
    text = (
        EXAMPLE.replace("approvals = 2", "approvals = 11")
        .replace('requesters = ["S0PAYMENTS"]', 'requesters = ["payments-team"]')
        .replace('domain = "acme-dev.eu.auth0.com"', 'domain = "https://acme-dev"')
    )
    places = [line.split(": ")[1] for line in problems(tmp_path, text)]
    assert places == ["tenants.dev.domain", "rules[2].requesters", "rules[3].approvals"]


def test_a_quorum_term_asking_more_people_than_it_lists_is_refused(tmp_path: Path) -> None:
    """``count = 3`` from two users can never be met."""
    text = EXAMPLE.replace(
        '{ from = ["U0LEAD1", "U0LEAD2"], count = 1 }',
        '{ from = ["U0LEAD1", "U0LEAD2"], count = 3 }',
    )
    (line,) = problems(tmp_path, text)
    assert line.startswith("HOOK_SECRET_POLICY_FILE: rules[2].approvals[2]: ")


def test_a_tenant_named_default_is_refused(tmp_path: Path) -> None:
    """``default`` names the variables' tenant, whose option values and messages carry no
    tenant: a file's tenant of that name would go unnamed, so it is refused where it stands."""
    text = EXAMPLE.replace("[tenants.dev]", "[tenants.default]").replace(
        'tenant = "dev"', 'tenant = "default"'
    )
    (line,) = problems(tmp_path, text)
    assert line.startswith("HOOK_SECRET_POLICY_FILE: tenants.default: ")
    assert "another name" in line


def test_an_empty_quorum_is_refused_not_taken_for_self_service(tmp_path: Path) -> None:
    """``approvals = []`` would need nobody: refused, pointing at ``approvals = 0``."""
    text = EXAMPLE.replace(
        'approvals = [ { from = ["S0SECURITY"], count = 1 }, '
        '{ from = ["U0LEAD1", "U0LEAD2"], count = 1 } ]',
        "approvals = []",
    )
    (line,) = problems(tmp_path, text)
    assert line.startswith("HOOK_SECRET_POLICY_FILE: rules[2].approvals: ")
    assert "approvals = 0" in line or "write 0" in line


def test_a_rule_an_earlier_rule_fully_shadows_is_refused(tmp_path: Path) -> None:
    """A rule placed after a rule that matches all it matches never decides: refused."""
    text = (
        EXAMPLE
        + '\n[[rules]]\nname = "late"\ntenant = "prod"\ntargets = ["payments-core"]\n'
        + 'requesters = ["S0X"]\napprovals = 0\n'
    )
    (line,) = problems(tmp_path, text)
    assert line.startswith("HOOK_SECRET_POLICY_FILE: rules[4]: ") and '"payments"' in line


def test_a_narrower_rule_after_a_wider_one_on_another_kind_is_kept(tmp_path: Path) -> None:
    """``hook:*`` does not shadow ``action:x``: the later rule still decides actions."""
    text = EXAMPLE.replace('targets = ["*"]', 'targets = ["hook:*"]') + (
        '\n[[rules]]\ntenant = "dev"\ntargets = ["action:x"]\nrequesters = ["S0X"]\napprovals = 0\n'
    )
    policy = load(write(tmp_path, text), ENV)
    assert policy.rule_for(Target("dev", TargetKind.ACTION, "x")).name == "rule 4"  # type: ignore[union-attr]


def test_rule_digest_changes_with_what_decides(tmp_path: Path) -> None:
    """A request keeps its rule's digest; any change to who decides changes it."""
    before = load(write(tmp_path, EXAMPLE), ENV).rules[2].digest()
    assert load(write(tmp_path, EXAMPLE), ENV).rules[2].digest() == before
    after = load(write(tmp_path, EXAMPLE.replace("approvals = 2", "approvals = 1")), ENV)
    assert after.rules[2].digest() != before
