"""Rotate, remove and list: the lifecycle beyond add, end to end over real HTTP."""

from __future__ import annotations

from typing import Any

from bot.approvals.states import State
from bot.slack import ids
from tests.harness.inprocess import (
    APPROVALS,
    APPROVER,
    ORIGIN,
    OUTSIDER,
    REQUESTER,
    Bot,
    running_bot,
)


def _approval(bot: Bot, text: str, **kwargs: Any) -> dict[str, Any]:
    mark = bot.slack.mark()
    view = bot.open_form(text=text)
    ack = bot.submit(view, **kwargs)
    assert ack.status == 200 and not ack.body, ack.body
    bot.drain()
    call = bot.slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == APPROVALS, after=mark
    )
    return next(m for m in bot.slack.messages(APPROVALS) if m["ts"] == call.response["ts"])


def test_rotate_patches_the_existing_secret_and_says_rotated(sqlite_url: str) -> None:
    """`update` opens the same form; once approved, a PATCH replaces the value."""
    with running_bot(sqlite_url) as bot:
        view = bot.open_form(text="update")
        assert view["callback_id"] == ids.CALLBACK_UPDATE
        message = _approval(bot, "update", name="EXISTING", value="rotated-value-1")
        bot.decide(message)
        bot.drain()
        assert bot.auth0.secrets(bot.hook_id)["EXISTING"] == "rotated-value-1"
        methods = [r.method for r in bot.auth0.requests if r.path.endswith("/secrets")]
        assert "PATCH" in methods and "POST" not in methods
        confirmation = bot.slack.wait_for_message(ORIGIN, lambda m: "EXISTING" in m["text"])
        assert "rotated" in confirmation["text"]
        assert "secret.updated" in bot.events()


def test_rotate_of_a_missing_name_suggests_add(sqlite_url: str) -> None:
    """Rotating a name the hook lacks is refused in the form, pointing at `add`."""
    with running_bot(sqlite_url) as bot:
        ack = bot.submit(bot.open_form(text="update"), name="NOT_THERE")
        errors = ack.json()["errors"]
        assert "/hook-secret add" in errors[ids.BLOCK_SECRET_NAME]
        assert bot.store.open_request_for(bot.hook_id, "NOT_THERE") is None


def test_remove_deletes_after_approval_and_has_no_value_field(sqlite_url: str) -> None:
    """`remove` shows no value input; once approved, a DELETE removes the secret."""
    with running_bot(sqlite_url) as bot:
        view = bot.open_form(text="remove")
        assert view["callback_id"] == ids.CALLBACK_REMOVE
        assert ids.BLOCK_SECRET_VALUE not in {b.get("block_id") for b in view["blocks"]}
        message = _approval(bot, "remove", name="EXISTING")
        bot.decide(message)
        bot.drain()
        assert "EXISTING" not in bot.auth0.secrets(bot.hook_id)
        assert any(r.method == "DELETE" for r in bot.auth0.requests)
        bot.slack.wait_for_message(ORIGIN, lambda m: "removed" in m["text"])
        assert "secret.removed" in bot.events()


def test_remove_of_a_missing_name_is_refused(sqlite_url: str) -> None:
    """Removing a name the hook lacks is refused in the form and stores nothing."""
    with running_bot(sqlite_url) as bot:
        ack = bot.submit(bot.open_form(text="remove"), name="NOPE")
        assert ids.BLOCK_SECRET_NAME in ack.json()["errors"]
        bot.drain()
        assert bot.events() == ["request.refused"]


def test_second_request_for_the_same_secret_points_at_the_first(sqlite_url: str) -> None:
    """While one request for a hook and name is pending, another is refused with its id."""
    with running_bot(sqlite_url) as bot:
        message = _approval(bot, "update", name="EXISTING")
        first_id = message["blocks"][-1]["elements"][0]["value"]
        ack = bot.submit(bot.open_form(text="update"), name="EXISTING")
        assert first_id in ack.json()["errors"][ids.BLOCK_SECRET_NAME]


def _list(bot: Bot, user: str, text: str) -> str:
    mark = len(bot.slack.ephemerals(user))
    bot.driver.slash_command(user, text, channel_id=ORIGIN)
    bot.drain()
    shown = bot.slack.ephemerals(user)[mark:]
    assert shown, "nothing was shown"
    return str(shown[-1].get("text", ""))


def test_list_shows_names_and_provenance_never_values(sqlite_url: str) -> None:
    """After an add, a rotate and a change made in Auth0 directly, list tells each origin."""
    with running_bot(sqlite_url) as bot:
        bot.decide(_approval(bot, "add", name="ADDED_KEY", value="added-value-xyz"))
        bot.drain()
        bot.decide(_approval(bot, "update", name="EXISTING", value="rotated-value-xyz"))
        bot.drain()
        bot.auth0.set_secrets(bot.hook_id, {"DIRECT": "direct-value-xyz"})
        text = _list(bot, REQUESTER, f"list {bot.hook_id}")
        lines = {line.split("`")[1]: line for line in text.splitlines() if line.startswith("•")}
        assert "added by" in lines["ADDED_KEY"] and REQUESTER in lines["ADDED_KEY"]
        assert APPROVER in lines["ADDED_KEY"]
        assert "rotated by" in lines["EXISTING"]
        assert "set outside the bot" in lines["DIRECT"]
        assert "3 of 20" in text
        assert "value-xyz" not in text


def test_list_by_an_outsider_is_refused_and_audited(sqlite_url: str) -> None:
    """Someone neither requester nor approver gets a refusal and a request.denied record."""
    with running_bot(sqlite_url) as bot:
        text = _list(bot, OUTSIDER, f"list {bot.hook_id}")
        assert "Only requesters and approvers" in text
        assert bot.events() == ["request.denied"]
        assert "EXISTING" not in text


def test_list_without_a_hook_offers_a_picker(sqlite_url: str) -> None:
    """`list` alone answers with a hook picker; choosing a hook lists its secrets."""
    with running_bot(sqlite_url) as bot:
        bot.driver.slash_command(APPROVER, "list", channel_id=ORIGIN)
        bot.drain()
        picker = bot.slack.ephemerals(APPROVER)[-1]
        select = picker["blocks"][0]["accessory"]
        assert select["options"][0]["value"] == bot.hook_id
        bot.driver.block_action(
            APPROVER, select["action_id"], bot.hook_id, message=picker, channel_id=ORIGIN
        )
        bot.drain()
        assert "EXISTING" in str(bot.slack.ephemerals(APPROVER)[-1].get("text", ""))


def test_rejected_rotation_leaves_auth0_untouched(sqlite_url: str) -> None:
    """A rejected rotation erases the value and never calls PATCH."""
    with running_bot(sqlite_url) as bot:
        message = _approval(bot, "update", name="EXISTING", value="never-sent")
        bot.decide(message, approve=False, comment="not now")
        bot.drain()
        assert bot.auth0.secrets(bot.hook_id)["EXISTING"] == "old"
        assert not any(r.method == "PATCH" for r in bot.auth0.requests)
        request_id = message["blocks"][-1]["elements"][0]["value"]
        row = bot.store.get(request_id)
        assert row is not None and row.state == State.REJECTED and row.value_ciphertext is None
