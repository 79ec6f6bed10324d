"""Submissions checked against names read ahead, end to end: the ack never waits for Auth0.

Auth0 answers after 2 s in most of these tests, so any Auth0 call before an ack would show in
its time; the proof, though, is the sandbox's record: no request arrived between sending the
submission and receiving its ack."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bot.approvals.states import State
from bot.slack import answers, ids
from standins.auth0 import RecordedRequest
from tests.harness.inprocess import (
    APPROVALS,
    ORIGIN,
    REQUESTER,
    Bot,
    all_requests,
    running_bot,
    secret_posts,
    shown_texts,
)
from tests.waiting import wait_until

HOOK_NAME = "Client Credentials Exchange"
LATENCY = 2.0


def _auth0_calls_during(bot: Bot, send: Callable[[], Any]) -> tuple[Any, list[RecordedRequest]]:
    """Send something to the bot; its answer and the Auth0 requests that arrived meanwhile."""
    started = time.time()
    answer = send()
    finished = time.time()
    return answer, [r for r in bot.auth0.requests if started <= r.received_at <= finished]


def _submit_without_auth0(bot: Bot, view: dict[str, Any], **fields: Any) -> Any:
    """Submit the form; assert no Auth0 call happened before the ack, which came quickly."""
    ack, calls = _auth0_calls_during(bot, lambda: bot.submit(view, **fields))
    assert calls == [], [(r.method, r.path) for r in calls]
    assert ack.status == 200 and not ack.problems, (ack.body, ack.problems)
    assert ack.elapsed < bot.auth0.latency or bot.auth0.latency == 0
    return ack


def _pick(bot: Bot, view: dict[str, Any], hook_id: str) -> dict[str, Any]:
    """Choose a hook in the open modal's picker, as the user does; the option Slack sends."""
    option = bot.hook_option(hook_id)
    ack = bot.driver.view_action(REQUESTER, view, ids.BLOCK_HOOK, option)
    assert ack.status == 200 and not ack.body and not ack.problems, ack.body
    assert ack.elapsed < LATENCY  # the pick is acked before the read it starts
    bot.drain()  # the read it started has finished
    return option


def _field_errors(ack: Any) -> dict[str, str]:
    body = ack.json()
    assert body["response_action"] == "errors", body
    errors: dict[str, str] = body["errors"]
    return errors


def _approval_message(bot: Bot) -> dict[str, Any]:
    return bot.slack.wait_for_message(
        APPROVALS, lambda m: any(b.get("type") == "actions" for b in m.get("blocks", []))
    )


def test_prefilled_and_picked_targets_are_checked_without_asking_auth0(sqlite_url: str) -> None:
    """With Auth0 at 2 s, the hook named in the command and the hook picked later are read
    while the modal is open; submitting answers "name exists" and "hook full" from those
    names, quickly and with no Auth0 call between the submission and its ack."""
    with running_bot(sqlite_url) as bot:
        full = bot.auth0.add_hook("Full", secrets={f"S{n}": "x" for n in range(20)})
        bot.auth0.latency = LATENCY
        mark = bot.slack.mark()
        ack = bot.driver.slash_command(REQUESTER, f'add "{HOOK_NAME}"', channel_id=ORIGIN)
        assert ack.status == 200 and ack.elapsed < LATENCY
        bot.slack.wait_for("views.update", after=mark, timeout=15)
        view = bot.slack.view_for_user(REQUESTER)
        bot.drain()  # the pre-filled hook's names were read meanwhile
        errors = _field_errors(_submit_without_auth0(bot, view, name="EXISTING"))
        assert errors == {ids.BLOCK_SECRET_NAME: answers.NAME_EXISTS}
        picked = _pick(bot, view, full)
        errors = _field_errors(_submit_without_auth0(bot, view, hook=picked, name="ONE_MORE"))
        assert errors == {ids.BLOCK_HOOK: answers.HOOK_FULL}
        assert [(r["event"], r["outcome"]) for r in bot.audit()] == [
            ("request.refused", "name_exists"),
            ("request.refused", "hook_full"),
        ]
        assert all_requests(bot.store) == [] and not secret_posts(bot.auth0)


def test_valid_submission_is_recorded_without_asking_auth0(sqlite_url: str) -> None:
    """A valid request on a picked hook is recorded and acked with no Auth0 call, its hook
    name taken from what Auth0 said when the names were read."""
    with running_bot(sqlite_url) as bot:
        view = bot.open_form()
        bot.auth0.latency = LATENCY
        picked = _pick(bot, view, bot.hook_id)
        ack = _submit_without_auth0(bot, view, hook=picked, name="NEW_KEY")
        assert not ack.body
        bot.drain()
        (row,) = all_requests(bot.store)
        assert (row.state, row.secret_name, row.target_name) == (
            State.PENDING,
            "NEW_KEY",
            HOOK_NAME,
        )


def test_name_added_in_the_dashboard_after_the_read_fails_the_apply_as_a_conflict(
    sqlite_url: str,
) -> None:
    """A name added behind the bot's back after the names were read passes the form, but the
    apply has the last word: it fails as a conflict, the dashboard's value stays, everyone is
    told, and the names are read again for the next form."""
    with running_bot(sqlite_url) as bot:
        view = bot.open_form()
        picked = _pick(bot, view, bot.hook_id)
        bot.auth0.set_secrets(bot.hook_id, {"API_KEY": "set-in-the-dashboard"})
        bot.auth0.latency = LATENCY
        assert not _submit_without_auth0(bot, view, hook=picked, name="API_KEY").body
        bot.auth0.latency = 0.0
        bot.decide(_approval_message(bot))
        bot.drain()
        (row,) = all_requests(bot.store)
        assert (row.state, row.failure_reason, row.value_ciphertext) == (
            State.FAILED,
            "conflict",
            None,
        )
        assert bot.auth0.secrets(bot.hook_id) == {
            "EXISTING": "old",
            "API_KEY": "set-in-the-dashboard",
        }
        told = [t for t in shown_texts(bot.slack) if "already has a secret named API_KEY" in t]
        assert told, "nobody was told why the apply failed"
        assert ("request.failed", "conflict") in [(r["event"], r["outcome"]) for r in bot.audit()]
        # The failed apply dropped the stale names: the next form reads them again.
        again = bot.open_form()
        picked = _pick(bot, again, bot.hook_id)
        bot.auth0.latency = LATENCY
        errors = _field_errors(_submit_without_auth0(bot, again, hook=picked, name="API_KEY"))
        assert errors == {ids.BLOCK_SECRET_NAME: answers.NAME_EXISTS}


def test_a_change_the_bot_applied_is_known_to_the_next_form(sqlite_url: str) -> None:
    """Once the bot has added a secret, a form picking the same hook a moment later (its
    earlier names still young) is told the name exists, without asking Auth0 at submit."""
    with running_bot(sqlite_url) as bot:
        view = bot.open_form()
        picked = _pick(bot, view, bot.hook_id)
        assert not bot.submit(view, hook=picked, name="NEW_KEY").body
        bot.decide(_approval_message(bot))
        bot.drain()
        (row,) = all_requests(bot.store)
        assert row.state == State.APPLIED
        again = bot.open_form()
        picked = _pick(bot, again, bot.hook_id)
        bot.auth0.latency = LATENCY
        errors = _field_errors(_submit_without_auth0(bot, again, hook=picked, name="NEW_KEY"))
        assert errors == {ids.BLOCK_SECRET_NAME: answers.NAME_EXISTS}


def test_names_are_read_again_while_the_modal_stays_open(sqlite_url: str) -> None:
    """A name added in the dashboard while the modal is open is seen by the next refresh, so
    the submission is refused on it without an Auth0 call of its own."""
    with running_bot(sqlite_url) as bot:
        bot.services.prefetch.refresh_every = 0.3
        view = bot.open_form()
        picked = _pick(bot, view, bot.hook_id)
        bot.auth0.set_secrets(bot.hook_id, {"LATE_KEY": "set-in-the-dashboard"})
        changed = time.time()
        wait_until(
            lambda: any(
                r.received_at > changed and r.path.endswith("/secrets") for r in bot.auth0.requests
            ),
            10,
            what="the open modal's hook read again",
        )
        bot.drain()
        bot.auth0.latency = LATENCY
        errors = _field_errors(_submit_without_auth0(bot, view, hook=picked, name="LATE_KEY"))
        assert errors == {ids.BLOCK_SECRET_NAME: answers.NAME_EXISTS}


def test_a_cancelled_form_stops_its_target_being_read_again(sqlite_url: str) -> None:
    """The form asks Slack to say when it is closed (notify_on_close); Cancel sends view_closed,
    and the target it showed is no longer read every refresh for up to 15 minutes."""
    with running_bot(sqlite_url) as bot:
        bot.services.prefetch.refresh_every = 0.3
        view = bot.open_form()
        assert view["notify_on_close"] is True
        _pick(bot, view, bot.hook_id)
        ack = bot.driver.view_closed(REQUESTER, view)
        assert (ack.status, ack.body) == (200, b"")
        bot.drain()
        closed = time.time()
        # A refresh pass that finds every watched target due (none read less than 0 s ago)
        # starts no read: the closed form's target is watched no more.
        bot.services.prefetch.refresh_every = 0.0
        assert bot.services.prefetch.refresh_due() == 0
        bot.drain()
        assert not [r for r in bot.auth0.requests if r.received_at > closed]


def test_an_old_modal_with_nothing_read_ahead_is_checked_live(sqlite_url: str) -> None:
    """A form whose hook was never read ahead (opened before an upgrade, or a cache miss) is
    checked against Auth0 before the ack, within the deadline: here Auth0 answers in time.
    (Past the deadline the form is accepted and the apply checks: see test_flow_validation.)"""
    with running_bot(sqlite_url) as bot:
        view = bot.open_form()
        picked = bot.hook_option()  # chosen, but no pick reached the bot
        bot.auth0.latency = 0.3
        ack, calls = _auth0_calls_during(
            bot, lambda: bot.submit(view, hook=picked, name="EXISTING")
        )
        assert _field_errors(ack) == {ids.BLOCK_SECRET_NAME: answers.NAME_EXISTS}
        assert [(r.method, r.path) for r in calls] == [
            ("GET", f"/api/v2/hooks/{bot.hook_id}/secrets")
        ]
        assert 0.3 <= ack.elapsed < 3.0


def test_a_crafted_pick_is_acked_and_reads_nothing(sqlite_url: str) -> None:
    """Picks whose option is not a hook id (the "Auth0 unavailable" option, a path, a value
    of the wrong type) or that name no view are acked and make no Auth0 call."""
    with running_bot(sqlite_url) as bot:
        view, real = bot.open_form(), bot.hook_option()
        bot.drain()
        before = len(bot.auth0.requests)
        for option in (ids.OPTION_UNAVAILABLE, "../../clients", "", None, 7):
            ack = bot.driver.view_action(
                REQUESTER, view, ids.BLOCK_HOOK, {"selected_option": {"value": option}}
            )
            assert (ack.status, ack.body) == (200, b"")
        assert bot.driver.view_action(REQUESTER, view, ids.BLOCK_HOOK, real).status == 200
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": bot.slack.team_id},
            "user": {"id": REQUESTER, "team_id": bot.slack.team_id},
            "api_app_id": bot.slack.app_id,
            "actions": [{"action_id": ids.BLOCK_HOOK, "selected_option": "not-an-object"}],
            "view": {"type": "modal", "callback_id": ids.CALLBACK_ADD},  # no id
        }
        assert bot.driver.send("interactive", payload).status == 200
        bot.drain()
        reads = [r.path for r in bot.auth0.requests[before:] if r.path.startswith("/api/")]
        assert reads == [f"/api/v2/hooks/{bot.hook_id}/secrets"]  # the one real pick
        assert bot.audit() == []
