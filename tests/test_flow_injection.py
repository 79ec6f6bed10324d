"""Text safety end to end: user-supplied strings are shown escaped everywhere in Slack."""

from __future__ import annotations

import re

from bot.approvals.states import State
from bot.slack import ids
from bot.slack.text import esc
from tests.harness.inprocess import (
    APPROVALS,
    APPROVER,
    ORIGIN,
    REQUESTER,
    Bot,
    all_requests,
    request_id_of,
    running_bot,
    shown_texts,
)

HOOK_NAME = "Client Credentials Exchange"
INJECTIONS = ("<!channel>", "<@U123>", "<https://evil|click>", "&amp;")
RAW_ENTITY = re.compile(r"&amp;(?!amp;)")
INJECT = "ping <!channel> and <@U123>, see <https://evil|click> &amp; more"


def _assert_never_raw(bot: Bot) -> list[str]:
    """No Slack text the bot produced holds an injected control sequence unescaped."""
    texts = shown_texts(bot.slack)
    for text in texts:
        for raw in INJECTIONS[:3]:
            assert raw not in text, text
        # A typed `&amp;` shows as `&amp;amp;` once escaped; bare, Slack would render `&`.
        assert not RAW_ENTITY.search(text), text
    return texts


def test_reason_and_rejection_comment_are_escaped_everywhere(sqlite_url: str) -> None:
    """An injected reason and rejection comment show escaped in the approval message, the
    decision modal, the updated message and the requester's notice; nobody is pinged."""
    with running_bot(sqlite_url) as bot:
        message = bot.request_approval(reason=INJECT)
        ack = bot.decide(message, approve=False, comment=INJECT)
        assert ack.status == 200 and not ack.body
        bot.drain()
        row = bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.REJECTED
        assert row.reason == INJECT and row.decision_comment == INJECT  # stored as typed
        texts = _assert_never_raw(bot)
        escaped = esc(INJECT)
        assert escaped == (
            "ping &lt;!channel&gt; and &lt;@U123&gt;, see &lt;https://evil|click&gt; &amp;amp; more"
        )
        assert any(escaped in t for t in texts)
        modal = bot.slack.calls_to("views.open")[-1].args["view"]
        assert escaped in str(modal["blocks"])
        (updated,) = bot.slack.messages(APPROVALS)
        assert str(updated["blocks"]).count(escaped) == 2  # the reason and the comment
        told = bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "rejected" in m["text"])
        assert escaped in told["text"]
        rejected = bot.audit()[-1]
        assert rejected["comment"] == INJECT  # the audit trail keeps the exact text


def test_approval_comment_with_injection_is_escaped(sqlite_url: str) -> None:
    """An injected approval comment and reason never reach Slack unescaped on the applied path."""
    with running_bot(sqlite_url) as bot:
        message = bot.request_approval(reason=INJECT)
        bot.decide(message, comment=INJECT)
        bot.drain()
        bot.slack.wait_for_message(ORIGIN, lambda m: "API_KEY" in m["text"])
        _assert_never_raw(bot)


def test_injected_hook_name_in_the_command_is_escaped(sqlite_url: str) -> None:
    """A hook argument carrying mentions and entities is shown escaped in the modal's notice."""
    with running_bot(sqlite_url) as bot:
        mark = bot.slack.mark()
        bot.driver.slash_command(REQUESTER, 'add "<!channel> <@U123> &amp;"', channel_id=ORIGIN)
        bot.slack.wait_for("views.update", after=mark)
        view = bot.slack.view_for_user(REQUESTER)
        assert "No hook named `&lt;!channel&gt; &lt;@U123&gt; &amp;amp;`" in str(view["blocks"])
        _assert_never_raw(bot)


def test_a_long_hook_name_and_secret_name_in_the_command_still_give_a_form(
    sqlite_url: str,
) -> None:
    """A 700-character hook argument of '&' (3,500 escaped) and a 200-character secret name:
    Slack gets a form it takes (the stand-in checks its limits), the hook named cut short and
    marked, the name not prefilled past the field's 128."""
    with running_bot(sqlite_url) as bot:
        mark = bot.slack.mark()
        bot.driver.slash_command(REQUESTER, f'add "{"&" * 700}" {"N" * 200}', channel_id=ORIGIN)
        update = bot.slack.wait_for("views.update", after=mark)
        assert update.ok, update.response
        view = bot.slack.view_for_user(REQUESTER)
        assert "No hook named `" + "&amp;" * 100 + "…`" in str(view["blocks"])
        name = next(b for b in view["blocks"] if b.get("block_id") == ids.BLOCK_SECRET_NAME)
        assert "initial_value" not in name["element"]


def test_injected_secret_name_is_refused_without_being_echoed(sqlite_url: str) -> None:
    """A secret name holding control sequences is refused on its block, never echoed."""
    with running_bot(sqlite_url) as bot:
        for name in ("<!channel>", "<@U123>", "&amp;", "<https://evil|click>"):
            ack = bot.submit(bot.open_form(), name=name)
            assert ack.json()["response_action"] == "errors" and not ack.problems
            error = ack.json()["errors"][ids.BLOCK_SECRET_NAME]
            assert name not in error
        mark = bot.slack.mark()
        bot.driver.slash_command(REQUESTER, f'add "{HOOK_NAME}" <@U123>', channel_id=ORIGIN)
        bot.slack.wait_for("views.update", after=mark)
        bot.drain()
        assert all_requests(bot.store) == []
        _assert_never_raw(bot)


def test_hook_name_shown_to_approvers_comes_from_auth0_not_the_payload(sqlite_url: str) -> None:
    """A submitted option whose label was tampered with can't rename the hook: the approval
    message shows Auth0's name for the hook id, and the label's mentions never reach Slack."""
    with running_bot(sqlite_url) as bot:
        forged = {
            "selected_option": {
                "text": {
                    "type": "plain_text",
                    "text": "<!channel> Production (credentials-exchange)",
                },
                "value": bot.hook_id,
            }
        }
        ack = bot.submit(bot.open_form(), hook=forged)
        assert ack.status == 200 and not ack.body
        message = bot.slack.wait_for_message(
            APPROVALS, lambda m: any(b.get("type") == "actions" for b in m["blocks"])
        )
        assert HOOK_NAME in message["text"] and "Production" not in str(message)
        bot.decide(message, user=APPROVER)
        bot.drain()
        (row,) = all_requests(bot.store)
        assert row.target_name == HOOK_NAME
        _assert_never_raw(bot)
