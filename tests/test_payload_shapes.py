"""Every payload shape Slack sends, over real HTTP (issue 23.4, 23.8): org-wide install
payloads are refused before any listener runs, replies work without a ``response_url``, and
text that is not valid Unicode gets a field error without breaking later submissions.

The org-wide shapes follow bolt-python's scenario tests for Enterprise Grid org-wide
installs: ``team: null``, ``is_enterprise_install: true``, an ``enterprise`` object, and the
workspace only in ``user.team_id`` (and the view's ``team_id``); a slash command carries
``enterprise_id`` and ``is_enterprise_install=true`` beside its ``team_id``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.slack import ids
from bot.slack.app import FOREIGN_TEAM
from bot.slack.listeners.views import NOT_UNICODE
from tests.harness.inprocess import Bot, all_requests, running_bot
from tests.harness.people import APPROVALS, APPROVER, ORIGIN, REQUESTER

ENTERPRISE = {"id": "E0ORG", "name": "Acme Org"}
Reshape = Callable[[str, dict[str, Any]], dict[str, Any]]


@pytest.fixture
def bot(sqlite_url: str) -> Iterator[Bot]:
    with running_bot(sqlite_url) as bot:
        yield bot


@pytest.fixture
def reshape(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> Callable[[Reshape], None]:
    """Change the next payloads the driver sends as Slack would shape them (then signed)."""

    def use(change: Reshape) -> None:
        send = bot.driver.send
        monkeypatch.setattr(
            bot.driver, "send", lambda kind, payload: send(kind, change(kind, payload))
        )

    return use


def org_wide(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as an org-wide install sends it: no team, the workspace in the user."""
    if kind == "slash_commands":
        return {**payload, "enterprise_id": ENTERPRISE["id"], "is_enterprise_install": "true"}
    shaped = {**payload, "team": None, "enterprise": ENTERPRISE, "is_enterprise_install": True}
    if isinstance(shaped.get("view"), dict):
        shaped["view"] = {**shaped["view"], "app_installed_team_id": payload["team"]["id"]}
    return shaped


def test_an_org_wide_view_submission_of_a_complete_form_is_refused_and_records_nothing(
    bot: Bot, reshape: Callable[[Reshape], None]
) -> None:
    """A complete, valid add form sent as an org-wide install payload: refused before the
    listener (request.denied, foreign_team), nothing recorded, no approval posted."""
    view = bot.open_form()
    reshape(org_wide)
    ack = bot.submit(view, name="ORG_WIDE_KEY")
    assert ack.status == 200 and FOREIGN_TEAM.encode() in ack.body
    denied = [r for r in bot.audit() if r["event"] == "request.denied"]
    assert [(r["outcome"], r["enterprise_id"]) for r in denied] == [("foreign_team", "E0ORG")]
    assert all_requests(bot.store) == []
    assert not any("ORG_WIDE_KEY" in m.get("text", "") for m in bot.slack.messages(APPROVALS))


def test_an_org_wide_approve_click_is_refused_before_any_listener(
    bot: Bot, reshape: Callable[[Reshape], None]
) -> None:
    """An Approve click from an org-wide install: no decision modal, approval.denied."""
    message = bot.request_approval()
    mark = bot.slack.mark()
    reshape(org_wide)
    ack = bot.click(message)
    assert ack.status == 200 and FOREIGN_TEAM.encode() in ack.body
    bot.drain()
    assert all(c.method != "views.open" for c in bot.slack.calls[mark:])
    assert ("approval.denied", "foreign_team") in [(r["event"], r["outcome"]) for r in bot.audit()]


def test_an_org_wide_slash_command_is_refused(bot: Bot, reshape: Callable[[Reshape], None]) -> None:
    """``/hook-secret add`` with ``enterprise_id`` and ``is_enterprise_install=true``."""
    mark = bot.slack.mark()
    reshape(org_wide)
    ack = bot.driver.slash_command(REQUESTER, "add", channel_id=ORIGIN)
    assert ack.status == 200 and FOREIGN_TEAM.encode() in ack.body
    bot.drain()
    assert all(c.method != "views.open" for c in bot.slack.calls[mark:])
    assert ("request.denied", "foreign_team") in [(r["event"], r["outcome"]) for r in bot.audit()]


def test_a_workspace_inside_an_enterprise_grid_is_served(
    bot: Bot, reshape: Callable[[Reshape], None]
) -> None:
    """A workspace install inside a Grid carries ``enterprise_id`` but its own ``team_id``
    and ``is_enterprise_install=false``: served as usual."""
    reshape(lambda kind, p: {**p, "enterprise_id": ENTERPRISE["id"]})
    mark = bot.slack.mark()
    ack = bot.driver.slash_command(REQUESTER, "add", channel_id=ORIGIN)
    assert (ack.status, ack.body) == (200, b"")
    assert bot.slack.wait_for("views.open", after=mark).ok


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda p: {**p, "team": None}, id="team null"),
        pytest.param(lambda p: {k: v for k, v in p.items() if k != "team"}, id="no team"),
        pytest.param(lambda p: {**p, "is_enterprise_install": "true"}, id="org-wide as a string"),
        pytest.param(
            lambda p: {**p, "view": {**p["view"], "app_installed_team_id": "T0OTHER"}},
            id="view installed in another team",
        ),
    ],
)
def test_a_submission_whose_team_cannot_be_pinned_is_refused(
    bot: Bot, reshape: Callable[[Reshape], None], change: Callable[[dict[str, Any]], Any]
) -> None:
    """Any payload whose own team is missing or not the bot's is refused, whatever else it
    names (its user's team is the bot's here)."""
    view = bot.open_form()
    reshape(lambda kind, payload: change(payload))
    ack = bot.submit(view, name="UNPINNED_KEY")
    assert ack.status == 200 and FOREIGN_TEAM.encode() in ack.body
    assert all_requests(bot.store) == []


def _without_response_url(in_channel: bool) -> Reshape:
    """A click as a modal or the Home tab sends it: no response_url (and no channel)."""

    def change(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        shaped = {k: v for k, v in payload.items() if k not in ("response_url", "message")}
        if not in_channel:
            shaped.pop("channel", None)
            shaped["container"] = {"type": "view", "view_id": "V0HOME"}
        return shaped

    return change


@pytest.mark.parametrize("in_channel", [False, True], ids=["home tab", "channel"])
def test_that_request_does_not_exist_is_said_without_a_response_url(
    bot: Bot, reshape: Callable[[Reshape], None], in_channel: bool
) -> None:
    """An Approve click for an unknown request, with no response_url: the answer reaches the
    person (ephemeral where they clicked, else a direct message); nothing crashes."""
    message = bot.request_approval()
    reshape(_without_response_url(in_channel))
    ack = bot.driver.block_action(
        APPROVER, ids.ACTION_APPROVE, "hsr_doesnotexist", message=message, channel_id=APPROVALS
    )
    assert (ack.status, ack.body) == (200, b"")
    bot.drain()
    said = "That request does not exist."
    if in_channel:
        shown = bot.slack.ephemerals(APPROVER, APPROVALS)
    else:
        shown = bot.slack.messages(bot.slack.im_channel(APPROVER))
    assert said in [m.get("text") for m in shown]


@pytest.mark.parametrize("field", ["value", "name", "reason"])
def test_text_that_is_not_valid_unicode_gets_a_field_error_and_the_next_submission_works(
    bot: Bot, field: str
) -> None:
    """A lone surrogate (valid JSON from Slack) in a form field: a field error on that block,
    nothing recorded; the next submission is recorded as usual (nothing was poisoned)."""
    broken = "half-\ud800-of-a-pair"
    filled: dict[str, Any] = {"name": "GOOD_KEY", "value": "good-value", "reason": "rotate"}
    filled[field] = broken
    block = {
        "value": ids.BLOCK_SECRET_VALUE,
        "name": ids.BLOCK_SECRET_NAME,
        "reason": ids.BLOCK_REASON,
    }[field]
    ack = bot.submit(bot.open_form(), validate=False, **filled)
    assert ack.status == 200 and not ack.problems, ack.problems
    assert ack.payload() == {"response_action": "errors", "errors": {block: NOT_UNICODE}}
    assert all_requests(bot.store) == []
    outcome = "invalid_name" if field == "name" else "invalid_input"
    assert ("request.refused", outcome) in [(r["event"], r["outcome"]) for r in bot.audit()]
    again = bot.submit(bot.open_form(), name="NEXT_KEY", value="next-value")
    assert (again.status, again.body) == (200, b"")
    assert [r.secret_name for r in all_requests(bot.store)] == ["NEXT_KEY"]
