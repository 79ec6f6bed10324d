"""Two Auth0 tenants behind one bot, from a policy file: the stand-ins, the file, the bot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.db.encryption import generate_key
from bot.settings import PolicySettings, load_serving_settings
from bot.slack import ids
from bot.slack.blocks.pickers import hook_option
from standins.auth0 import FULL_SCOPES, Auth0Sandbox
from standins.slack import SlackStandIn
from tests.harness.inprocess import Bot, Clock, serve
from tests.harness.people import (
    APPROVALS,
    APPROVER,
    APPROVER2,
    BOT_TOKEN,
    GROUPIE,
    ORIGIN,
    OUTSIDER,
    REQUESTER,
    SIGNING_SECRET,
)

# The payments leads and the security group of the quorum rule; a lead who is in security too.
LEAD1, LEAD2, BOTH = "U0LEAD1", "U0LEAD2", "U0BOTH"
SECURITY = "S0SECURITY"
PAYMENTS = "C0PAYMENTS"
SECRETS = {"prod": "prod-client-secret-0123", "dev": "dev-client-secret-0123"}
POLICY = """
[tenants.prod]
domain = "prod.auth0.local"
client_id = "prod-client"
client_secret_env = "TEST_PROD_CLIENT_SECRET"
base_url = "{prod_url}"

[tenants.dev]
domain = "dev.auth0.local"
client_id = "dev-client"
client_secret_env = "TEST_DEV_CLIENT_SECRET"
base_url = "{dev_url}"

[[rules]]
name = "dev self-service"
tenant = "dev"
requesters = ["{requester}"]
approvals = 0

[[rules]]
name = "payments"
tenant = "prod"
targets = ["payments-*"]
requesters = ["{requester}"]
channel = "{payments}"
approvals = [
  {{ from = ["{security}"], count = 1 }},
  {{ from = ["{lead1}", "{lead2}", "{both}"], count = 1 }},
]

[[rules]]
name = "prod"
tenant = "prod"
targets = ["action:*"]
requesters = ["{requester}"]
approvers = ["{approver}", "{approver2}", "{security}"]
channel = "{approvals}"
approvals = {prod_approvals}
"""


@dataclass
class Tenants:
    """The running bot with its two sandboxes and the targets each holds."""

    bot: Bot
    prod: Auth0Sandbox
    dev: Auth0Sandbox
    targets: dict[str, str]  # "prod/enrich" → the Auth0 id

    @property
    def slack(self) -> SlackStandIn:
        return self.bot.slack

    def option(self, key: str) -> dict[str, Any]:
        """The picker's option for the target ``tenant/name`` (as Slack would send it)."""
        found = self.bot.services.fleet.find(key).target
        assert found is not None, key
        return {"selected_option": hook_option(found).to_dict()}

    def submit(self, key: str, name: str, value: str = "v", *, user: str = REQUESTER) -> Any:
        """Open the form and submit a change to target ``tenant/name``."""
        view = self.bot.open_form(user=user)
        return self.bot.submit(view, name=name, value=value, hook=self.option(key), user=user)

    def approval_message(self, channel: str, name: str) -> dict[str, Any]:
        """The approval message (with buttons) of the request for secret ``name``."""
        return self.slack.wait_for_message(
            channel,
            lambda m: name in m["text"] and any(b.get("type") == "actions" for b in m["blocks"]),
        )

    def current(self, channel: str, ts: str) -> dict[str, Any]:
        """The message at ``ts`` as it stands now (after updates)."""
        return next(m for m in self.slack.messages(channel) if m["ts"] == ts)

    def open_modal(self, message: dict[str, Any], user: str, channel: str) -> dict[str, Any]:
        """Click Approve as ``user`` and return the approval modal that opened."""
        mark = self.slack.mark()
        ack = self.bot.driver.block_action(
            user, ids.ACTION_APPROVE, message=message, channel_id=channel
        )
        assert ack.status == 200
        self.slack.wait_for("views.open", after=mark)
        return self.slack.wait_for_view(user, callback_id=ids.CALLBACK_APPROVE)

    def approve(self, message: dict[str, Any], user: str, channel: str) -> Any:
        """Click Approve and submit the modal as ``user``; the ack."""
        view = self.open_modal(message, user, channel)
        ack = self.bot.driver.view_submission(user, view, {ids.BLOCK_COMMENT: None})
        self.bot.drain()
        return ack


def policy_text(prod: Auth0Sandbox, dev: Auth0Sandbox, prod_approvals: int = 2) -> str:
    """The policy file for the two sandboxes."""
    return POLICY.format(
        prod_url=prod.url,
        dev_url=dev.url,
        requester=REQUESTER,
        approver=APPROVER,
        approver2=APPROVER2,
        security=SECURITY,
        lead1=LEAD1,
        lead2=LEAD2,
        both=BOTH,
        payments=PAYMENTS,
        approvals=APPROVALS,
        prod_approvals=prod_approvals,
    )


def policy_settings(
    path: Path, slack: SlackStandIn, db_url: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> PolicySettings:
    """Settings as an operator writes them: the policy file, client secrets in variables."""
    monkeypatch.setenv("TEST_PROD_CLIENT_SECRET", SECRETS["prod"])
    monkeypatch.setenv("TEST_DEV_CLIENT_SECRET", SECRETS["dev"])
    settings = load_serving_settings(
        _env_file=None,
        hook_secret_policy_file=str(path),
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        database_url=db_url,
        hook_secret_encryption_key=key,
    )
    assert isinstance(settings, PolicySettings)
    return settings


@contextmanager
def two_tenants(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prod_approvals: int = 2
) -> Iterator[tuple[SlackStandIn, Auth0Sandbox, Auth0Sandbox, dict[str, str], Path, str]]:
    """Slack with the people and channels, two sandboxes with their targets, the policy file."""
    with ExitStack() as stack:
        slack = stack.enter_context(SlackStandIn(bot_token=BOT_TOKEN))
        prod = stack.enter_context(
            Auth0Sandbox("prod.auth0.local", "prod-client", SECRETS["prod"], FULL_SCOPES)
        )
        dev = stack.enter_context(
            Auth0Sandbox("dev.auth0.local", "dev-client", SECRETS["dev"], FULL_SCOPES)
        )
        for user, name in (
            (REQUESTER, "rita"),
            (APPROVER, "alex"),
            (APPROVER2, "bea"),
            (OUTSIDER, "olga"),
            (GROUPIE, "gus"),
            (LEAD1, "lee"),
            (LEAD2, "lou"),
            (BOTH, "bo"),
        ):
            slack.add_user(user, name)
        for channel, name in ((ORIGIN, "general"), (APPROVALS, "prod"), (PAYMENTS, "payments")):
            slack.add_channel(channel, name)
        slack.add_usergroup(SECURITY, "security", [APPROVER, BOTH])
        targets = {
            "prod/enrich": prod.actions.add("enrich", {"KEEP": "prod-keep"}),
            "prod/payments-gate": prod.actions.add("payments-gate", {"KEEP": "pay-keep"}),
            "prod/legacy": prod.add_hook("legacy", secrets={"OLD": "prod-old"}),
            "dev/enrich": dev.actions.add("enrich", {"KEEP": "dev-keep"}),
        }
        path = tmp_path / "policy.toml"
        path.write_text(policy_text(prod, dev, prod_approvals), encoding="utf-8")
        yield slack, prod, dev, targets, path, generate_key()


@contextmanager
def serve_tenants(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prod_approvals: int = 2,
    auth0_options: dict[str, Any] | None = None,
) -> Iterator[Tenants]:
    """The bot served from the policy file, between the stand-ins (``auth0_options``: the
    Auth0 clients', as ``serve`` takes them)."""
    with two_tenants(db_url, tmp_path, monkeypatch, prod_approvals) as world:
        slack, prod, dev, targets, path, key = world
        settings = policy_settings(path, slack, db_url, key, monkeypatch)
        prod_target = targets["prod/enrich"]
        with serve(
            settings, slack, prod, prod_target, clock=Clock(), auth0_options=auth0_options
        ) as bot:
            yield Tenants(bot, prod, dev, targets)


@contextmanager
def two_replicas(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Tenants, Bot]]:
    """Two app instances served from the same file on one database (replicas): the first as
    ``Tenants``, and the second."""
    with two_tenants(db_url, tmp_path, monkeypatch) as world:
        slack, prod, dev, targets, path, key = world
        settings = policy_settings(path, slack, db_url, key, monkeypatch)
        with (
            serve(settings, slack, prod, targets["prod/enrich"]) as one,
            serve(settings, slack, prod, targets["prod/enrich"]) as two,
        ):
            yield Tenants(one, prod, dev, targets), two
