"""The request modal's checks, end to end: field errors keyed by block id, nothing stored."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bot.approvals.states import State
from bot.slack import ids
from tests.harness.inprocess import (
    GROUPIE,
    REQUESTER,
    Bot,
    all_requests,
    delete_hook,
    running_bot,
    secret_posts,
)


def _errors(ack: Any) -> dict[str, str]:
    """The field errors of a submission's ack, after checking Slack would accept the answer."""
    assert ack.status == 200 and not ack.problems, (ack.body, ack.problems)
    body = ack.json()
    assert body["response_action"] == "errors"
    errors: dict[str, str] = body["errors"]
    return errors


def _assert_nothing_stored(bot: Bot, block: str) -> None:
    """No row, no Slack post, no Auth0 write; one request.refused naming the field."""
    bot.drain()
    assert all_requests(bot.store) == []
    assert not bot.slack.calls_to("chat.postMessage")
    assert not secret_posts(bot.auth0)
    (refused,) = bot.audit()
    assert refused["event"] == "request.refused" and refused["actor"] == REQUESTER
    assert block in refused["fields"]


@pytest.mark.parametrize(
    ("fields", "block", "says"),
    [
        ({"name": "API KEY!"}, ids.BLOCK_SECRET_NAME, "letters, digits"),
        ({"name": "api.key"}, ids.BLOCK_SECRET_NAME, "letters, digits"),
        ({"name": "A" * 129}, ids.BLOCK_SECRET_NAME, "128"),
        ({"name": "1API_KEY"}, ids.BLOCK_SECRET_NAME, "starting with a letter"),
        ({"name": "-API_KEY"}, ids.BLOCK_SECRET_NAME, "starting with a letter"),
        ({"value": "   \t  "}, ids.BLOCK_SECRET_VALUE, "blank"),
        ({"value": None}, ids.BLOCK_SECRET_VALUE, "blank"),
        ({"value": "_VALUE_NOT_SHOWN_"}, ids.BLOCK_SECRET_VALUE, "placeholder"),
        ({"reason": None}, ids.BLOCK_REASON, "why"),
        ({"reason": "   "}, ids.BLOCK_REASON, "why"),
        # 1,000 characters, within the field's limit, but 4,000 once escaped for Slack.
        ({"reason": "<" * 1000}, ids.BLOCK_REASON, "once shown in Slack"),
        ({"hook": {"selected_option": None}}, ids.BLOCK_HOOK, "Choose a hook"),
    ],
)
def test_invalid_field_is_answered_with_an_error_on_its_block(
    sqlite_url: str, fields: dict[str, Any], block: str, says: str
) -> None:
    """Each invalid field comes back as `response_action: errors` on its own block id, with a
    message that never quotes the value, and nothing is stored or sent."""
    with running_bot(sqlite_url) as bot:
        view = bot.open_form()
        # validate=False: what a modified client could send past Slack's own checks.
        ack = bot.submit(view, validate=False, **fields)
        errors = _errors(ack)
        assert list(errors) == [block]
        assert says in errors[block]
        typed = fields.get("value")
        if typed and typed != "_VALUE_NOT_SHOWN_":
            assert typed not in errors[block]
        _assert_nothing_stored(bot, block)


def test_128_character_name_starting_with_underscore_is_accepted(sqlite_url: str) -> None:
    """The bounds themselves are valid: 128 characters, a leading underscore, digits and -."""
    name = "_" + "a1-" * 42 + "z"
    assert len(name) == 128
    with running_bot(sqlite_url) as bot:
        ack = bot.submit(bot.open_form(), name=name)
        assert ack.status == 200 and not ack.body
        bot.drain()
        (row,) = all_requests(bot.store)
        assert row.secret_name == name and row.state == State.PENDING


def test_name_already_on_the_hook_suggests_update(sqlite_url: str) -> None:
    """Adding a name the hook already has is refused on `secret_name`, suggesting update."""
    with running_bot(sqlite_url) as bot:
        errors = _errors(bot.submit(bot.open_form(), name="EXISTING"))
        assert list(errors) == [ids.BLOCK_SECRET_NAME]
        assert "/hook-secret update" in errors[ids.BLOCK_SECRET_NAME]
        _assert_nothing_stored(bot, ids.BLOCK_SECRET_NAME)
        assert bot.auth0.secrets(bot.hook_id) == {"EXISTING": "old"}


def test_hook_at_twenty_secrets_is_refused(sqlite_url: str) -> None:
    """A hook that already holds Auth0's maximum of 20 secrets is refused on `hook`."""
    with running_bot(sqlite_url) as bot:
        bot.auth0.set_secrets(bot.hook_id, {f"S{n}": "x" for n in range(19)})
        errors = _errors(bot.submit(bot.open_form(), name="ONE_MORE"))
        assert list(errors) == [ids.BLOCK_HOOK]
        assert "20" in errors[ids.BLOCK_HOOK]
        _assert_nothing_stored(bot, ids.BLOCK_HOOK)


def test_hook_deleted_between_open_and_submit_is_refused(sqlite_url: str) -> None:
    """A hook picked in the modal but deleted in Auth0 before submitting is refused on `hook`,
    and the picker stops offering it."""
    with running_bot(sqlite_url) as bot:
        view = bot.open_form()
        picked = bot.hook_option()  # loads the hook list, as the picker did
        delete_hook(bot.auth0, bot.hook_id)
        errors = _errors(bot.submit(view, hook=picked))
        assert list(errors) == [ids.BLOCK_HOOK]
        assert "no longer exists" in errors[ids.BLOCK_HOOK]
        _assert_nothing_stored(bot, ids.BLOCK_HOOK)
        ack = bot.driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
        assert ack.json()["options"] == []


def test_second_request_for_the_same_secret_while_one_is_pending_is_refused(
    sqlite_url: str,
) -> None:
    """While a request for hook+name is pending, another one for the same pair is refused on
    `secret_name`, naming the open request; a different name is still accepted."""
    with running_bot(sqlite_url) as bot:
        assert not bot.submit(bot.open_form()).body
        bot.drain()
        (first,) = all_requests(bot.store)
        errors = _errors(bot.submit(bot.open_form(), value="another-value"))
        assert list(errors) == [ids.BLOCK_SECRET_NAME]
        assert first.id in errors[ids.BLOCK_SECRET_NAME]
        ack = bot.submit(bot.open_form(), name="OTHER_KEY")
        assert ack.status == 200 and not ack.body
        bot.drain()
        assert sorted(r.secret_name for r in all_requests(bot.store)) == ["API_KEY", "OTHER_KEY"]
        assert bot.events().count("request.refused") == 1


def test_several_errors_come_back_together(sqlite_url: str) -> None:
    """Every invalid field is reported at once, each on its own block."""
    with running_bot(sqlite_url) as bot:
        ack = bot.submit(bot.open_form(), name="9 bad", value=" ", reason=None, validate=False)
        errors = _errors(ack)
        assert set(errors) == {ids.BLOCK_SECRET_NAME, ids.BLOCK_SECRET_VALUE, ids.BLOCK_REASON}
        assert all_requests(bot.store) == []


def test_slow_auth0_at_submit_accepts_inside_slacks_deadline_and_checks_again_later(
    sqlite_url: str,
) -> None:
    """When Auth0 is too slow to check the hook before the ack, the submission is accepted in
    time; the name clash it could not see is caught before anything is written."""
    with running_bot(sqlite_url) as bot:
        view = bot.open_form()
        picked = bot.hook_option()
        bot.auth0.latency = 2.0
        ack = bot.submit(view, hook=picked, name="EXISTING")
        bot.auth0.latency = 0.0
        assert ack.status == 200 and not ack.body and not ack.problems
        assert ack.elapsed < 3.0
        message = bot.slack.wait_for_message(
            "C0APPROVE", lambda m: any(b.get("type") == "actions" for b in m.get("blocks", []))
        )
        bot.decide(message)
        bot.drain()
        (row,) = all_requests(bot.store)
        assert row.state == State.FAILED and row.failure_reason == "conflict"
        assert bot.auth0.secrets(bot.hook_id) == {"EXISTING": "old"}
        assert not secret_posts(bot.auth0)


def test_two_requests_for_the_same_secret_submitted_at_once_store_one(db_url: str) -> None:
    """Two requesters submitting the same hook+name at the same instant: one request is
    recorded, the other is answered with an error on `secret_name` naming it."""
    with running_bot(db_url) as bot:
        views = {user: bot.open_form(user=user) for user in (REQUESTER, GROUPIE)}
        picked = bot.hook_option()
        start = threading.Barrier(len(views))

        def submit(user: str) -> Any:
            start.wait()
            return bot.submit(views[user], user=user, hook=picked)

        with ThreadPoolExecutor(len(views)) as pool:
            acks = dict(zip(views, pool.map(submit, views), strict=True))
        bot.drain()
        (row,) = all_requests(bot.store)
        (loser,) = [user for user in acks if user != row.requester]
        errors = _errors(acks[loser])
        assert list(errors) == [ids.BLOCK_SECRET_NAME] and row.id in errors[ids.BLOCK_SECRET_NAME]
        assert not acks[row.requester].body
        assert bot.events().count("request.submitted") == 1
        assert len(bot.slack.calls_to("chat.postMessage")) == 1
