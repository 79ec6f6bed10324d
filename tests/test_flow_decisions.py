"""Deciding requests end to end: rejection, who may decide, races, expiry and restarts."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from bot.approvals.recovery import APPLY_LEASE
from bot.approvals.states import State
from bot.slack import ids
from bot.slack.blocks import approval_message as approval
from tests.harness.inprocess import (
    APPROVALS,
    APPROVER,
    APPROVER2,
    GROUPIE,
    ORIGIN,
    OUTSIDER,
    REQUESTER,
    Bot,
    Clock,
    request_id_of,
    running_bot,
    secret_posts,
    serve,
    workspace,
)


def _approval_message(bot: Bot, name: str) -> dict[str, Any]:
    """The approval message of the pending request for secret ``name``."""
    return bot.slack.wait_for_message(
        APPROVALS,
        lambda m: (
            name in m.get("text", "")
            and any(b.get("type") == "actions" for b in m.get("blocks", []))
        ),
    )


def _open_decision_modal(
    bot: Bot, message: dict[str, Any], user: str, approve: bool = True
) -> dict[str, Any]:
    """Click Approve (or Reject) and return the decision modal it opened."""
    mark = bot.slack.mark()
    action = ids.ACTION_APPROVE if approve else ids.ACTION_REJECT
    assert bot.click(message, action, user).status == 200
    opened = bot.slack.wait_for("views.open", after=mark)
    view: dict[str, Any] = opened.response["view"]
    return view


def _views_opened_since(bot: Bot, mark: int) -> list[Any]:
    bot.drain()
    return [c for c in bot.slack.calls[mark:] if c.method == "views.open"]


def test_rejection_with_comment_erases_value_and_tells_the_requester(db_url: str) -> None:
    """Reject with a comment: value erased, nothing sent to Auth0, the approval message loses
    its buttons and shows the outcome, the requester is told with the comment."""
    with running_bot(db_url) as bot:
        message = bot.request_approval()
        request_id = request_id_of(message)
        ack = bot.decide(message, approve=False, comment="use the vault for this one")
        assert ack.status == 200 and not ack.body
        bot.drain()
        row = bot.store.get(request_id)
        assert row is not None and row.state == State.REJECTED
        assert row.value_ciphertext is None and row.decided_by == APPROVER
        told = bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "rejected" in m["text"])
        assert "use the vault for this one" in told["text"] and f"<@{APPROVER}>" in told["text"]
        (updated,) = bot.slack.messages(APPROVALS)
        assert not any(b.get("type") == "actions" for b in updated["blocks"])
        assert "Rejected" in str(updated["blocks"])
        assert not secret_posts(bot.auth0)
        assert bot.auth0.secrets(bot.hook_id) == {"EXISTING": "old"}
        assert bot.events() == ["request.submitted", "request.rejected"]
        rejected = bot.audit()[-1]
        assert rejected["actor"] == APPROVER and rejected["comment"] == "use the vault for this one"


def test_requester_clicking_approve_is_refused(sqlite_url: str) -> None:
    """The requester's own click on Approve opens no modal, is explained ephemerally and is
    audited approval.denied; the request stays pending."""
    with running_bot(sqlite_url) as bot:
        message = bot.request_approval()
        mark = bot.slack.mark()
        assert bot.click(message, user=REQUESTER).status == 200
        refusal = bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "can't decide" in m["text"])
        assert "you requested it" in refusal["text"]
        assert _views_opened_since(bot, mark) == []
        denied = bot.audit()[-1]
        assert denied["event"] == "approval.denied" and denied["outcome"] == "self_approval"
        assert denied["actor"] == REQUESTER and denied["request_id"] == request_id_of(message)
        row = bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.PENDING


def test_requester_who_is_an_approver_cannot_approve_through_the_modal(sqlite_url: str) -> None:
    """A requester who is also an approver is refused both at the button and when submitting the
    approval modal directly; another approver can still approve."""
    requesters = f"{REQUESTER},{APPROVER}"
    with running_bot(sqlite_url, hook_secret_requesters=requesters) as bot:
        view = bot.open_form(user=APPROVER)
        assert not bot.submit(view, user=APPROVER).body
        message = _approval_message(bot, "API_KEY")
        request_id = request_id_of(message)
        mark = bot.slack.mark()
        bot.click(message, user=APPROVER)
        bot.slack.wait_for_ephemeral(APPROVER, lambda m: "you requested it" in m["text"])
        assert _views_opened_since(bot, mark) == []
        row = bot.store.get(request_id)
        assert row is not None
        forged = approval.decision_modal(row, approve=True)
        ack = bot.driver.view_submission(APPROVER, forged, {ids.BLOCK_COMMENT: "lgtm"})
        assert ack.status == 200 and not ack.problems
        assert ack.json()["response_action"] == "errors"
        assert "another approver" in ack.json()["errors"][ids.BLOCK_COMMENT]
        assert [r["outcome"] for r in bot.audit() if r["event"] == "approval.denied"] == [
            "self_approval",
            "self_approval",
        ]
        row = bot.store.get(request_id)
        assert row is not None and row.state == State.PENDING and row.decided_by is None
        bot.decide(message, user=APPROVER2)
        bot.drain()
        assert len(secret_posts(bot.auth0)) == 1
        row = bot.store.get(request_id)
        assert row is not None and row.state == State.APPLIED and row.decided_by == APPROVER2


def test_someone_not_in_the_approver_list_is_refused(sqlite_url: str) -> None:
    """Neither a click nor a submitted approval modal from a non-approver decides anything; both
    are audited approval.denied."""
    with running_bot(sqlite_url) as bot:
        message = bot.request_approval()
        request_id = request_id_of(message)
        mark = bot.slack.mark()
        bot.click(message, user=OUTSIDER)
        refusal = bot.slack.wait_for_ephemeral(OUTSIDER)
        assert "HOOK_SECRET_APPROVERS" in refusal["text"]
        assert _views_opened_since(bot, mark) == []
        row = bot.store.get(request_id)
        assert row is not None
        forged = approval.decision_modal(row, approve=True)
        ack = bot.driver.view_submission(OUTSIDER, forged, {ids.BLOCK_COMMENT: None})
        assert ack.json()["response_action"] == "errors" and not ack.problems
        bot.drain()
        denied = [r for r in bot.audit() if r["event"] == "approval.denied"]
        assert [(r["actor"], r["outcome"]) for r in denied] == [
            (OUTSIDER, "not_an_approver"),
            (OUTSIDER, "not_an_approver"),
        ]
        assert all(r["request_id"] == request_id for r in denied)
        row = bot.store.get(request_id)
        assert row is not None and row.state == State.PENDING
        assert not secret_posts(bot.auth0)


def test_member_of_the_approver_group_can_approve(sqlite_url: str) -> None:
    """An approver listed only through a user group decides and is named in the confirmation."""
    with running_bot(sqlite_url) as bot:
        bot.slack.set_group_members("S0APPS", [GROUPIE])
        message = bot.request_approval()
        assert not bot.decide(message, user=GROUPIE).body
        bot.drain()
        confirmation = bot.slack.wait_for_message(ORIGIN, lambda m: "API_KEY" in m["text"])
        assert f"<@{GROUPIE}>" in confirmation["text"]
        assert len(secret_posts(bot.auth0)) == 1


def test_approver_removed_from_the_group_between_click_and_submit_is_refused(
    sqlite_url: str,
) -> None:
    """Group membership is checked again when the approval modal is submitted: someone removed
    from the approver group after clicking decides nothing."""
    with running_bot(sqlite_url) as bot:
        bot.slack.set_group_members("S0APPS", [GROUPIE])
        message = bot.request_approval()
        view = _open_decision_modal(bot, message, GROUPIE)
        bot.slack.set_group_members("S0APPS", [])
        ack = bot.driver.view_submission(GROUPIE, view, {ids.BLOCK_COMMENT: None})
        assert ack.status == 200 and not ack.problems
        assert ack.json()["response_action"] == "errors"
        assert "no longer" in ack.json()["errors"][ids.BLOCK_COMMENT]
        bot.drain()
        row = bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.PENDING
        assert not secret_posts(bot.auth0)
        denied = bot.audit()[-1]
        assert denied["event"] == "approval.denied" and denied["actor"] == GROUPIE


def test_double_click_applies_once_and_the_second_submission_is_told_who_decided(
    db_url: str,
) -> None:
    """Two Approve clicks open two modals; submitting both approves and applies exactly once,
    and the second answer says who approved."""
    with running_bot(db_url) as bot:
        message = bot.request_approval()
        first = _open_decision_modal(bot, message, APPROVER)
        second = _open_decision_modal(bot, message, APPROVER)
        assert first["id"] != second["id"]
        ack1 = bot.driver.view_submission(APPROVER, first, {ids.BLOCK_COMMENT: None})
        ack2 = bot.driver.view_submission(APPROVER, second, {ids.BLOCK_COMMENT: None})
        assert not ack1.body
        assert ack2.json()["response_action"] == "update" and not ack2.problems
        assert f"already approved by <@{APPROVER}>" in str(ack2.json()["view"])
        bot.drain()
        assert len(secret_posts(bot.auth0)) == 1
        assert bot.events().count("request.approved") == 1
        assert bot.events().count("secret.added") == 1
        mark = bot.slack.mark()
        bot.click(message, user=APPROVER2)
        late = bot.slack.wait_for_ephemeral(APPROVER2, lambda m: "already" in m["text"])
        assert f"approved by <@{APPROVER}> and applied" in late["text"]
        assert _views_opened_since(bot, mark) == []


def test_two_approvers_submitting_at_once_apply_exactly_once(db_url: str) -> None:
    """Two approvers submitting the approval modal at the same instant: one decision, one POST
    to Auth0, and the other approver is told who decided."""
    with running_bot(db_url) as bot:
        for name in ("KEY_ONE", "KEY_TWO", "KEY_THREE"):
            assert not bot.submit(bot.open_form(), name=name).body
            message = _approval_message(bot, name)
            views = {u: _open_decision_modal(bot, message, u) for u in (APPROVER, APPROVER2)}
            start = threading.Barrier(len(views))

            def submit(
                user: str, views: dict[str, dict[str, Any]] = views, start: Any = start
            ) -> Any:
                start.wait()
                return bot.driver.view_submission(user, views[user], {ids.BLOCK_COMMENT: None})

            with ThreadPoolExecutor(len(views)) as pool:
                acks = dict(zip(views, pool.map(submit, views), strict=True))
            bot.drain()
            winners = [user for user, ack in acks.items() if not ack.body]
            assert len(winners) == 1, {u: a.body for u, a in acks.items()}
            (loser,) = set(acks) - set(winners)
            assert acks[loser].json()["response_action"] == "update"
            assert f"already approved by <@{winners[0]}>" in str(acks[loser].json()["view"])
            row = bot.store.get(request_id_of(message))
            assert row is not None and row.state == State.APPLIED and row.decided_by == winners[0]
        posts = secret_posts(bot.auth0)
        assert sorted(name for post in posts for name in post.json()) == [
            "KEY_ONE",
            "KEY_THREE",
            "KEY_TWO",
        ]
        assert bot.events().count("request.approved") == 3
        assert bot.events().count("secret.added") == 3


def test_expired_request_is_erased_and_everyone_is_told(db_url: str) -> None:
    """Past the TTL the sweep expires a pending request: value erased, approval message updated
    without buttons, requester told, request.expired audited; a later click decides nothing."""
    with running_bot(db_url, hook_secret_request_ttl=60) as bot:
        message = bot.request_approval()
        request_id = request_id_of(message)
        bot.clock.advance(59)
        bot.services.sweep()
        row = bot.store.get(request_id)
        assert row is not None and row.state == State.PENDING
        bot.clock.advance(2)
        bot.services.sweep()
        bot.drain()  # the outbox worker, woken by the expiry's commit, may be the one updating
        row = bot.store.get(request_id)
        assert row is not None and row.state == State.EXPIRED and row.value_ciphertext is None
        (updated,) = bot.slack.messages(APPROVALS)
        assert not any(b.get("type") == "actions" for b in updated["blocks"])
        assert "Expired" in str(updated["blocks"])
        told = bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "expired" in m["text"])
        assert "erased" in told["text"]
        expired = bot.audit()[-1]
        assert expired["event"] == "request.expired" and expired["request_id"] == request_id
        assert expired["outcome"] == "expired"
        mark = bot.slack.mark()
        bot.click(message, user=APPROVER)
        bot.slack.wait_for_ephemeral(APPROVER, lambda m: "expired" in m["text"])
        assert _views_opened_since(bot, mark) == []
        assert not secret_posts(bot.auth0)
        bot.services.sweep()
        assert bot.events().count("request.expired") == 1


def test_approving_after_the_ttl_expires_the_request_instead(sqlite_url: str) -> None:
    """An approval submitted after the TTL (no sweep yet) expires the request rather than
    applying it, and the approver is told."""
    with running_bot(sqlite_url, hook_secret_request_ttl=60) as bot:
        message = bot.request_approval()
        view = _open_decision_modal(bot, message, APPROVER)
        bot.clock.advance(61)
        ack = bot.driver.view_submission(APPROVER, view, {ids.BLOCK_COMMENT: None})
        assert ack.json()["response_action"] == "update" and not ack.problems
        assert "expired" in str(ack.json()["view"])
        bot.drain()
        row = bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.EXPIRED and row.value_ciphertext is None
        bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "expired" in m["text"])
        assert not secret_posts(bot.auth0)
        assert "request.approved" not in bot.events()


def test_restart_between_submission_and_approval_keeps_the_request(db_url: str) -> None:
    """A pending request survives the bot stopping; a new bot on the same database applies it
    when approved."""
    with workspace(db_url) as ws:
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as first:
            message = first.request_approval(value="survives-restart")
            first.drain()
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as second:
            second.services.sweep()  # what a starting process does first
            assert not secret_posts(ws.auth0)
            ack = second.decide(message)
            assert ack.status == 200 and not ack.body
            second.drain()
            assert ws.auth0.secrets(ws.hook_id)["API_KEY"] == "survives-restart"
            assert len(secret_posts(ws.auth0)) == 1
            row = second.store.get(request_id_of(message))
            assert row is not None and row.state == State.APPLIED
            assert second.events() == ["approval.added", "request.approved", "secret.added"]
            ws.slack.wait_for_message(ORIGIN, lambda m: "API_KEY" in m["text"])


def test_restart_after_auth0_took_the_secret_reconciles_without_a_second_post(
    db_url: str,
) -> None:
    """A process that sent the POST and died before recording it leaves the request approved;
    after the apply lease the next process reads Auth0 back and marks it applied, no POST."""
    clock = Clock()
    with workspace(db_url) as ws:
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id, clock=clock) as first:
            message = first.request_approval(value="landed-before-crash")
            request_id = request_id_of(message)
            # The dying process: decided, claimed the apply, its POST reached Auth0, then nothing.
            first.services.workflow.decide(request_id, APPROVER, True, None)
            with first.store.transaction() as tx:
                assert tx.claim(request_id, timedelta(0)) is not None
            ws.auth0.set_secrets(ws.hook_id, {"API_KEY": "landed-before-crash"})
            first.drain()
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id, clock=clock) as second:
            second.services.sweep()  # inside the lease: another process may still be applying
            second.drain()
            row = second.store.get(request_id)
            assert row is not None and row.state == State.APPROVED
            clock.advance(APPLY_LEASE.total_seconds() + 1)
            second.services.sweep()
            second.drain()
            row = second.store.get(request_id)
            assert row is not None and row.state == State.APPLIED and row.value_ciphertext is None
            assert secret_posts(ws.auth0) == []
            assert second.events() == ["secret.added"]
            ws.slack.wait_for_message(ORIGIN, lambda m: "API_KEY" in m["text"])
            (updated,) = ws.slack.messages(APPROVALS)
            assert not any(b.get("type") == "actions" for b in updated["blocks"])


def test_restart_before_the_post_reconciles_by_applying_once(db_url: str) -> None:
    """A request approved by a process that died before applying is applied exactly once by the
    next process's sweep, and stays applied on later sweeps."""
    clock = Clock()
    with workspace(db_url) as ws:
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id, clock=clock) as first:
            message = first.request_approval(value="applied-after-restart")
            request_id = request_id_of(message)
            first.services.workflow.decide(request_id, APPROVER, True, None)
            first.drain()
        clock.advance(APPLY_LEASE.total_seconds() + 1)
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id, clock=clock) as second:
            second.services.sweep()
            second.drain()
            second.services.sweep()
            second.drain()
            assert ws.auth0.secrets(ws.hook_id)["API_KEY"] == "applied-after-restart"
            assert len(secret_posts(ws.auth0)) == 1
            row = second.store.get(request_id)
            assert row is not None and row.state == State.APPLIED
            assert second.events() == ["secret.added"]


def test_lost_answer_to_the_post_is_read_back_not_resent(sqlite_url: str) -> None:
    """When Auth0 stores the secret but the connection drops before it answers, the bot reads
    the hook back, records the request applied and sends no second POST."""
    with running_bot(sqlite_url) as bot:
        message = bot.request_approval(value="dropped-answer")
        bot.auth0.drop_connection_after_write(1)
        bot.decide(message)
        bot.drain()
        assert bot.auth0.secrets(bot.hook_id)["API_KEY"] == "dropped-answer"
        assert len(secret_posts(bot.auth0)) == 1
        row = bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.APPLIED
        assert bot.events()[-1] == "secret.added"
