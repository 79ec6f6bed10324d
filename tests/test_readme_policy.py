"""The README's example policy file is one the bot accepts, and decides as the README says."""

from __future__ import annotations

import re
from pathlib import Path

from bot.approvals.policy_file import load
from bot.approvals.rules import Target
from bot.targets.base import TargetKind
from tests.harness.people import REPO

ENV = {"AUTH0_PROD_CLIENT_SECRET": "prod-example", "AUTH0_DEV_CLIENT_SECRET": "dev-example"}


def _section() -> str:
    """The README's "## Policy" section."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Policy\n", 1)[1].split("\n## ", 1)[0]


def _example() -> str:
    """The one ```toml block of the README's "## Policy" section."""
    blocks = re.findall(r"^```toml\n(.*?)^```$", _section(), flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "the Policy section has exactly one toml block"
    return str(blocks[0])


def test_the_readme_example_policy_loads_and_decides_as_described(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(_example(), encoding="utf-8")
    policy = load(path, ENV)

    assert [t.name for t in policy.tenants] == ["prod", "dev"]
    prod = policy.tenant("prod")
    assert prod is not None
    assert prod.client_secret.get_secret_value() == ENV["AUTH0_PROD_CLIENT_SECRET"]

    def rule(tenant: str, kind: TargetKind, name: str) -> str | None:
        found = policy.rule_for(Target(tenant, kind, name))
        return found.name if found else None

    assert rule("dev", TargetKind.ACTION, "enrich-profile") == "dev self-service"
    assert rule("prod", TargetKind.HOOK, "payments-refunds") == "payments"
    assert rule("prod", TargetKind.ACTION, "enrich-profile") == "prod"
    decides = {r.name: r for r in policy.rules}
    assert decides["dev self-service"].required == 0
    assert decides["payments"].quorum and decides["payments"].required == 2
    assert not decides["prod"].quorum and decides["prod"].required == 2


def test_the_readme_example_names_secrets_by_variable_only() -> None:
    example = _example()
    assert "client_secret =" not in example
    assert re.findall(r'client_secret_env = "(\w+)"', example) == list(ENV)


def test_the_policy_section_links_the_full_reference() -> None:
    assert "(docs/policy.md)" in _section()
    assert (REPO / "docs" / "policy.md").is_file()
