"""Second review of issue 24 (several tenants, a rule per target): a tenant removed from the
file while its requests are open, and every tenant's client secret taught to the log redactor
when a serving process starts with a policy file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.approvals.results import Outcome
from bot.approvals.seals import REQUESTER_NOT_ALLOWED
from bot.approvals.states import State
from bot.logs import SECRETS
from bot.serve.runtime import build_runtime, preflight
from standins.auth0 import FULL_SCOPES, Auth0Sandbox
from tests.harness.inprocess import ORIGIN, REQUESTER, request_id_of, running_bot, serve, workspace
from tests.harness.people import APPROVALS, APPROVER, APPROVER2
from tests.harness.tenants import SECRETS as CLIENT_SECRETS
from tests.harness.tenants import Tenants, policy_settings, policy_text, serve_tenants, two_tenants
from tests.waiting import wait_until

# One rule over every tenant ("*"): it matches a tenant's targets by the rule alone, whether
# or not the file still has the tenant.
EVERY_TENANT = """
[tenants.prod]
domain = "prod.auth0.local"
client_id = "prod-client"
client_secret_env = "TEST_PROD_CLIENT_SECRET"
base_url = "{prod_url}"
{dev}
[[rules]]
name = "everyone"
tenant = "*"
requesters = ["{requester}"]
approvers = ["{approver}", "{approver2}"]
channel = "{approvals}"
approvals = 1
"""
DEV = """
[tenants.dev]
domain = "dev.auth0.local"
client_id = "dev-client"
client_secret_env = "TEST_DEV_CLIENT_SECRET"
base_url = "{dev_url}"
"""


def _every_tenant(prod: Auth0Sandbox, dev: Auth0Sandbox | None) -> str:
    return EVERY_TENANT.format(
        prod_url=prod.url,
        dev=DEV.format(dev_url=dev.url) if dev is not None else "",
        requester=REQUESTER,
        approver=APPROVER,
        approver2=APPROVER2,
        approvals=APPROVALS,
    )


def test_a_tenant_removed_from_the_file_ends_its_open_requests(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dev's requests are decided by a rule over every tenant (``tenant = "*"``). The bot
    restarts with dev gone from the file and that rule unchanged: dev's pending request expires
    (``policy_changed``, value erased), and its approved one fails when applied (nothing sent,
    value erased) instead of raising for a tenant the bot no longer serves, sweep after sweep,
    its value kept."""
    with two_tenants(db_url, tmp_path, monkeypatch) as world:
        slack, prod, dev, targets, path, key = world
        path.write_text(_every_tenant(prod, dev), encoding="utf-8")
        settings = policy_settings(path, slack, db_url, key, monkeypatch)
        with serve(settings, slack, prod, targets["prod/enrich"]) as first:
            t = Tenants(first, prod, dev, targets)
            assert not t.submit("dev/enrich", "PENDING_KEY", "pending-value").body
            pending = request_id_of(t.approval_message(APPROVALS, "PENDING_KEY"))
            assert not t.submit("dev/enrich", "APPROVED_KEY", "approved-value").body
            approved = request_id_of(t.approval_message(APPROVALS, "APPROVED_KEY"))
            first.drain()
            # Approved, not applied yet (the apply is what the restart finds).
            decided = first.services.workflow.decide(approved, APPROVER, True, None)
            assert decided.outcome is Outcome.APPROVED
        path.write_text(_every_tenant(prod, None), encoding="utf-8")
        monkeypatch.delenv("TEST_DEV_CLIENT_SECRET")
        without_dev = policy_settings(path, slack, db_url, key, monkeypatch)
        with serve(without_dev, slack, prod, targets["prod/enrich"]) as second:
            second.drain()
            row = second.store.get(pending)
            assert row is not None and row.state == State.EXPIRED, row and row.state
            assert row.value_ciphertext is None
            expired = [r for r in second.audit() if r["event"] == "request.expired"]
            assert [(r["outcome"], r["tenant"]) for r in expired] == [("policy_changed", "dev")]

            result = second.services.workflow.apply(approved)
            assert result.outcome is Outcome.FAILED, result
            assert result.error is not None and result.error.reason == REQUESTER_NOT_ALLOWED
            row = second.store.get(approved)
            assert row is not None and row.state == State.FAILED and row.value_ciphertext is None
            slack.wait_for_ephemeral(REQUESTER, lambda m: "APPROVED_KEY" in m["text"])
        assert not [r for r in dev.requests if r.method == "PATCH"]
        assert "APPROVED_KEY" not in dev.actions.deployed_secrets(targets["dev/enrich"])


@pytest.mark.parametrize("start", ["preflight", "build_runtime"])
def test_every_tenant_client_secret_is_redacted_once_serving_starts(
    start: str, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run`` with a policy file: what the process does first (``preflight``, and
    ``build_runtime`` in the serving process gunicorn forks) teaches the log redactor every
    tenant's client secret, not only the first one's."""
    with two_tenants(db_url, tmp_path, monkeypatch) as world:
        slack, _prod, _dev, _targets, path, key = world
        settings = policy_settings(path, slack, db_url, key, monkeypatch)
        SECRETS.clear()
        line = f"prod={CLIENT_SECRETS['prod']} dev={CLIENT_SECRETS['dev']}"
        assert SECRETS.scrub(line) == line  # nothing known before the start
        if start == "preflight":
            preflight(settings)
        else:
            build_runtime(settings).close(5)
        scrubbed = SECRETS.scrub(line)
        for secret in CLIENT_SECRETS.values():
            assert secret not in scrubbed, scrubbed


def test_without_a_file_every_request_event_names_tenant_and_rule_default(db_url: str) -> None:
    """CONTRACT §6, "in both modes": without a file, every event about a request carries
    ``tenant`` and ``rule`` ``default``; ``approval.added`` has ``approvals`` 1 of
    ``required`` 1; ``request.approved`` names its ``approvers``."""
    with running_bot(db_url) as bot:
        message = bot.request_approval(name="NO_FILE")
        assert bot.decide(message).status == 200
        bot.drain()
        records = [r for r in bot.audit() if r.get("request_id") == request_id_of(message)]
        assert {r["event"] for r in records} >= {
            "request.submitted",
            "approval.added",
            "request.approved",
            "secret.added",
        }
        assert {(r["tenant"], r["rule"]) for r in records} == {("default", "default")}
        (added,) = [r for r in records if r["event"] == "approval.added"]
        assert (added["actor"], added["approvals"], added["required"]) == (APPROVER, 1, 1)
        (approved,) = [r for r in records if r["event"] == "request.approved"]
        assert approved["approvers"] == [APPROVER]


def test_a_self_confirmed_request_approved_carries_approvers_too(db_url: str) -> None:
    """``approvals = 0`` (here the variables' ``HOOK_SECRET_REQUIRED_APPROVALS=0``): the
    requester's own submission meets a quorum of none. Its ``request.approved`` carries
    ``approvers`` like every other one (empty: the requester never counts), so that a reader
    of the trail finds the key on every ``request.approved``."""
    with running_bot(db_url, hook_secret_required_approvals=0) as bot:
        ack = bot.submit(bot.open_form(), name="SELF_SERVED")
        assert ack.status == 200 and not ack.body, ack.body
        bot.drain()
        (approved,) = [r for r in bot.audit() if r["event"] == "request.approved"]
        assert approved["self_confirmed"] is True and approved["approvers"] == []
        assert (approved["tenant"], approved["rule"]) == ("default", "default")


def _has_buttons(message: dict[str, Any]) -> bool:
    return any(b.get("type") == "actions" for b in message.get("blocks", []))


def test_one_approval_needed_the_buttons_go_when_it_is_in_not_when_applied(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file's rule needing one approval: once it is in, the message loses its buttons and
    says so with who approved (CONTRACT §6: "until the quorum is met"), before and whatever
    the apply (slow, or waiting its turn) does; as a rule needing two does."""
    with serve_tenants(db_url, tmp_path, monkeypatch, prod_approvals=1) as t:
        assert not t.submit("prod/enrich", "ONE_KEY", "one-value").body
        message = t.approval_message(APPROVALS, "ONE_KEY")
        request_id = request_id_of(message)
        t.bot.drain()
        # The decision alone (the apply that would follow is not started).
        decided = t.bot.services.workflow.decide(request_id, APPROVER, True, None)
        assert decided.outcome is Outcome.APPROVED
        t.bot.drain()
        wait_until(lambda: not _has_buttons(t.current(APPROVALS, message["ts"])), 10)
        row = t.bot.store.get(request_id)
        assert row is not None and row.state == State.APPROVED
        shown = t.current(APPROVALS, message["ts"])
        assert f"*Approvals:* 1 of 1: <@{APPROVER}>" in json.dumps(shown)


def test_a_request_expired_by_a_rule_change_shows_no_count_of_the_new_rule(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prod needs two approvals; one is in; the bot restarts with prod needing one. The
    request expires (``policy_changed``); its message must not count its approval against
    the new rule ("Approvals: 1 of 1" reads as met, for a request that expired unapproved)."""
    with two_tenants(db_url, tmp_path, monkeypatch) as world:
        slack, prod, dev, targets, path, key = world
        settings = policy_settings(path, slack, db_url, key, monkeypatch)
        with serve(settings, slack, prod, targets["prod/enrich"]) as first:
            t = Tenants(first, prod, dev, targets)
            assert not t.submit("prod/enrich", "HALF_KEY", "half-value").body
            message = t.approval_message(APPROVALS, "HALF_KEY")
            assert not t.approve(message, APPROVER, APPROVALS).body
            assert "*Approvals:* 1 of 2" in json.dumps(t.current(APPROVALS, message["ts"]))
        path.write_text(policy_text(prod, dev, prod_approvals=1), encoding="utf-8")
        changed = policy_settings(path, slack, db_url, key, monkeypatch)
        with serve(changed, slack, prod, targets["prod/enrich"]) as second:
            second.drain()
            row = second.store.get(request_id_of(message))
            assert row is not None and row.state == State.EXPIRED
            t = Tenants(second, prod, dev, targets)
            wait_until(lambda: not _has_buttons(t.current(APPROVALS, message["ts"])), 10)
            said = json.dumps(t.current(APPROVALS, message["ts"]))
            assert "rule for this target changed" in said
            assert "1 of 1" not in said, said


def test_a_bare_name_one_tenant_has_is_that_tenant_s_target(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CONTRACT §6: ``/hook-secret add NAME KEY`` with a name only prod has pre-fills prod's
    target (``prod/action:ID``), without naming the tenant."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        mark = t.slack.mark()
        ack = t.bot.driver.slash_command(REQUESTER, "add payments-gate KEY", channel_id=ORIGIN)
        assert ack.status == 200
        t.slack.wait_for("views.update", after=mark)
        update = [c for c in t.slack.calls[mark:] if c.method == "views.update"][-1]
        said = json.dumps(update.args)
        assert f"prod/action:{t.targets['prod/payments-gate']}" in said
        assert "several tenants" not in said and "No hook named" not in said


def test_without_a_file_a_changed_variable_rule_expires_pending_requests_at_start(
    db_url: str,
) -> None:
    """The variables are the ``default`` rule: a restart with another approvers list expires
    a pending request (``policy_changed``); one with only another TTL keeps it pending."""
    with workspace(db_url) as ws:
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as first:
            kept = request_id_of(first.request_approval(name="KEPT"))
        longer = ws.settings.model_copy(update={"hook_secret_request_ttl": 7200})
        with serve(longer, ws.slack, ws.auth0, ws.hook_id) as second:
            row = second.store.get(kept)
            assert row is not None and row.state == State.PENDING
        approvers = [APPROVER, APPROVER2]  # S0APPS left the list
        fewer = ws.settings.model_copy(update={"hook_secret_approvers": approvers})
        with serve(fewer, ws.slack, ws.auth0, ws.hook_id) as third:
            row = third.store.get(kept)
            assert row is not None and row.state == State.EXPIRED and row.value_ciphertext is None
            expired = [r for r in third.audit() if r["event"] == "request.expired"]
            assert [(r["outcome"], r["tenant"], r["rule"]) for r in expired] == [
                ("policy_changed", "default", "default")
            ]


def test_without_a_file_a_name_with_a_slash_is_still_found(db_url: str) -> None:
    """Before policy files, ``/hook-secret add "roles/permissions" KEY`` found the action of
    that name. Without a file there is no ``tenant/`` to read into the slash: the whole text is
    the name, as before (with a file, text before the slash that names no tenant is too)."""
    with workspace(db_url) as ws:
        ws.auth0.set_scopes(*FULL_SCOPES)
        action = ws.auth0.actions.add("roles/permissions", {"KEEP": "x"})
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as bot:
            mark = bot.slack.mark()
            text = 'add "roles/permissions" KEY'
            assert bot.driver.slash_command(REQUESTER, text, channel_id=ORIGIN).status == 200
            bot.slack.wait_for("views.update", after=mark)
            update = [c for c in bot.slack.calls[mark:] if c.method == "views.update"][-1]
            said = json.dumps(update.args)
            assert f"action:{action}" in said and "No hook named" not in said
