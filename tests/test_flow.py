"""The Slack flow end to end: signed requests in, Slack and Auth0 calls out, rows and audit."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.approvals.states import State
from bot.slack import ids
from tests.harness.inprocess import (
    APPROVALS,
    APPROVER,
    GROUPIE,
    ORIGIN,
    OUTSIDER,
    REQUESTER,
    all_requests,
    request_id_of,
    running_bot,
    secret_posts,
)

HOOK_NAME = "Client Credentials Exchange"


def test_add_with_approval_applies_once_and_confirms_without_the_value(db_url: str) -> None:
    """Request → approval message → approve → one POST to Auth0 → redacted confirmation."""
    with running_bot(db_url) as bot:
        message = bot.request_approval(value="v@lue-CANARY-1")
        ack = bot.decide(message, comment="ok")
        assert ack.status == 200
        bot.drain()
        assert bot.auth0.secrets(bot.hook_id)["API_KEY"] == "v@lue-CANARY-1"
        assert len(secret_posts(bot.auth0)) == 1
        confirmation = bot.slack.wait_for_message(ORIGIN, lambda m: "API_KEY" in m.get("text", ""))
        assert REQUESTER in confirmation["text"] and APPROVER in confirmation["text"]
        assert HOOK_NAME in confirmation["text"]
        assert "CANARY" not in str(bot.slack.calls)
        assert "CANARY" not in str(bot.slack.ephemerals())
        assert "CANARY" not in bot.audit_stream.getvalue()
        assert bot.events() == [
            "request.submitted",
            "approval.added",
            "request.approved",
            "secret.added",
        ]
        request_id = request_id_of(message)
        for record in bot.audit():
            assert record["audit"] is True and record["timestamp"].endswith("Z")
            assert record["request_id"] == request_id and record["team_id"] == bot.slack.team_id
            assert record["hook_id"] == bot.hook_id and record["secret_name"] == "API_KEY"
        assert [(r["actor"], r["outcome"]) for r in bot.audit()] == [
            (REQUESTER, "pending"),
            (APPROVER, "approved"),
            (APPROVER, "approved"),
            (APPROVER, "applied"),
        ]
        updated = bot.slack.messages(APPROVALS)[0]
        assert not any(b.get("type") == "actions" for b in updated["blocks"])
        assert "approved by" in str(updated["blocks"])
        row = bot.store.get(request_id)
        assert row is not None and row.state == State.APPLIED and row.value_ciphertext is None


def test_approval_message_shows_fingerprint_not_value_and_tells_requester(sqlite_url: str) -> None:
    """The approval request names hook, secret, requester, reason and a fingerprint, not the value;
    the requester is told where it waits."""
    with running_bot(sqlite_url) as bot:
        message = bot.request_approval(value="CANARY-value-xyz", reason="vendor rotated key")
        shown = str(message["blocks"])
        assert HOOK_NAME in shown and bot.hook_id in shown and "API_KEY" in shown
        assert f"<@{REQUESTER}>" in shown and "vendor rotated key" in shown
        assert "fingerprint" in shown.lower()
        assert "CANARY" not in shown and "CANARY" not in message["text"]
        # The approver group is mentioned so that its members are notified.
        assert "<!subteam^S0APPS>" in message["text"]
        told = bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "waiting" in m.get("text", ""))
        assert f"<#{APPROVALS}>" in told["text"]
        row = bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.PENDING and row.value_ciphertext
        assert b"CANARY" not in row.value_ciphertext


def test_value_is_applied_byte_exact(sqlite_url: str) -> None:
    """Leading and trailing spaces, tabs and non-ASCII in the value reach Auth0 unchanged."""
    value = "  \tpässwörd with spaces \u2603  "
    with running_bot(sqlite_url) as bot:
        message = bot.request_approval(value=value)
        bot.decide(message)
        bot.drain()
        assert bot.auth0.secrets(bot.hook_id)["API_KEY"] == value


def test_requester_in_a_user_group_gets_the_request_modal(sqlite_url: str) -> None:
    """A member of a requester user group (not listed by id) gets the modal with contract ids."""
    with running_bot(sqlite_url) as bot:
        view = bot.open_form(user=GROUPIE)
        assert view["callback_id"] == ids.CALLBACK_ADD
        inputs = {
            b["block_id"]: b["element"]["action_id"] for b in view["blocks"] if b["type"] == "input"
        }
        assert inputs == {
            ids.BLOCK_HOOK: ids.BLOCK_HOOK,
            ids.BLOCK_SECRET_NAME: ids.BLOCK_SECRET_NAME,
            ids.BLOCK_SECRET_VALUE: ids.BLOCK_SECRET_VALUE,
            ids.BLOCK_REASON: ids.BLOCK_REASON,
        }
        hook_element = next(b for b in view["blocks"] if b["block_id"] == ids.BLOCK_HOOK)
        assert hook_element["element"]["type"] == "external_select"
        lookups = bot.slack.calls_to("usergroups.users.list")
        assert [c.args["usergroup"] for c in lookups] == ["S0REQS"]
        ack = bot.submit(view, user=GROUPIE)
        assert ack.status == 200 and not ack.body
        bot.drain()
        (row,) = all_requests(bot.store)
        assert row.requester == GROUPIE and row.state == State.PENDING


def test_unauthorized_requester_is_refused_and_told_who_can_grant_access(sqlite_url: str) -> None:
    """Someone in neither the list nor a group gets an ephemeral refusal naming who grants
    access, no modal, and a request.denied audit line."""
    with running_bot(sqlite_url) as bot:
        ack = bot.driver.slash_command(OUTSIDER, "add", channel_id=ORIGIN)
        assert ack.status == 200
        refusal = bot.slack.wait_for_ephemeral(OUTSIDER)
        assert "not allowed" in refusal["text"]
        assert "<!subteam^S0REQS>" in refusal["text"] and f"<@{REQUESTER}>" in refusal["text"]
        assert "HOOK_SECRET_REQUESTERS" in refusal["text"]
        bot.drain()
        assert not bot.slack.calls_to("views.open")
        (denied,) = bot.audit()
        assert denied["event"] == "request.denied"
        assert denied["actor"] == OUTSIDER and denied["outcome"] == "not_a_requester"
        assert denied["team_id"] == bot.slack.team_id


def test_unauthorized_modal_submission_is_refused_and_stores_nothing(sqlite_url: str) -> None:
    """A request modal submitted by someone who may not request (a forged or stale modal) is
    answered with a field error, audited request.denied, and stores nothing."""
    with running_bot(sqlite_url) as bot:
        view = bot.open_form()
        ack = bot.submit(view, user=OUTSIDER)
        assert ack.json()["response_action"] == "errors" and not ack.problems
        assert all_requests(bot.store) == []
        assert bot.events() == ["request.denied"]
        assert not secret_posts(bot.auth0)


@pytest.mark.parametrize("text", ["help", "", "   ", "frobnicate", "HELP me"])
def test_help_empty_or_unknown_subcommand_answers_usage(sqlite_url: str, text: str) -> None:
    """`help`, an empty text or an unknown subcommand gets the ephemeral usage text only."""
    with running_bot(sqlite_url) as bot:
        ack = bot.driver.slash_command(REQUESTER, text, channel_id=ORIGIN)
        assert ack.status == 200
        assert "Usage" in ack.payload()["text"]
        assert ack.payload().get("response_type") != "in_channel"
        bot.drain()
        assert not bot.slack.calls_to("views.open")
        assert bot.events() == []


@pytest.mark.parametrize(
    "text",
    [
        f'add "{HOOK_NAME}" API_KEY=CANARY-typed-value',
        "add API_KEY=CANARY-typed-value",
        f'add "{HOOK_NAME}" API_KEY CANARY-typed-value',
        "update hook NAME CANARY-typed-value",
        "add hook NAME:CANARY-typed-value",
        "API_KEY=CANARY-typed-value",
    ],
)
def test_value_typed_in_the_command_is_refused_without_echo(sqlite_url: str, text: str) -> None:
    """Text that may carry a value is refused with a warning about Slack's history, never
    echoed anywhere, audited request.refused, and opens no modal."""
    with running_bot(sqlite_url) as bot:
        ack = bot.driver.slash_command(REQUESTER, text, channel_id=ORIGIN)
        assert ack.status == 200
        warning = ack.payload()["text"]
        assert "history" in warning and "rotate" in warning
        bot.drain()
        assert "CANARY" not in warning
        assert "CANARY" not in str(bot.slack.calls) + str(bot.slack.ephemerals())
        assert "CANARY" not in bot.audit_stream.getvalue()
        assert not bot.slack.calls_to("views.open")
        (refused,) = bot.audit()
        assert refused["event"] == "request.refused" and refused["outcome"] == "value_in_command"
        assert refused["actor"] == REQUESTER


@pytest.mark.parametrize("hook_arg", [f'"{HOOK_NAME}"', "'client credentials exchange'", "ID"])
def test_hook_and_name_arguments_prefill_the_modal(sqlite_url: str, hook_arg: str) -> None:
    """`add HOOK NAME` (a quoted name with spaces, any case, or the hook id) opens the modal with
    the name filled in, then selects the hook once the hook list has loaded."""
    with running_bot(sqlite_url) as bot:
        hook_arg = bot.hook_id if hook_arg == "ID" else hook_arg
        mark = bot.slack.mark()
        bot.driver.slash_command(REQUESTER, f"add {hook_arg} API_KEY", channel_id=ORIGIN)
        opened = bot.slack.wait_for("views.open", after=mark)
        name_input = _element(opened.args["view"], ids.BLOCK_SECRET_NAME)
        assert name_input["initial_value"] == "API_KEY"
        bot.slack.wait_for("views.update", after=mark)
        view = bot.slack.view_for_user(REQUESTER)
        selected = _element(view, ids.BLOCK_HOOK)["initial_option"]
        assert selected["value"] == bot.hook_id
        assert HOOK_NAME in selected["text"]["text"]
        assert _element(view, ids.BLOCK_SECRET_NAME)["initial_value"] == "API_KEY"
        ack = bot.submit(view, hook={"selected_option": selected})
        assert ack.status == 200 and not ack.body
        bot.drain()
        (row,) = all_requests(bot.store)
        assert row.target_id == bot.hook_id and row.target_name == HOOK_NAME


def test_unknown_prefilled_hook_leaves_the_picker_empty_with_a_notice(sqlite_url: str) -> None:
    """A hook argument that names no hook opens the modal anyway, with a notice and no hook."""
    with running_bot(sqlite_url) as bot:
        mark = bot.slack.mark()
        bot.driver.slash_command(REQUESTER, 'add "No Such Hook" API_KEY', channel_id=ORIGIN)
        bot.slack.wait_for("views.update", after=mark)
        view = bot.slack.view_for_user(REQUESTER)
        assert "initial_option" not in _element(view, ids.BLOCK_HOOK)
        notice = view["blocks"][0]
        assert notice["type"] == "context" and "No Such Hook" in str(notice)


def test_hook_options_load_lists_every_hook_with_its_trigger(sqlite_url: str) -> None:
    """The external select's options load answers the tenant's hooks (name and trigger, value
    the hook id), disabled ones included, filtered by what the user typed."""
    with running_bot(sqlite_url) as bot:
        other = bot.auth0.add_hook("Pre Registration", "pre-user-registration", enabled=False)
        view = bot.open_form()
        ack = bot.driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
        assert ack.status == 200 and not ack.problems
        options = {o["value"]: o["text"]["text"] for o in ack.json()["options"]}
        assert options == {
            bot.hook_id: f"{HOOK_NAME} (credentials-exchange)",
            other: "Pre Registration (pre-user-registration) [disabled]",
        }
        ack = bot.driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "pre", view)
        assert [o["value"] for o in ack.json()["options"]] == [other]


def test_hook_list_spanning_several_pages_is_loaded_whole(sqlite_url: str) -> None:
    """Options come from every page of Auth0's hook list, capped at Slack's 100 options."""
    with running_bot(sqlite_url) as bot:
        for n in range(104):
            bot.auth0.add_hook(f"Hook {n:03d}")
        view = bot.open_form()
        ack = bot.driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
        assert ack.status == 200 and not ack.problems
        assert len(ack.json()["options"]) == 100
        ack = bot.driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "ok 103", view)
        assert [o["text"]["text"] for o in ack.json()["options"]] == [
            "Hook 103 (credentials-exchange)"
        ]


def test_request_from_another_workspace_is_refused(sqlite_url: str) -> None:
    """A command carrying another team id changes nothing and opens no modal."""
    with running_bot(sqlite_url) as bot:
        ack = bot.driver.slash_command(REQUESTER, "add", channel_id=ORIGIN, team_id="T0OTHER")
        assert ack.status == 200
        bot.drain()
        assert not bot.slack.calls_to("views.open")
        assert [(r["event"], r["outcome"]) for r in bot.audit()] == [
            ("request.denied", "foreign_team")
        ]


def test_views_open_reaches_slack_before_any_auth0_answer(sqlite_url: str) -> None:
    """With Auth0 answering after 2 s, `add "<hook name>"` opens the modal before any Auth0
    answer arrives (ordering of recorded times, not a stopwatch), then selects the hook."""
    answered: list[float] = []

    def observe(operation: str, status: int | str, elapsed: float) -> None:
        answered.append(time.time())  # called as each Auth0 answer reaches the bot

    with running_bot(sqlite_url, auth0_options={"observer": observe}) as bot:
        bot.auth0.latency = 2.0
        mark = bot.slack.mark()
        sent = time.time()
        ack = bot.driver.slash_command(REQUESTER, f'add "{HOOK_NAME}"', channel_id=ORIGIN)
        assert ack.status == 200 and ack.elapsed < 3.0
        opened = bot.slack.wait_for("views.open", after=mark)
        update = bot.slack.wait_for("views.update", after=mark, timeout=15)
        auth0_requests = bot.auth0.requests
        assert opened.ok and auth0_requests and answered
        # The sandbox answers `latency` seconds after it received a request, at the earliest.
        assert opened.time < min(r.received_at for r in auth0_requests) + bot.auth0.latency
        assert opened.time < min(answered) <= update.time
        print(
            f"\ncommand → views.open: {(opened.time - sent) * 1000:.0f} ms; "
            f"first Auth0 answer after {(min(answered) - sent) * 1000:.0f} ms; "
            f"hook selected after {(update.time - sent) * 1000:.0f} ms"
        )
        view = bot.slack.view_for_user(REQUESTER)
        assert _element(view, ids.BLOCK_HOOK)["initial_option"]["value"] == bot.hook_id


def _element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    element: dict[str, Any] = block["element"]
    return element


def test_form_slack_refuses_to_open_is_reported_to_the_user(sqlite_url: str) -> None:
    """When Slack refuses `views.open` (rate limited), the requester and the approver are told
    to try again instead of seeing nothing."""
    with running_bot(sqlite_url) as bot:
        bot.slack.ratelimit_next("views.open", 1)
        bot.driver.slash_command(REQUESTER, "add", channel_id=ORIGIN)
        told = bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "try again" in m["text"])
        assert "ratelimited" in told["text"]
        message = bot.request_approval()
        bot.slack.ratelimit_next("views.open", 1)
        bot.click(message, user=APPROVER)
        bot.slack.wait_for_ephemeral(APPROVER, lambda m: "try again" in m["text"])
        bot.drain()
        assert [c.error for c in bot.slack.calls_to("views.open")] == [
            "ratelimited",
            None,
            "ratelimited",
        ]
        assert bot.decide(message).status == 200
        bot.drain()
        assert len(secret_posts(bot.auth0)) == 1
