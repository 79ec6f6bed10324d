"""Several tenants from a policy file, end to end over real HTTP (CONTRACT §6): two Auth0
sandboxes behind one bot; dev self-service, prod two approvals with progress in the message, a
payments quorum, a rejection, a target no rule covers, a rule change expiring an open request,
each write landing only in its own tenant."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot.approvals.states import State
from bot.slack import answers, ids
from bot.targets import ActionTarget, TargetKind
from standins.auth0_wire import Bucket, RateLimit
from tests.harness.inprocess import ORIGIN, REQUESTER, request_id_of, serve
from tests.harness.people import APPROVALS, APPROVER, APPROVER2, OUTSIDER
from tests.harness.tenants import (
    BOTH,
    LEAD1,
    LEAD2,
    PAYMENTS,
    Tenants,
    policy_settings,
    policy_text,
    serve_tenants,
    two_replicas,
    two_tenants,
)
from tests.waiting import wait_until


def _texts(message: dict[str, Any]) -> str:
    """Everything a message says, its blocks included."""
    return json.dumps(message, ensure_ascii=False)


def _events(t: Tenants, request_id: str) -> list[dict[str, Any]]:
    return [r for r in t.bot.audit() if r.get("request_id") == request_id]


def _has_buttons(message: dict[str, Any]) -> bool:
    return any(b.get("type") == "actions" for b in message.get("blocks", []))


def test_dev_self_service_applies_at_once_and_only_in_dev(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dev change under a self-service rule applies on submission: the dev action gets the
    secret, the prod action of the same name does not; the confirmation names the tenant; the
    audit carries tenant and rule."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        ack = t.submit("dev/enrich", "DEV_KEY", "dev-value-CANARY")
        assert ack.status == 200 and not ack.body, ack.body
        t.bot.drain()
        dev_id, prod_id = t.targets["dev/enrich"], t.targets["prod/enrich"]
        assert t.dev.actions.deployed_secrets(dev_id) == {
            "KEEP": "dev-keep",
            "DEV_KEY": "dev-value-CANARY",
        }
        assert t.prod.actions.deployed_secrets(prod_id) == {"KEEP": "prod-keep"}
        assert not [r for r in t.prod.requests if r.method == "PATCH"]
        confirmation = t.slack.wait_for_message(ORIGIN, lambda m: "DEV_KEY" in m["text"])
        assert "dev · action" in confirmation["text"]
        assert "CANARY" not in str(t.slack.calls)
        records = t.bot.audit()
        assert [r["event"] for r in records if r["event"] != "apply.phase"] == [
            "request.submitted",
            "request.approved",
            "secret.added",
        ]
        assert {(r["tenant"], r["rule"]) for r in records} == {("dev", "dev self-service")}
        assert not t.slack.messages(APPROVALS) and not t.slack.messages(PAYMENTS)


def test_prod_needs_two_approvers_and_the_message_shows_progress(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prod's rule needs two distinct approvers: the first approval is counted and shown
    (Approvals: 1 of 2, who), the buttons stay; the same person can't count twice; the second
    meets the quorum once: one PATCH in prod, none in dev, the buttons go."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        assert not t.submit("prod/enrich", "PROD_KEY", "prod-value").body
        message = t.approval_message(APPROVALS, "PROD_KEY")
        said = _texts(message)
        assert "prod · action" in said and "*Rule:* prod" in said
        assert "*Approvals:* 0 of 2" in said
        request_id = request_id_of(message)

        assert not t.approve(message, APPROVER, APPROVALS).body
        shown = t.current(APPROVALS, message["ts"])
        assert f"*Approvals:* 1 of 2: <@{APPROVER}>" in _texts(shown) and _has_buttons(shown)
        row = t.bot.store.get(request_id)
        assert row is not None and row.state == State.PENDING
        assert not [r for r in t.prod.requests if r.method == "PATCH"]

        # The same approver again: told so at the click, no modal, nothing counted.
        mark = t.slack.mark()
        t.bot.driver.block_action(
            APPROVER, ids.ACTION_APPROVE, message=message, channel_id=APPROVALS
        )
        t.bot.drain()
        assert not [c for c in t.slack.calls[mark:] if c.method == "views.open"]
        t.slack.wait_for_ephemeral(APPROVER, lambda m: "approved this request already" in m["text"])

        assert not t.approve(message, APPROVER2, APPROVALS).body
        row = t.bot.store.get(request_id)
        assert row is not None and row.state == State.APPLIED
        assert t.prod.actions.deployed_secrets(t.targets["prod/enrich"])["PROD_KEY"] == "prod-value"
        assert "PROD_KEY" not in t.dev.actions.deployed_secrets(t.targets["dev/enrich"])
        assert len([r for r in t.prod.requests if r.method == "PATCH"]) == 1
        assert not [r for r in t.dev.requests if r.method == "PATCH"]
        final = t.current(APPROVALS, message["ts"])
        assert not _has_buttons(final)
        records = _events(t, request_id)
        added = [
            (r["actor"], r["approvals"], r["required"])
            for r in records
            if r["event"] == "approval.added"
        ]
        assert added == [(APPROVER, 1, 2), (APPROVER2, 2, 2)]
        (approved,) = [r for r in records if r["event"] == "request.approved"]
        assert approved["approvers"] == [APPROVER, APPROVER2]
        assert {(r["tenant"], r["rule"]) for r in records} == {("prod", "prod")}
        confirmation = t.slack.wait_for_message(ORIGIN, lambda m: "PROD_KEY" in m["text"])
        assert "prod · action" in confirmation["text"]


def test_quorum_matches_people_to_terms_not_greedily(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Payments needs one from security and one lead. Someone in both who approves first (and
    is seated in security) does not block it: a security member approving next meets the
    quorum, the first moving to the leads' seat."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        assert not t.submit("prod/payments-gate", "PAY_KEY", "pay-value").body
        message = t.approval_message(PAYMENTS, "PAY_KEY")
        assert "*Rule:* payments" in _texts(message)
        assert not t.approve(message, BOTH, PAYMENTS).body
        shown = _texts(t.current(PAYMENTS, message["ts"]))
        assert "*Approvals:* 1 of 2" in shown
        assert f"• 1 of 1 from <!subteam^S0SECURITY>: <@{BOTH}>" in shown
        assert f"• 0 of 1 from <@{BOTH}>, <@{LEAD1}>, <@{LEAD2}>" in shown
        assert not t.approve(message, APPROVER, PAYMENTS).body  # security only
        row = t.bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.APPLIED
        (approved,) = [r for r in _events(t, row.id) if r["event"] == "request.approved"]
        assert approved["approvers"] == [BOTH, APPROVER]
        final = _texts(t.current(PAYMENTS, message["ts"]))
        assert f"• 1 of 1 from <!subteam^S0SECURITY>: <@{APPROVER}>" in final
        assert f"• 1 of 1 from <@{BOTH}>, <@{LEAD1}>, <@{LEAD2}>: <@{BOTH}>" in final
        confirmation = t.slack.wait_for_message(ORIGIN, lambda m: "PAY_KEY" in m["text"])
        assert f"<@{BOTH}>" in confirmation["text"] and f"<@{APPROVER}>" in confirmation["text"]


def test_an_approval_that_fills_no_seat_is_refused(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After one lead approved, another lead's approval would not count: refused at the click
    (no modal), nothing recorded; a security member then meets the quorum."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        assert not t.submit("prod/payments-gate", "PAY_KEY", "pay-value").body
        message = t.approval_message(PAYMENTS, "PAY_KEY")
        assert not t.approve(message, LEAD1, PAYMENTS).body
        mark = t.slack.mark()
        t.bot.driver.block_action(LEAD2, ids.ACTION_APPROVE, message=message, channel_id=PAYMENTS)
        t.bot.drain()
        assert not [c for c in t.slack.calls[mark:] if c.method == "views.open"]
        t.slack.wait_for_ephemeral(LEAD2, lambda m: "would not count" in m["text"])
        request_id = request_id_of(message)
        assert [r["actor"] for r in _events(t, request_id) if r["event"] == "approval.added"] == [
            LEAD1
        ]
        assert not t.approve(message, APPROVER, PAYMENTS).body  # security
        row = t.bot.store.get(request_id)
        assert row is not None and row.state == State.APPLIED


def test_one_rejection_ends_the_request(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One approval in, then a rejection: rejected, value erased, nothing sent to Auth0, the
    buttons gone."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        assert not t.submit("prod/enrich", "NOPE", "nope-value").body
        message = t.approval_message(APPROVALS, "NOPE")
        assert not t.approve(message, APPROVER, APPROVALS).body
        assert t.bot.decide(message, approve=False, user=APPROVER2).status == 200
        t.bot.drain()
        row = t.bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.REJECTED and row.value_ciphertext is None
        assert not [r for r in t.prod.requests if r.method == "PATCH"]
        assert not _has_buttons(t.current(APPROVALS, message["ts"]))
        assert "request.rejected" in t.bot.events()


def test_a_target_no_rule_covers_is_not_offered_and_is_refused(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prod's hooks are under no rule: the picker offers only covered targets in groups per
    tenant and kind; naming the hook in the command or in a crafted submission is refused
    saying no rule covers it (request.refused), and nothing is recorded."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        view = t.bot.open_form()
        ack = t.bot.driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
        assert ack.status == 200 and not ack.problems
        groups = ack.json()["option_groups"]
        # dev's hooks say why there are none (an unusable option); prod's hook is uncovered.
        labels = [g["label"]["text"] for g in groups]
        assert labels == ["prod · Actions", "dev · Actions", "dev · Hooks"]
        assert [o["value"] for o in groups[2]["options"]] == ["dev/hook!unavailable"]
        values = [o["value"] for g in groups for o in g["options"]]
        assert f"prod/action:{t.targets['prod/enrich']}" in values
        assert f"dev/action:{t.targets['dev/enrich']}" in values
        assert not any(t.targets["prod/legacy"] in v for v in values)

        # Someone no rule lets request sees nothing.
        outsider = t.bot.driver.block_suggestion(OUTSIDER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
        assert outsider.json() == {"options": []}

        # The command names it: the modal says no rule covers it, and the refusal is audited.
        mark = t.slack.mark()
        t.bot.driver.slash_command(REQUESTER, "add prod/legacy API_KEY", channel_id=ORIGIN)
        t.slack.wait_for("views.update", after=mark)
        t.bot.drain()
        updated = [c for c in t.slack.calls[mark:] if c.method == "views.update"][-1]
        assert "No rule" in json.dumps(updated.args)

        # A crafted submission naming it.
        hook = {
            "selected_option": {
                "text": {"type": "plain_text", "text": "legacy"},
                "value": f"prod/{t.targets['prod/legacy']}",
            }
        }
        ack = t.bot.submit(t.bot.open_form(), name="API_KEY", hook=hook, validate=False)
        assert ack.json()["errors"] == {ids.BLOCK_HOOK: answers.NO_RULE}
        refused = [r for r in t.bot.audit() if r["event"] == "request.refused"]
        assert [r["outcome"] for r in refused] == ["no_rule", "no_rule"]
        assert not t.bot.store.pending_ids() and not [
            r for r in t.prod.requests if r.method == "POST" and "secrets" in r.path
        ]


def test_commands_take_tenant_slash_name(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`add dev/enrich` pre-fills dev's action; a bare `enrich` (both tenants have one) asks to
    name the tenant."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        mark = t.slack.mark()
        t.bot.driver.slash_command(REQUESTER, "add dev/enrich KEY", channel_id=ORIGIN)
        t.slack.wait_for("views.update", after=mark)
        update = [c for c in t.slack.calls[mark:] if c.method == "views.update"][-1]
        assert f"dev/action:{t.targets['dev/enrich']}" in json.dumps(update.args)
        mark = t.slack.mark()
        t.bot.driver.slash_command(REQUESTER, "add enrich KEY", channel_id=ORIGIN)
        t.slack.wait_for("views.update", after=mark)
        update = [c for c in t.slack.calls[mark:] if c.method == "views.update"][-1]
        assert "several tenants" in json.dumps(update.args)


def test_a_rule_change_expires_an_open_request_at_start(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pending prod request; the bot restarts with prod needing one approval instead of two:
    the request expires (policy_changed), its value is erased, the requester is told; a dev
    request whose rule did not change is untouched."""
    with two_tenants(db_url, tmp_path, monkeypatch) as world:
        slack, prod, dev, targets, path, key = world
        settings = policy_settings(path, slack, db_url, key, monkeypatch)
        with serve(settings, slack, prod, targets["prod/enrich"]) as first:
            t = Tenants(first, prod, dev, targets)
            assert not t.submit("prod/enrich", "OPEN_KEY", "open-value").body
            message = t.approval_message(APPROVALS, "OPEN_KEY")
            first.drain()
        path.write_text(policy_text(prod, dev, prod_approvals=1), encoding="utf-8")
        changed = policy_settings(path, slack, db_url, key, monkeypatch)
        with serve(changed, slack, prod, targets["prod/enrich"]) as second:
            second.drain()
            row = second.store.get(request_id_of(message))
            assert row is not None and row.state == State.EXPIRED and row.value_ciphertext is None
            expired = [r for r in second.audit() if r["event"] == "request.expired"]
            assert [(r["outcome"], r["tenant"], r["rule"]) for r in expired] == [
                ("policy_changed", "prod", "prod")
            ]
            slack.wait_for_ephemeral(REQUESTER, lambda m: "rule for it changed" in m["text"])
            assert not [r for r in prod.requests if r.method == "PATCH"]


def test_approvals_at_once_through_two_replicas_meet_the_quorum_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three approvers of a two-approval rule submit at the same moment through two replicas
    on one database: exactly two approvals count, the quorum is met once, one PATCH and one
    deploy reach prod, and the third is told the request was decided."""
    with two_replicas(db_url, tmp_path, monkeypatch) as (t, two):
        one = t.bot
        prod, targets = t.prod, t.targets
        assert not t.submit("prod/enrich", "RACE_KEY", "race-value").body
        message = t.approval_message(APPROVALS, "RACE_KEY")
        one.drain()
        people = (APPROVER, APPROVER2, BOTH)
        views = {user: t.open_modal(message, user, APPROVALS) for user in people}
        drivers = {APPROVER: one.driver, APPROVER2: two.driver, BOTH: two.driver}
        start = threading.Barrier(len(people))

        def submit(user: str) -> Any:
            start.wait()
            return drivers[user].view_submission(user, views[user], {ids.BLOCK_COMMENT: None})

        with ThreadPoolExecutor(len(people)) as pool:
            acks = dict(zip(people, pool.map(submit, people), strict=True))
        one.drain()
        two.drain()
        request_id = request_id_of(message)
        row = one.store.get(request_id)
        assert row is not None and row.state == State.APPLIED, acks
        counted = [u for u, ack in acks.items() if not ack.body]
        assert len(counted) == 2, {u: a.body for u, a in acks.items()}
        (late,) = set(people) - set(counted)
        assert "already approved" in acks[late].text
        records = [r for r in one.audit() + two.audit() if r.get("request_id") == request_id]
        added = [r for r in records if r["event"] == "approval.added"]
        assert sorted(r["approvals"] for r in added) == [1, 2]
        assert sorted(r["actor"] for r in added) == sorted(counted)
        (approved,) = [r for r in records if r["event"] == "request.approved"]
        assert sorted(approved["approvers"]) == sorted(counted)
        action = targets["prod/enrich"]
        patches = [r for r in prod.requests if r.method == "PATCH" and action in r.path]
        deploys = [r for r in prod.requests if r.method == "POST" and r.path.endswith("/deploy")]
        assert len(patches) == 1 and len(deploys) == 1
        assert prod.actions.deployed_secrets(action)["RACE_KEY"] == "race-value"


def test_answers_about_a_request_name_its_tenant_and_rule(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone not among the prod rule's approvers clicks Approve: the ephemeral answer names
    the request's tenant and target and the rule they are not in; the audit records the
    denial with tenant and rule."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        assert not t.submit("prod/enrich", "ASKED", "asked-value").body
        message = t.approval_message(APPROVALS, "ASKED")
        t.bot.driver.block_action(
            OUTSIDER, ids.ACTION_APPROVE, message=message, channel_id=APPROVALS
        )
        answer = t.slack.wait_for_ephemeral(OUTSIDER, lambda m: "can't decide" in m["text"])
        assert "prod · action enrich" in answer["text"]
        assert "approvers of its rule `prod`" in answer["text"]
        denied = [r for r in t.bot.audit() if r["event"] == "approval.denied"]
        assert [(r["outcome"], r["tenant"], r["rule"]) for r in denied] == [
            ("not_an_approver", "prod", "prod")
        ]


def test_a_rate_limited_tenant_never_holds_another_back(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prod's Auth0 bucket runs dry (a call per 2.5 s) while its change is being applied, and
    the bot's pacing holds prod's calls back; a dev change submitted then is applied while
    prod's is still waiting, with no 429 from dev. Each tenant's client paces on a gate of its
    own and holds its own token."""
    # Prod keeps waiting its turns for longer than the usual 5 s (a margin for slow machines).
    options = {"rate_limit_deadline": 15.0}
    with serve_tenants(db_url, tmp_path, monkeypatch, auth0_options=options) as t:
        clients = []
        for name in ("prod", "dev"):
            actions = t.bot.services.fleet.target(name, TargetKind.ACTION)
            assert isinstance(actions, ActionTarget)
            clients.append(actions.auth0)
        assert clients[0] is not clients[1]
        assert clients[0]._paced is not None and clients[0]._paced is not clients[1]._paced
        assert not t.submit("prod/enrich", "THROTTLED", "throttled-value").body
        message = t.approval_message(APPROVALS, "THROTTLED")
        assert not t.approve(message, APPROVER, APPROVALS).body
        view = t.open_modal(message, APPROVER2, APPROVALS)
        with t.prod._lock:
            t.prod._api_bucket = Bucket(RateLimit(burst=0, per_second=0.4), time.time)
        ack = t.bot.driver.view_submission(APPROVER2, view, {ids.BLOCK_COMMENT: None})
        assert ack.status == 200 and not ack.body
        wait_until(lambda: any(r.status == 429 for r in t.prod.requests), 10, what="prod's 429")
        view = t.bot.open_form()
        ack = t.bot.submit(view, name="FREE_FLOW", value="dev-value", hook=t.option("dev/enrich"))
        assert ack.status == 200 and not ack.body, ack.body
        dev_id = t.targets["dev/enrich"]
        wait_until(
            lambda: "FREE_FLOW" in t.dev.actions.deployed_secrets(dev_id), 15, what="dev applied"
        )
        assert not [r for r in t.dev.requests if r.status == 429]
        prod_row = t.bot.store.get(request_id_of(message))
        assert prod_row is not None and prod_row.state == State.APPROVED  # still being paced
        t.bot.drain()
        prod_row = t.bot.store.get(request_id_of(message))
        assert prod_row is not None  # applied, or given up on as rate_limited: prod's own affair
        assert prod_row.state == State.APPLIED or prod_row.failure_reason == "rate_limited"
