"""SIGKILL the real process mid-flow, start it again: every outcome settled, nothing told twice."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.slack import ids
from standins.auth0 import Auth0Sandbox
from standins.slack import SlackDriver, SlackStandIn
from tests.harness.process import (
    APPROVALS,
    APPROVER,
    BOT_TOKEN,
    FAST_RECOVERY,
    SIGNING_SECRET,
    BotProcess,
    add_people,
    bot_env,
    confirmations,
    free_port,
    open_approval,
    running,
    secret_posts,
    submit_form,
    submit_request,
)
from tests.waiting import seconds_until, wait_until

VALUE = "s3cr3t-value-0123"
# A crashed apply is taken over within 60 s (20 s lease, sweep every 10 s); the figure to meet.
# These tests run the bot with FAST_RECOVERY's shorter leases, so they meet it in seconds.
RECOVERY = 60.0


def _kill(bot: BotProcess) -> None:
    """SIGKILL the serving worker and the gunicorn master at once (a worker outliving its
    master would shut down gracefully, which is not the crash under test)."""
    for pid in [*_descendants(bot.proc.pid), bot.proc.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    bot.proc.wait()


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux's /proc children lists)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [*_descendants(int(child)), int(child)]
    return found


def _mid_apply(auth0: Auth0Sandbox, hook_id: str) -> Callable[[], bool]:
    """Auth0 takes 3 s per call: the bot dies 1 s into the apply, its call in flight."""
    auth0.latency = 3.0
    killed_at = time.monotonic() + 1.0
    return lambda: time.monotonic() >= killed_at


def _after_the_write(auth0: Auth0Sandbox, hook_id: str) -> Callable[[], bool]:
    """The POST lands but its answer is lost; the bot dies while reading Auth0 back."""
    auth0.drop_connection_after_write(1)
    auth0.latency = 1.0
    return lambda: bool(auth0.secrets(hook_id))


Fault = Callable[[Auth0Sandbox, str], Callable[[], bool]]


def _approve_then_kill(
    slack: SlackStandIn, auth0: Auth0Sandbox, bot: BotProcess, hook_id: str, fault: Fault
) -> str:
    """Submit and approve a request, inject ``fault``, SIGKILL the bot when it says; the name."""
    name = f"KEY_{hook_id[-6:].upper()}"
    with SlackDriver(slack, bot.events_url, SIGNING_SECRET) as driver:
        message = submit_request(slack, driver, hook_id, name=name, value=VALUE)
        view = open_approval(slack, driver, message)
        now = fault(auth0, hook_id)
        ack = driver.view_submission(APPROVER, view, {ids.BLOCK_COMMENT: None})
        assert (ack.status, ack.body) == (200, b"")
        wait_until(now, 10, what="the moment to kill the bot")
        _kill(bot)
    assert not confirmations(slack, name)  # it died before telling anyone
    return name


def _audit_verify(env: dict[str, str], workdir: Path) -> int:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "verify"],
        env=env,
        cwd=workdir,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return result.returncode


@pytest.mark.parametrize("fault", [_mid_apply, _after_the_write], ids=["mid_apply", "after_write"])
def test_sigkill_during_an_apply_is_settled_after_restart(tmp_path: Path, fault: Fault) -> None:
    """Killed while its POST is in flight, or after Auth0 stored a write whose answer was lost:
    the restarted process reads Auth0 back within 60 s and records `secret.added` once, with
    exactly one write, one approval message (its buttons gone), one confirmation, and an audit
    trail that verifies."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        hook_id = auth0.add_hook("Client Credentials Exchange")
        env = bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}", **FAST_RECOVERY)
        with running(env, tmp_path / "first") as first:
            name = _approve_then_kill(slack, auth0, first, hook_id, fault)
        auth0.latency = 0.0
        env = {**env, "PORT": str(free_port())}
        with running(env, tmp_path / "second") as second:
            took = seconds_until(
                lambda: confirmations(slack, name), RECOVERY + 15, what="confirmed"
            )
            assert took <= RECOVERY
            second.wait_quiet(env["DATABASE_URL"])  # anything sent twice would have been by now
            assert auth0.secrets(hook_id) == {name: VALUE}
            assert len(secret_posts(auth0)) == 1  # the dead process's: what landed is not re-sent
            assert len(confirmations(slack, name)) == 1
            (posted,) = slack.messages(APPROVALS)
            assert not any(b.get("type") == "actions" for b in posted["blocks"])
            events = [r["event"] for r in first.audit() + second.audit()]
            assert events.count("secret.added") == 1 and "request.failed" not in events
        assert _audit_verify(env, tmp_path) == 0


def test_sigkill_right_after_submit_posts_one_approval_message_after_restart(
    tmp_path: Path,
) -> None:
    """Killed right after acknowledging a submission: the queued approval request is posted once
    (by the next process, within the outbox lease), and the request then runs to the end."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        hook_id = auth0.add_hook("Client Credentials Exchange")
        env = bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}", **FAST_RECOVERY)
        with running(env, tmp_path / "first") as first:
            slack.fail_for("chat.postMessage", 60.0)  # the first process can't post before dying
            with SlackDriver(slack, first.events_url, SIGNING_SECRET) as driver:
                submit_form(slack, driver, hook_id, name="AFTER_SUBMIT", value=VALUE)
            _kill(first)
            slack.fail_for("chat.postMessage", 0.0)  # Slack is back for the next process
        env = {**env, "PORT": str(free_port())}
        with (
            running(env, tmp_path / "second") as second,
            SlackDriver(slack, second.events_url, SIGNING_SECRET) as driver,
        ):
            posted = slack.wait_for_message(
                APPROVALS, lambda m: "AFTER_SUBMIT" in m.get("text", ""), timeout=45
            )
            view = open_approval(slack, driver, posted)
            ack = driver.view_submission(APPROVER, view, {ids.BLOCK_COMMENT: None})
            assert (ack.status, ack.body) == (200, b"")
            wait_until(lambda: bool(confirmations(slack, "AFTER_SUBMIT")), 15)
            second.wait_quiet(env["DATABASE_URL"])
            (approval,) = slack.messages(APPROVALS)
            assert not any(b.get("type") == "actions" for b in approval["blocks"])
            assert len(confirmations(slack, "AFTER_SUBMIT")) == 1
            events = [r["event"] for r in first.audit() + second.audit()]
            assert events == [
                "request.submitted",
                "approval.added",
                "request.approved",
                "secret.added",
            ]
        assert _audit_verify(env, tmp_path) == 0


def test_sigkill_mid_approval_post_leaves_a_stale_copy_that_answers_and_is_updated(
    tmp_path: Path,
) -> None:
    """Killed while Slack was taking the approval post: Slack kept that copy, the bot never
    learned its ts, so the next process posts the request again. The new copy is decided and
    updated; a click on the stale copy answers with the request's state and replaces its
    buttons too. One Auth0 write, one confirmation, and the audit trail verifies."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        hook_id = auth0.add_hook("Client Credentials Exchange")
        env = bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}", **FAST_RECOVERY)
        stale, first = _kill_mid_approval_post(slack, env, tmp_path, hook_id, "MID_POST")
        env = {**env, "PORT": str(free_port())}
        with (
            running(env, tmp_path / "second") as second,
            SlackDriver(slack, second.events_url, SIGNING_SECRET) as driver,
        ):
            wait_until(lambda: len(slack.messages(APPROVALS)) == 2, 45)
            live = next(m for m in slack.messages(APPROVALS) if m["ts"] != stale["ts"])
            view = open_approval(slack, driver, live)
            ack = driver.view_submission(APPROVER, view, {ids.BLOCK_COMMENT: None})
            assert (ack.status, ack.body) == (200, b"")
            wait_until(lambda: bool(confirmations(slack, "MID_POST")), 15)
            click = driver.block_action(
                APPROVER, ids.ACTION_APPROVE, message=stale, channel_id=APPROVALS
            )
            assert click.status == 200
            said = slack.wait_for_response(APPROVER, lambda r: "already" in str(r.payload))
            assert "already approved" in said.payload["text"]
            wait_until(lambda: not any(_has_buttons(m) for m in slack.messages(APPROVALS)), 10)
            second.wait_quiet(env["DATABASE_URL"])
            assert len(slack.messages(APPROVALS)) == 2 and len(secret_posts(auth0)) == 1
            assert len(confirmations(slack, "MID_POST")) == 1
            events = [r["event"] for r in first.audit() + second.audit()]
            assert events == [
                "request.submitted",
                "approval.added",
                "request.approved",
                "secret.added",
            ]
        assert _audit_verify(env, tmp_path) == 0


def _kill_mid_approval_post(
    slack: SlackStandIn, env: dict[str, str], workdir: Path, hook_id: str, name: str
) -> tuple[dict[str, Any], BotProcess]:
    """Submit a request and SIGKILL the bot while Slack (3 s per post) is taking its approval
    post; the copy Slack kept anyway, and the dead process."""
    with running(env, workdir / "first") as first:
        slack.slow("chat.postMessage", 3.0)
        with SlackDriver(slack, first.events_url, SIGNING_SECRET) as driver:
            submit_form(slack, driver, hook_id, name=name, value=VALUE)
        slack.wait_for_arrival("chat.postMessage", timeout=15)  # the post is in Slack's hands
        _kill(first)
    kept = slack.wait_for_message(APPROVALS, timeout=10)  # Slack finished it anyway
    slack.slow("chat.postMessage", 0.0)
    return kept, first


def _has_buttons(message: dict[str, Any]) -> bool:
    return any(b.get("type") == "actions" for b in message.get("blocks", []))


# The scopes that let the bot read back a post whose fate a crash made unknown (README).
HISTORY_SCOPES = ("channels:history", "groups:history")


def test_sigkill_mid_confirmation_post_confirms_once_when_history_is_readable(
    tmp_path: Path,
) -> None:
    """Killed while Slack was taking the redacted confirmation: Slack kept it, the bot never
    recorded it. With the history scopes granted the next process finds that copy by its
    metadata once the dead worker's lease lapses, and does not post a second one."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        slack.grant(*HISTORY_SCOPES)
        hook_id = auth0.add_hook("Client Credentials Exchange")
        env = bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}", **FAST_RECOVERY)
        with (
            running(env, tmp_path / "first") as first,
            SlackDriver(slack, first.events_url, SIGNING_SECRET) as driver,
        ):
            message = submit_request(slack, driver, hook_id, name="MID_CONFIRM", value=VALUE)
            view = open_approval(slack, driver, message)
            posts = slack.arrived("chat.postMessage")  # the approval post so far
            slack.slow("chat.postMessage", 3.0)
            ack = driver.view_submission(APPROVER, view, {ids.BLOCK_COMMENT: None})
            assert (ack.status, ack.body) == (200, b"")
            # Its post is in Slack's hands (Slack takes 3 s to answer).
            slack.wait_for_arrival("chat.postMessage", count=posts + 1, timeout=15)
            _kill(first)
        wait_until(lambda: bool(confirmations(slack, "MID_CONFIRM")), 10)  # Slack finished it
        slack.slow("chat.postMessage", 0.0)
        env = {**env, "PORT": str(free_port())}
        with running(env, tmp_path / "second") as second:
            looked = seconds_until(
                lambda: any(c.ok for c in slack.calls_to("conversations.history")), 60
            )
            assert looked <= RECOVERY  # the outbox lease (30 s, 5 s here), then the next poll
            second.wait_quiet(env["DATABASE_URL"])  # a second copy would have been posted by now
            assert len(confirmations(slack, "MID_CONFIRM")) == 1
            assert len(secret_posts(auth0)) == 1
            (approval,) = slack.messages(APPROVALS)
            assert not _has_buttons(approval)
            events = [r["event"] for r in first.audit() + second.audit()]
            assert events == [
                "request.submitted",
                "approval.added",
                "request.approved",
                "secret.added",
            ]
        assert _audit_verify(env, tmp_path) == 0


def test_sigkill_mid_approval_post_leaves_one_message_when_history_is_readable(
    tmp_path: Path,
) -> None:
    """Killed while Slack was taking the approval post, with the history scopes granted: the
    next process finds that copy and stores its ts instead of posting another. The one message
    is decided, its buttons replaced; one Auth0 write, one confirmation."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        slack.grant(*HISTORY_SCOPES)
        hook_id = auth0.add_hook("Client Credentials Exchange")
        env = bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}", **FAST_RECOVERY)
        only, first = _kill_mid_approval_post(slack, env, tmp_path, hook_id, "MID_POST_READ")
        env = {**env, "PORT": str(free_port())}
        with (
            running(env, tmp_path / "second") as second,
            SlackDriver(slack, second.events_url, SIGNING_SECRET) as driver,
        ):
            wait_until(lambda: any(c.ok for c in slack.calls_to("conversations.history")), 60)
            view = open_approval(slack, driver, only)
            ack = driver.view_submission(APPROVER, view, {ids.BLOCK_COMMENT: None})
            assert (ack.status, ack.body) == (200, b"")
            wait_until(lambda: bool(confirmations(slack, "MID_POST_READ")), 15)
            wait_until(lambda: not _has_buttons(slack.messages(APPROVALS)[0]), 10)
            second.wait_quiet(env["DATABASE_URL"])
            assert [m["ts"] for m in slack.messages(APPROVALS)] == [only["ts"]]
            assert len(confirmations(slack, "MID_POST_READ")) == 1
            assert len(secret_posts(auth0)) == 1
            events = [r["event"] for r in first.audit() + second.audit()]
            assert events == [
                "request.submitted",
                "approval.added",
                "request.approved",
                "secret.added",
            ]
        assert _audit_verify(env, tmp_path) == 0
