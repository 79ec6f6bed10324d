"""Adversarial review of issue 24 (several tenants, a rule per target, quorum approvals): each
test is an attack over real HTTP (or on the database as an attacker writes it) that must change
nothing in Auth0."""

from __future__ import annotations

import copy
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert

from bot.approvals.states import State
from bot.db.models import Approval
from bot.slack import answers, ids
from tests.harness.inprocess import request_id_of
from tests.harness.people import APPROVALS, APPROVER, APPROVER2, ORIGIN, REQUESTER
from tests.harness.tenants import (
    BOTH,
    LEAD1,
    PAYMENTS,
    Tenants,
    serve_tenants,
    two_replicas,
)
from tests.waiting import wait_until


def _patches(t: Tenants, action_id: str) -> list[Any]:
    return [r for r in t.prod.requests if r.method == "PATCH" and action_id in r.path]


def _forged(t: Tenants, key: str, label: str) -> dict[str, Any]:
    """The picker's option for ``key`` with a label the client rewrote."""
    option = t.option(key)
    option["selected_option"]["text"]["text"] = label
    return option


def test_a_forged_label_while_auth0_is_slow_does_not_pick_a_laxer_rule(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prod's `payments-gate` is decided by the payments quorum (security AND a lead). The
    requester submits it with the option's label rewritten to `enrich (post-login)` while prod's
    Auth0 answers slower than the ack deadline: the rule must still be payments, and two plain
    approvers (no lead) must never get the payments action changed."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        gate = t.targets["prod/payments-gate"]
        option = _forged(t, "prod/payments-gate", "enrich (post-login)")  # the catalog is warm
        t.prod.latency = 2.0  # slower than services.ACK_DEADLINE: the form's check reads nothing
        try:
            view = t.bot.open_form()
            ack = t.bot.submit(view, name="PAY_KEY", value="pay-value", hook=option)
        finally:
            t.prod.latency = 0.0
        t.bot.drain()
        pending = t.bot.store.pending_ids()
        if ack.body or not pending:  # refused outright: fine
            assert not _patches(t, gate)
            return
        (request_id,) = pending
        row = t.bot.store.get(request_id)
        assert row is not None
        assert (row.rule_name, row.target_name) == ("payments", "payments-gate")
        # Two approvers who are no lead decide nothing under it.
        for user in (APPROVER, APPROVER2):
            t.bot.services.decide(request_id, user, True, None)
        t.bot.drain()
        assert not _patches(t, gate)
        assert "PAY_KEY" not in t.prod.actions.deployed_secrets(gate)


def _prod_down(t: Tenants) -> None:
    """Prod's Auth0 answers every API call with 500 and its cached lists are gone."""
    for target in t.bot.services.fleet["prod"].targets:
        target.forget()
    t.prod.fail_next(10_000, 500)


def test_list_picker_shows_dev_while_prod_auth0_is_down(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/hook-secret list` with no target: prod's Auth0 failing must not hide dev's targets
    (one tenant down never breaks another, CONTRACT §6)."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        _prod_down(t)
        t.bot.driver.slash_command(REQUESTER, "list", channel_id=ORIGIN)
        shown = t.slack.wait_for_ephemeral(REQUESTER, timeout=15)
        assert t.targets["dev/enrich"] in json.dumps(shown), shown.get("text")


def test_request_picker_shows_dev_while_prod_auth0_is_down(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request form's picker: prod failing says why in prod's group, dev's are offered."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        view = t.bot.open_form()
        _prod_down(t)
        ack = t.bot.driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
        assert ack.status == 200
        assert f"dev/action:{t.targets['dev/enrich']}" in json.dumps(ack.json())


def test_command_takes_tenant_slash_action_id(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/hook-secret add dev/action:ID KEY` (CONTRACT §6) pre-fills dev's action; it is not
    refused as a value typed into the command."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        key = f"dev/action:{t.targets['dev/enrich']}"
        mark = t.slack.mark()
        ack = t.bot.driver.slash_command(REQUESTER, f"add {key} KEY", channel_id=ORIGIN)
        assert "looked like it carried a secret value" not in (ack.text or ""), ack.text
        t.slack.wait_for("views.update", after=mark)
        update = [c for c in t.slack.calls[mark:] if c.method == "views.update"][-1]
        assert key in json.dumps(update.args)


def _replayed(view: dict[str, Any], request_id: str, callback: str) -> dict[str, Any]:
    """A decision modal replayed by a crafted client: another request, maybe another verb."""
    crafted = copy.deepcopy(view)
    crafted.pop("id", None)  # not the open view the stand-in keeps: the payload as crafted
    crafted["private_metadata"] = request_id
    crafted["callback_id"] = callback
    return crafted


def test_a_decision_modal_replayed_onto_another_rules_request_decides_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LEAD1 may decide payments requests only. Their genuine approval modal for a payments
    request, replayed with a prod/enrich request's id (as approve, then as reject), must neither
    count nor reject: prod's rule does not list them."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        assert not t.submit("prod/payments-gate", "PAY_KEY", "pay-value").body
        pay = t.approval_message(PAYMENTS, "PAY_KEY")
        assert not t.submit("prod/enrich", "ENR_KEY", "enr-value").body
        enrich = t.approval_message(APPROVALS, "ENR_KEY")
        target = request_id_of(enrich)
        view = t.open_modal(pay, LEAD1, PAYMENTS)
        for callback in (ids.CALLBACK_APPROVE, ids.CALLBACK_REJECT):
            crafted = _replayed(view, target, callback)
            t.bot.driver.view_submission(LEAD1, crafted, {ids.BLOCK_COMMENT: None})
        t.bot.drain()
        row = t.bot.store.get(target)
        assert row is not None and row.state == State.PENDING
        assert not t.bot.store.approvals_of(target)
        records = [r for r in t.bot.audit() if r.get("request_id") == target]
        assert [r["outcome"] for r in records if r["event"] == "approval.denied"] == [
            "not_an_approver",
            "not_an_approver",
        ]


def _redirect_on_hold(db_url: str, target_id: str) -> None:
    """An attacker who can write the database installs a trigger: when the bot locks a pending
    request (its no-op ``state = pending`` update), the row's target is rewritten."""
    rewrite = f"UPDATE secret_requests SET hook_id = '{target_id}' WHERE id = NEW.id;"  # noqa: S608
    engine = create_engine(db_url)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql(
                    "CREATE TRIGGER evil AFTER UPDATE OF state ON secret_requests FOR EACH ROW "
                    "WHEN OLD.state = 'pending' AND NEW.state = 'pending' BEGIN "
                    f"{rewrite} END"
                )
            else:
                connection.exec_driver_sql(
                    "CREATE FUNCTION evil() RETURNS trigger AS $$ BEGIN "
                    f"NEW.hook_id := '{target_id}'; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
                connection.exec_driver_sql(
                    "CREATE TRIGGER evil BEFORE UPDATE ON secret_requests FOR EACH ROW "
                    "WHEN (OLD.state = 'pending' AND NEW.state = 'pending') "
                    "EXECUTE FUNCTION evil()"
                )
    finally:
        engine.dispose()


def test_a_row_rewritten_while_the_last_approval_holds_it_is_not_resealed(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prod/enrich request with one approval in; the attacker's trigger rewrites its target
    to the payments action at the moment the last approval locks the row. The bot must not
    seal the rewritten row as approved: nothing reaches the payments action (or enrich)."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        gate = t.targets["prod/payments-gate"]
        assert not t.submit("prod/enrich", "ENR_KEY", "enr-value").body
        message = t.approval_message(APPROVALS, "ENR_KEY")
        assert not t.approve(message, APPROVER, APPROVALS).body
        view = t.open_modal(message, APPROVER2, APPROVALS)  # the request is intact so far
        _redirect_on_hold(db_url, gate)
        t.bot.driver.view_submission(APPROVER2, view, {ids.BLOCK_COMMENT: None})
        t.bot.drain()
        assert not _patches(t, gate)
        assert "ENR_KEY" not in t.prod.actions.deployed_secrets(gate)
        assert not [r for r in t.prod.requests if r.method == "PATCH"]
        row = t.bot.store.get(request_id_of(message))
        assert row is not None
        assert row.state == State.FAILED, row.state
        assert row.failure_reason == "tampered" and row.value_ciphertext is None
        assert "request.approved" not in t.bot.events()


def test_approval_rows_written_into_the_database_do_not_count(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Approval rows an attacker inserts (a made-up seal; APPROVER's genuine seal copied from
    another request) count for nothing: one genuine approval leaves a two-approval request
    pending, and nothing reaches Auth0."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        assert not t.submit("prod/enrich", "KEY_A", "a-value").body
        first = t.approval_message(APPROVALS, "KEY_A")
        assert not t.approve(first, APPROVER, APPROVALS).body
        (genuine,) = t.bot.store.approvals_of(request_id_of(first))
        assert not t.submit("prod/enrich", "KEY_B", "b-value").body
        second = request_id_of(t.approval_message(APPROVALS, "KEY_B"))
        engine = create_engine(db_url)
        try:
            with engine.begin() as connection:
                for approver, seal in ((APPROVER, genuine.seal), (APPROVER2, "v1:" + "0" * 64)):
                    connection.execute(
                        insert(Approval).values(
                            request_id=second,
                            approver=approver,
                            created_at=genuine.created_at,
                            seal=seal,
                        )
                    )
        finally:
            engine.dispose()
        t.bot.services.decide(second, BOTH, True, None)
        t.bot.drain()
        row = t.bot.store.get(second)
        assert row is not None
        assert row.state == State.PENDING, row.state
        assert not [r for r in t.prod.requests if r.method == "PATCH"]
        added = [r for r in t.bot.audit() if r.get("request_id") == second]
        assert [(r["actor"], r["approvals"]) for r in added if r["event"] == "approval.added"] == [
            (BOTH, 1)
        ]


def test_the_last_approval_racing_a_rejection_on_two_replicas_ends_one_way(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One approval in; the second (replica one) and a rejection (replica two) are submitted
    at the same moment, three times over: each request ends approved-and-applied or rejected,
    never both, and a rejected one never reaches Auth0."""
    with two_replicas(db_url, tmp_path, monkeypatch) as (t, two):
        one = t.bot
        slack, prod, targets = t.slack, t.prod, t.targets
        for round_ in range(3):
            name = f"RACE_{round_}"
            assert not t.submit("prod/enrich", name, f"value-{round_}").body
            message = t.approval_message(APPROVALS, name)
            assert not t.approve(message, APPROVER, APPROVALS).body
            approve = t.open_modal(message, APPROVER2, APPROVALS)
            mark = slack.mark()
            one.driver.block_action(BOTH, ids.ACTION_REJECT, message=message, channel_id=APPROVALS)
            slack.wait_for("views.open", after=mark)
            reject = slack.wait_for_view(BOTH, callback_id=ids.CALLBACK_REJECT)
            start = threading.Barrier(2)

            def submit(
                job: tuple[Any, str, dict[str, Any]], start: threading.Barrier = start
            ) -> Any:
                start.wait()
                driver, user, view = job
                return driver.view_submission(user, view, {ids.BLOCK_COMMENT: None})

            jobs = [(one.driver, APPROVER2, approve), (two.driver, BOTH, reject)]
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(submit, jobs))
            one.drain()
            two.drain()
            request_id = request_id_of(message)
            row = one.store.get(request_id)
            assert row is not None
            events = [
                r["event"] for r in one.audit() + two.audit() if r.get("request_id") == request_id
            ]
            written = name in prod.actions.deployed_secrets(targets["prod/enrich"])
            if row.state == State.REJECTED:
                assert not written and "request.approved" not in events, events
            else:
                assert row.state == State.APPLIED, row.state
                assert written and "request.rejected" not in events, events


def test_one_person_approving_twice_at_once_on_two_replicas_counts_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """APPROVER's modal submitted twice at the same moment, once through each replica (a double
    click, a replayed payload): one approval counts, the two-approval request stays pending,
    nothing reaches Auth0."""
    with two_replicas(db_url, tmp_path, monkeypatch) as (t, two):
        one = t.bot
        prod = t.prod
        assert not t.submit("prod/enrich", "TWICE", "twice-value").body
        message = t.approval_message(APPROVALS, "TWICE")
        view = t.open_modal(message, APPROVER, APPROVALS)
        crafted = copy.deepcopy(view)
        crafted.pop("id", None)
        start = threading.Barrier(2)

        def submit(driver: Any) -> Any:
            start.wait()
            return driver.view_submission(APPROVER, crafted, {ids.BLOCK_COMMENT: None})

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(submit, (one.driver, two.driver)))
        one.drain()
        two.drain()
        request_id = request_id_of(message)
        row = one.store.get(request_id)
        assert row is not None
        assert row.state == State.PENDING, row.state
        assert [a.approver for a in one.store.approvals_of(request_id)] == [APPROVER]
        added = [r for r in one.audit() + two.audit() if r.get("request_id") == request_id]
        assert [r["event"] for r in added].count("approval.added") == 1
        assert not [r for r in prod.requests if r.method == "PATCH"]


def test_no_slack_lookup_while_the_write_transaction_is_held(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A payments request with one approval expires. The expiry's transaction holds the
    process's one write turn (group commit): the messages it queues must not ask Slack for
    user group members meanwhile (a slow Slack would stall every write of the process)."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        assert not t.submit("prod/payments-gate", "PAY_KEY", "pay-value").body
        message = t.approval_message(PAYMENTS, "PAY_KEY")
        assert not t.approve(message, BOTH, PAYMENTS).body
        directory = t.bot.services.policy._directory
        turn = t.bot.store._writes._turn
        members = directory.members
        held: list[str] = []

        def watched(group_id: str, *, fresh: bool = False) -> frozenset[str]:
            if turn.locked():
                held.append(group_id)
            return members(group_id, fresh=fresh)

        monkeypatch.setattr(directory, "members", watched)
        directory.forget()  # a minute later: the cached memberships are gone
        t.bot.clock.advance(2 * 86400)
        t.bot.services.sweep()
        t.bot.drain()
        row = t.bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.EXPIRED
        assert not held, held


def test_request_picker_answers_in_time_while_prod_auth0_is_slow(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prod's Auth0 answers after 5 s and its lists are not cached: the picker still answers
    within Slack's 3 s for options loads, offering dev's action (one tenant slow never breaks
    another)."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        view = t.bot.open_form()
        for target in t.bot.services.fleet["prod"].targets:
            target.forget()
        t.prod.latency = 5.0
        started = time.monotonic()
        try:
            ack = t.bot.driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
            elapsed = time.monotonic() - started
        finally:
            t.prod.latency = 0.0
        assert ack.status == 200
        assert f"dev/action:{t.targets['dev/enrich']}" in json.dumps(ack.json())
        assert elapsed < 3.0, elapsed


def test_a_late_progress_update_never_brings_the_buttons_back(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first approval's progress update ("1 of 2", buttons kept) meets a Slack hiccup and
    is retried later; meanwhile the second approval meets the quorum and the change applies.
    Once the retry is sent, the approval message must still say the outcome, without buttons
    (updates of one message must not land out of order)."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        assert not t.submit("prod/enrich", "LATE", "late-value").body
        message = t.approval_message(APPROVALS, "LATE")
        mark = t.slack.mark()
        t.slack.fail_for("chat.update", 60)
        assert not t.approve(message, APPROVER, APPROVALS).body
        # The progress update was tried (and failed) before Slack is back: it waits for its
        # retry.
        wait_until(
            lambda: any(c.method == "chat.update" for c in t.slack.calls[mark:]),
            what="the progress update's first try",
        )
        t.slack.fail_for("chat.update", 0)
        assert not t.approve(message, APPROVER2, APPROVALS).body
        row = t.bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.APPLIED
        t.bot.drain()
        decided = t.current(APPROVALS, message["ts"])
        assert not any(b.get("type") == "actions" for b in decided.get("blocks", []))
        t.bot.clock.advance(600)  # the retry is due
        t.bot.services.sweep()
        t.bot.drain()
        final = t.current(APPROVALS, message["ts"])
        assert not any(b.get("type") == "actions" for b in final.get("blocks", [])), final["text"]


def test_with_a_policy_file_a_target_nobody_vouches_for_is_not_recorded(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Auth0 slower than the ack and nothing cached for prod: the form's label is all there is
    to name the target, and with a policy file a later rule may judge a request by its name,
    so the submission is refused (submit again), not recorded under the label's name."""
    with serve_tenants(db_url, tmp_path, monkeypatch) as t:
        option = _forged(t, "prod/enrich", "enrich (post-login)")
        for target in t.bot.services.fleet["prod"].targets:
            target.forget()
        t.prod.latency = 2.0
        try:
            ack = t.bot.submit(t.bot.open_form(), name="SLOW_KEY", value="v", hook=option)
        finally:
            t.prod.latency = 0.0
        assert ack.json()["errors"] == {ids.BLOCK_HOOK: answers.RULE_UNKNOWN}
        assert not t.bot.store.pending_ids()
