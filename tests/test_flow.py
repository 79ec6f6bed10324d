"""The Slack flow end to end: signed requests in, Slack and Auth0 calls out, rows and audit."""

from __future__ import annotations

from bot.models import State
from tests.harness import APPROVALS, APPROVER, ORIGIN, REQUESTER, running_bot


def test_add_with_approval_applies_once_and_confirms_without_the_value(sqlite_url: str) -> None:
    """Request → approval message → approve → one POST to Auth0 → redacted confirmation."""
    with running_bot(sqlite_url) as bot:
        message = bot.request_approval(value="v@lue-CANARY-1")
        ack = bot.decide(message, comment="ok")
        assert ack.status == 200
        bot.drain()
        assert bot.auth0.secrets(bot.hook_id)["API_KEY"] == "v@lue-CANARY-1"
        posts = [r for r in bot.auth0.requests if r.method == "POST" and "secrets" in r.path]
        assert len(posts) == 1
        confirmation = bot.slack.wait_for_message(ORIGIN, lambda m: "API_KEY" in m.get("text", ""))
        assert REQUESTER in confirmation["text"] and APPROVER in confirmation["text"]
        assert "CANARY" not in str(bot.slack.calls)
        assert bot.events()[-3:] == ["request.submitted", "request.approved", "secret.added"][-3:]
        updated = bot.slack.messages(APPROVALS)[0]
        assert not any(b.get("type") == "actions" for b in updated["blocks"])
        request_id = message["blocks"][-1]["elements"][0]["value"]
        row = bot.store.get(request_id)
        assert row is not None and row.state == State.APPLIED and row.value_ciphertext is None
