"""Applying against a failing Auth0 and an unreachable Slack channel, and approvals turned off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.approvals.states import State
from tests.harness.inprocess import (
    APPROVALS,
    APPROVER,
    ORIGIN,
    REQUESTER,
    Bot,
    delete_hook,
    request_id_of,
    running_bot,
    secret_posts,
)

VALUE = "CANARY-never-shown-42"
# Small waits so that failure classes show up in milliseconds rather than Auth0's real seconds.
QUICK = {"rate_limit_deadline": 0.05, "retry_backoff": 0.01, "read_retries": 2}


def _conflict(bot: Bot) -> None:
    bot.auth0.set_secrets(bot.hook_id, {"API_KEY": "set-by-another-admin"})


def _conflict_on_post(bot: Bot) -> None:
    bot.auth0.fail_next(1, 409, method="POST")


def _hook_full(bot: Bot) -> None:
    bot.auth0.set_secrets(bot.hook_id, {f"S{n}": "x" for n in range(19)})


def _hook_deleted(bot: Bot) -> None:
    delete_hook(bot.auth0, bot.hook_id)


def _scope_revoked(bot: Bot) -> None:
    bot.auth0.set_scopes("read:hooks")
    bot.auth0.revoke_tokens()


def _hooks_disabled(bot: Bot) -> None:
    bot.auth0.hooks_disabled = True


def _rate_limited(bot: Bot) -> None:
    bot.auth0.fail_next(5, 429)


def _server_errors(bot: Bot) -> None:
    bot.auth0.fail_next(10, 503)


def _too_slow(bot: Bot) -> None:
    bot.auth0.latency = 0.5


FAILURES: list[tuple[Callable[[Bot], None], str, dict[str, Any], int]] = [
    # (what goes wrong after the request was submitted, audit outcome, client options, POSTs)
    (_conflict, "conflict", {}, 0),
    (_conflict_on_post, "conflict", {}, 1),
    (_hook_full, "hook_full", {}, 0),
    (_hook_deleted, "hook_not_found", {}, 0),
    (_scope_revoked, "insufficient_scope", {}, 1),
    (_hooks_disabled, "hooks_unavailable", {}, 0),
    (_rate_limited, "rate_limited", QUICK, 0),
]
# Faults that leave Auth0's state unknown: the request stays open until read back settles it.
UNKNOWN: list[tuple[Callable[[Bot], None], dict[str, Any]]] = [
    (_server_errors, QUICK),
    (_too_slow, {**QUICK, "timeout": 0.2}),
]


@pytest.mark.parametrize(
    ("fault", "reason", "options", "posts"),
    FAILURES,
    ids=[f[0].__name__.strip("_") for f in FAILURES],
)
def test_auth0_failure_is_reported_audited_and_never_left_approved(
    sqlite_url: str,
    fault: Callable[[Bot], None],
    reason: str,
    options: dict[str, Any],
    posts: int,
) -> None:
    """Each Auth0 failure class while applying ends the request `failed` with its reason, value
    erased; requester, approver and approval message are told; `request.failed` is audited."""
    with running_bot(sqlite_url, auth0_options=options) as bot:
        message = bot.request_approval(value=VALUE)
        request_id = request_id_of(message)
        fault(bot)
        ack = bot.decide(message)
        assert ack.status == 200 and not ack.body
        bot.drain()
        bot.auth0.latency = 0.0
        row = bot.store.get(request_id)
        assert row is not None and row.state == State.FAILED
        assert row.failure_reason == reason and row.value_ciphertext is None
        failed = bot.audit()[-1]
        assert failed["event"] == "request.failed" and failed["outcome"] == reason
        assert failed["request_id"] == request_id and failed["actor"] == APPROVER
        told = bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "failed" in m["text"])
        assert request_id in told["text"] and "API_KEY" in told["text"]
        assert failed["message"] in told["text"]
        assert any("failed" in m["text"] for m in bot.slack.messages(APPROVER))
        (updated,) = bot.slack.messages(APPROVALS)
        assert not any(b.get("type") == "actions" for b in updated["blocks"])
        assert "failed" in str(updated["blocks"])
        assert not bot.slack.messages(ORIGIN)
        assert len(secret_posts(bot.auth0)) == posts
        if not bot.auth0.hooks_disabled and reason != "hook_not_found":
            assert bot.auth0.secrets(bot.hook_id).get("API_KEY") != VALUE
        shown = str(bot.slack.calls) + str(bot.slack.ephemerals())
        assert VALUE not in shown and VALUE not in bot.audit_stream.getvalue()


def _assert_checking(bot: Bot, request_id: str) -> None:
    """Open, value kept, people told it is being checked, nothing failed or promised."""
    row = bot.store.get(request_id)
    assert row is not None and row.state == State.APPROVED and row.unknown_since is not None
    assert row.value_ciphertext is not None
    told = bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "reading Auth0 back" in m["text"])
    assert request_id in told["text"] and "Nothing was changed" not in told["text"]
    (updated,) = bot.slack.messages(APPROVALS)
    assert not any(b.get("type") == "actions" for b in updated["blocks"])
    assert "request.failed" not in bot.events()


def _settle(bot: Bot, request_id: str) -> None:
    """Sweep (as the sweeper does every few seconds) until the request is no longer open."""
    for _ in range(8):
        bot.clock.advance(20)
        bot.services.sweep()
        bot.drain()
        row = bot.store.get(request_id)
        if row is not None and row.state != State.APPROVED:
            return


@pytest.mark.parametrize(
    ("fault", "options"), UNKNOWN, ids=[f[0].__name__.strip("_") for f in UNKNOWN]
)
def test_unknown_outcome_is_checked_then_settled_by_read_back(
    sqlite_url: str, fault: Callable[[Bot], None], options: dict[str, Any]
) -> None:
    """Timeouts and 5xx while applying leave the request open and people told it is being
    checked; once Auth0 answers, the sweep reads back and applies it once: `secret.added`,
    never `request.failed`."""
    with running_bot(sqlite_url, auth0_options=options) as bot:
        message = bot.request_approval(value=VALUE)
        request_id = request_id_of(message)
        fault(bot)
        bot.decide(message)
        bot.drain()
        _assert_checking(bot, request_id)
        bot.auth0.latency = 0.0
        _settle(bot, request_id)
        row = bot.store.get(request_id)
        assert row is not None and row.state == State.APPLIED and row.value_ciphertext is None
        assert bot.auth0.secrets(bot.hook_id)["API_KEY"] == VALUE
        assert bot.events()[-1] == "secret.added" and "request.failed" not in bot.events()
        assert len([m for m in bot.slack.messages(ORIGIN) if "API_KEY" in m["text"]]) == 1


def test_a_write_that_landed_but_whose_answer_was_lost_twice_ends_added(sqlite_url: str) -> None:
    """When the POST's answer is lost (twice) and Auth0 can't be read back, the request is not
    failed: it is checked, and once Auth0 answers the read-back finds the secret and records
    `secret.added` with exactly one POST."""
    sandbox: list[Any] = []

    def observe(operation: str, status: int | str, elapsed: float) -> None:
        if operation == "post_secrets" and status == "error":
            sandbox[0].fail_next(10, 503)  # Auth0 goes down right after taking the write

    with running_bot(sqlite_url, auth0_options={**QUICK, "observer": observe}) as bot:
        sandbox.append(bot.auth0)
        message = bot.request_approval(value=VALUE)
        request_id = request_id_of(message)
        bot.auth0.drop_connection_after_write(2)
        bot.decide(message)
        bot.drain()
        _assert_checking(bot, request_id)
        assert bot.auth0.secrets(bot.hook_id)["API_KEY"] == VALUE  # it did land
        _settle(bot, request_id)
        row = bot.store.get(request_id)
        assert row is not None and row.state == State.APPLIED
        assert len(secret_posts(bot.auth0)) == 1
        assert bot.events()[-1] == "secret.added" and "request.failed" not in bot.events()
        bot.slack.wait_for_message(ORIGIN, lambda m: "API_KEY" in m["text"])


def test_bot_not_in_the_origin_channel_confirms_by_dm_and_says_so(sqlite_url: str) -> None:
    """When the bot can't post in the channel the command came from, the requester gets the
    waiting notice and the confirmation by DM, saying the channel could not be used."""
    with running_bot(sqlite_url) as bot:
        bot.slack.add_channel("C0PRIVATE", "side-project", bot_is_member=False)
        mark = bot.slack.mark()
        bot.driver.slash_command(REQUESTER, "add", channel_id="C0PRIVATE")
        bot.slack.wait_for("views.open", after=mark)
        assert not bot.submit(bot.slack.view_for_user(REQUESTER)).body
        message = bot.slack.wait_for_message(
            APPROVALS, lambda m: any(b.get("type") == "actions" for b in m["blocks"])
        )
        bot.slack.wait_for_message(REQUESTER, lambda m: "waiting" in m["text"])
        bot.decide(message)
        bot.drain()
        dm = bot.slack.wait_for_message(REQUESTER, lambda m: "could not post" in m["text"])
        assert "<#C0PRIVATE>" in dm["text"] and "`API_KEY` added" in dm["text"]
        assert f"<@{APPROVER}>" in dm["text"]
        assert bot.slack.messages("C0PRIVATE") == []
        refused = [c for c in bot.slack.calls_to("chat.postMessage") if not c.ok]
        assert [(c.args["channel"], c.error) for c in refused] == [("C0PRIVATE", "not_in_channel")]
        row = bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.APPLIED


def test_without_approvals_the_requesters_submission_applies_directly(sqlite_url: str) -> None:
    """With HOOK_SECRET_REQUIRED_APPROVALS=0 the submission itself applies the secret (reason
    optional), no approval message is posted, and the confirmation says self-confirmed."""
    with running_bot(sqlite_url, hook_secret_required_approvals=0) as bot:
        view = bot.open_form()
        reason = next(b for b in view["blocks"] if b.get("block_id") == "reason")
        assert reason["optional"] is True
        ack = bot.submit(view, value=VALUE, reason=None)
        assert ack.status == 200 and not ack.body
        bot.drain()
        assert bot.auth0.secrets(bot.hook_id)["API_KEY"] == VALUE
        assert len(secret_posts(bot.auth0)) == 1
        assert bot.slack.messages(APPROVALS) == []
        confirmation = bot.slack.wait_for_message(ORIGIN, lambda m: "API_KEY" in m["text"])
        assert (
            "self-confirmed" in confirmation["text"] and f"<@{REQUESTER}>" in confirmation["text"]
        )
        assert bot.events() == ["request.submitted", "request.approved", "secret.added"]
        approved = bot.audit()[1]
        assert approved["actor"] == REQUESTER and approved["self_confirmed"] is True
        assert VALUE not in str(bot.slack.calls) and VALUE not in bot.audit_stream.getvalue()


def test_without_approvals_a_failure_is_reported_to_the_requester(sqlite_url: str) -> None:
    """With approvals off, an apply that Auth0 refuses is reported to the requester and audited."""
    with running_bot(sqlite_url, hook_secret_required_approvals=0) as bot:
        view = bot.open_form()
        bot.auth0.fail_next(1, 409, method="POST")
        assert not bot.submit(view, value=VALUE).body
        bot.drain()
        told = bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "failed" in m["text"])
        assert "API_KEY" in told["text"]
        assert bot.events()[-1] == "request.failed"
        assert bot.audit()[-1]["outcome"] == "conflict"


def test_approval_channel_unreachable_is_posted_once_the_bot_is_invited(sqlite_url: str) -> None:
    """When the bot can't post in the approval channel the requester is told to invite it; once
    invited, the periodic sweep posts the waiting request so that it can still be approved."""
    with running_bot(sqlite_url) as bot:
        bot.slack.add_channel(APPROVALS, "secret-approvals", bot_is_member=False)
        assert not bot.submit(bot.open_form(), value=VALUE).body
        bot.drain()
        told = bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "waiting" in m["text"])
        assert "invite" in told["text"]
        bot.services.sweep()
        assert bot.slack.messages(APPROVALS) == []
        bot.slack.add_channel(APPROVALS, "secret-approvals", bot_is_member=True)
        bot.clock.advance(60)
        bot.services.sweep()
        bot.services.sweep()
        bot.drain()  # the outbox worker's own poll may have taken the repost from the sweeps
        (message,) = bot.slack.messages(APPROVALS)
        assert any(b.get("type") == "actions" for b in message["blocks"])
        assert not bot.decide(message).body
        bot.drain()
        assert bot.auth0.secrets(bot.hook_id)["API_KEY"] == VALUE
        assert len(secret_posts(bot.auth0)) == 1
        (updated,) = bot.slack.messages(APPROVALS)
        assert not any(b.get("type") == "actions" for b in updated["blocks"])
