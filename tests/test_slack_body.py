"""Slack's bodies parsed as Slack sends them: the word "payload" anywhere, malformed payloads."""

from __future__ import annotations

import copy
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.slack import body as slack_body
from bot.slack import ids
from bot.slack.app import FOREIGN_TEAM
from tests.harness.inprocess import (
    APPROVALS,
    ORIGIN,
    REQUESTER,
    SIGNING_SECRET,
    Bot,
    all_requests,
    running_bot,
)

PAYLOAD_CHANNEL = "C0PAYLOAD"
PAYLOAD_USER = "U0PAYLOAD"


@pytest.fixture
def bot(sqlite_url: str) -> Any:
    """A running bot whose workspace has a #payload-team channel and a user named payload."""
    with running_bot(sqlite_url, hook_secret_requesters=f"{REQUESTER},{PAYLOAD_USER}") as bot:
        bot.slack.add_channel(PAYLOAD_CHANNEL, "payload-team")
        bot.slack.add_user(PAYLOAD_USER, "payload")
        yield bot


def _modal_opened_for(bot: Bot, user: str, channel: str, text: str = "add") -> dict[str, Any]:
    mark = bot.slack.mark()
    ack = bot.driver.slash_command(user, text, channel_id=channel)
    assert (ack.status, ack.text) == (200, ""), ack.text
    opened = bot.slack.wait_for("views.open", after=mark)
    assert opened.ok
    view: dict[str, Any] = opened.response["view"]
    return view


# -- the word "payload" ---------------------------------------------------------------------


def test_payload_in_the_command_text_lists_the_hook_named_so(bot: Bot) -> None:
    """``/hook-secret list payload-enricher`` lists that hook's secrets, not a foreign team."""
    bot.auth0.add_hook("payload-enricher", secrets={"PAYLOAD_TOKEN": "v"})
    ack = bot.driver.slash_command(REQUESTER, "list payload-enricher", channel_id=ORIGIN)
    assert ack.status == 200 and FOREIGN_TEAM not in ack.text
    listed = bot.slack.wait_for_response(REQUESTER, lambda r: "PAYLOAD_TOKEN" in r.text)
    assert "payload-enricher" in listed.text
    assert "request.denied" not in bot.events()


def test_payload_in_the_channel_name_opens_the_form(bot: Bot) -> None:
    """``/hook-secret add`` run in #payload-team opens the request modal."""
    view = _modal_opened_for(bot, REQUESTER, PAYLOAD_CHANNEL)
    assert view["callback_id"] == ids.CALLBACK_ADD
    assert json.loads(view["private_metadata"])["channel"] == PAYLOAD_CHANNEL


def test_payload_in_the_user_name_opens_the_form(bot: Bot) -> None:
    """A person whose Slack name is "payload" gets the request modal like anyone else."""
    view = _modal_opened_for(bot, PAYLOAD_USER, ORIGIN)
    assert view["callback_id"] == ids.CALLBACK_ADD
    assert "request.denied" not in bot.events()


def test_payload_in_every_form_value_is_recorded_as_typed(bot: Bot) -> None:
    """A submission whose name, value and reason contain "payload" is recorded and posted."""
    view = _modal_opened_for(bot, REQUESTER, ORIGIN)
    ack = bot.submit(
        view, name="PAYLOAD_KEY", value="payload=%7B%7D-payload", reason="payload rotation"
    )
    assert (ack.status, ack.body) == (200, b"")
    message = bot.slack.wait_for_message(APPROVALS, lambda m: "PAYLOAD_KEY" in m.get("text", ""))
    assert "payload rotation" in json.dumps(message)
    (row,) = all_requests(bot.store)
    assert (row.secret_name, row.reason) == ("PAYLOAD_KEY", "payload rotation")


def test_payload_in_an_options_query_and_a_button_value_is_answered(bot: Bot) -> None:
    """An options load typing "payload" finds the hook; a click whose value says it is refused
    as an unknown request, not as a foreign workspace."""
    hook_id = bot.auth0.add_hook("payload-enricher")
    view = _modal_opened_for(bot, REQUESTER, ORIGIN)
    ack = bot.driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "payload", view)
    assert ack.status == 200 and not ack.problems
    assert [o["value"] for o in ack.payload()["options"]] == [hook_id]
    message = {
        "ts": "1.000001",
        "blocks": [
            {
                "type": "actions",
                "block_id": "decide",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ids.ACTION_APPROVE,
                        "text": {"type": "plain_text", "text": "Approve"},
                        "value": "payload",
                    }
                ],
            }
        ],
    }
    ack = bot.driver.block_action(REQUESTER, ids.ACTION_APPROVE, message=message, channel_id=ORIGIN)
    assert ack.status == 200 and FOREIGN_TEAM not in ack.text
    told = bot.slack.wait_for_response(REQUESTER, lambda r: "does not exist" in r.text)
    assert told.ok


# -- malformed payloads ----------------------------------------------------------------------


def _view_submission(bot: Bot) -> dict[str, Any]:
    """A genuine request-form submission payload, as the driver would send it."""
    view = _modal_opened_for(bot, REQUESTER, ORIGIN)
    payload = bot.driver._common(REQUESTER, None, "view_submission")
    submitted = copy.deepcopy(view)
    submitted["state"] = {"values": {}}
    payload.update(trigger_id="1.2.3", view=submitted, response_urls=[])
    return payload


def _without(path: str) -> Any:
    def change(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = payload
        for key in parents:
            node = node[key]
        del node[last]

    return change


def _set(path: str, value: Any) -> Any:
    def change(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = payload
        for key in parents:
            node = node[key]
        node[last] = value

    return change


# Each one signed correctly: Slack never sends them, but a signed body is still only input.
MALFORMED_PAYLOADS = {
    "view without type": _without("view.type"),
    "view without callback_id": _without("view.callback_id"),
    "view null": _set("view", None),
    "view a string": _set("view", "modal"),
    "view.state null values": _set("view.state", {"values": None}),
    "view.state a list": _set("view.state", [1, 2]),
    "no user": _without("user"),
    "user null": _set("user", None),
    "user id a number": _set("user.id", 42),
    "team a list": _set("team", ["T0TEAM"]),
    "team id a number": _set("team.id", 7),
    "type a number": _set("type", 3),
    "no type": _without("type"),
    "unknown type": _set("type", "shortcut"),
    "private_metadata an object": _set("view.private_metadata", {"channel": ORIGIN}),
    "blocks null entries": _set("view.blocks", [None]),
}
MALFORMED_BODIES = {
    "payload not JSON": b"payload=%7Bnot-json",
    "payload empty": b"payload=",
    "payload null": b"payload=null",
    "payload a list": b"payload=%5B1%2C2%5D",
    "payload a string": b"payload=%22view_submission%22",
    "payload nested nulls": b"payload=" + urlencode({"x": json.dumps({"type": None})})[2:].encode(),
    "empty body": b"",
    "form without command": b"text=add&user_id=U0REQ",
    "command field twice": b"command=%2Fhook-secret&command=%2Fother&team_id=T&user_id=U",
    "not UTF-8": b"payload=%FF%FE",
    "JSON a list": b"[1, 2]",
}


def _assert_nothing_happened(bot: Bot, before_calls: int) -> None:
    assert all_requests(bot.store) == []
    bot.drain()
    assert bot.events() == []
    assert [c.method for c in bot.slack.calls[before_calls:]] == []


def _assert_still_serves(bot: Bot) -> None:
    mark = bot.slack.mark()
    ack = bot.driver.slash_command(REQUESTER, "add", channel_id=ORIGIN)
    assert ack.status == 200
    assert bot.slack.wait_for("views.open", after=mark).ok


@pytest.mark.parametrize("change", MALFORMED_PAYLOADS.values(), ids=MALFORMED_PAYLOADS.keys())
def test_a_signed_malformed_payload_is_refused_as_bad_input(bot: Bot, change: Any) -> None:
    """A signed envelope of the wrong shape gets 400, stores nothing, and the bot serves on."""
    payload = _view_submission(bot)
    change(payload)
    mark = bot.slack.mark()
    ack = bot.driver.post_signed(urlencode({"payload": json.dumps(payload)}).encode())
    assert (ack.status, ack.text) == (400, "Malformed Slack request; nothing was done.")
    _assert_nothing_happened(bot, mark)
    _assert_still_serves(bot)


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_a_signed_malformed_body_is_refused_as_bad_input(bot: Bot, body: bytes) -> None:
    """Bodies that are not Slack's forms or JSON payloads get 400, never 500."""
    mark = bot.slack.mark()
    ack = bot.driver.post_signed(body)
    assert ack.status == 400, ack.text
    _assert_nothing_happened(bot, mark)
    _assert_still_serves(bot)


def test_a_signed_json_body_of_the_wrong_shape_is_refused(bot: Bot) -> None:
    """A JSON body (the Events API's form) that is no object gets 400 too."""
    body = b'"event_callback"'
    ack = bot.driver.post_raw(
        body, bot.driver.signed_headers(body, content_type="application/json")
    )
    assert ack.status == 400
    _assert_still_serves(bot)


def test_a_body_that_is_not_utf8_is_refused_without_a_crash(bot: Bot) -> None:
    """Bytes no UTF-8 decoder reads, signed byte for byte, are refused (401: Bolt's verifier
    reads text) and the bot serves on."""
    body, timestamp = b"\xff\xfe\xfa", str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + timestamp.encode() + b":" + body, "sha256")
    headers = bot.driver.signed_headers(b"")
    headers.update(
        {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=" + digest.hexdigest()}
    )
    mark = bot.slack.mark()
    assert bot.driver.post_raw(body, headers).status == 401
    _assert_nothing_happened(bot, mark)
    _assert_still_serves(bot)


def test_an_unsigned_malformed_body_is_401_not_400(bot: Bot) -> None:
    """The signature is checked first: an unsigned malformed body is simply unauthorised."""
    body = b"payload=%7Bnot-json"
    headers = bot.driver.signed_headers(body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    assert bot.driver.post_raw(body, headers).status == 401
    del headers["X-Slack-Request-Timestamp"]
    assert bot.driver.post_raw(body, headers).status == 401


# -- the parser alone ------------------------------------------------------------------------


FORM = "application/x-www-form-urlencoded"


def test_a_form_without_a_payload_field_is_a_slash_command_whatever_its_words() -> None:
    """The word "payload" in values or as a prefix of another field's name stays a command."""
    fields = {
        "command": "/hook-secret",
        "text": "list payload=x payload",
        "team_id": "T0TEAM",
        "user_id": "U0REQ",
        "user_name": "payload",
        "channel_name": "payload-team",
        "payloads": "not the field",
    }
    assert slack_body.parse(urlencode(fields).encode(), FORM) == fields
    assert slack_body.kind_of(fields) == "slash_command"


def test_a_payload_field_is_the_envelope_and_its_values_may_say_payload() -> None:
    """An envelope is read from the ``payload`` field exactly, values untouched."""
    envelope = {
        "type": "block_suggestion",
        "team": {"id": "T0TEAM"},
        "user": {"id": "U0REQ"},
        "action_id": "hook",
        "block_id": "hook",
        "value": "payload=payload&payload",
    }
    body = urlencode({"payload": json.dumps(envelope)}).encode()
    assert slack_body.parse(body, f"{FORM}; charset=utf-8") == envelope
    assert slack_body.kind_of(envelope) == "block_suggestion"


def test_a_malformed_field_is_named_by_where_it_is_never_by_its_value() -> None:
    """The refusal names the field's location only (a pasted secret could be the value)."""
    envelope = {
        "type": "view_submission",
        "user": {"id": "U0REQ"},
        "view": {"callback_id": "hook_secret_add", "private_metadata": ["s3cr3t-value"]},
    }
    body = urlencode({"payload": json.dumps(envelope)}).encode()
    with pytest.raises(slack_body.Malformed) as refused:
        slack_body.parse(body, FORM)
    assert "view.type" in str(refused.value) and "view.private_metadata" in str(refused.value)
    assert "s3cr3t" not in str(refused.value)


def test_a_copied_request_keeps_the_parsed_body_and_stays_verifiable() -> None:
    """Bolt's copies (for lazy listeners) keep our parse and the raw bytes Bolt verifies."""
    raw = urlencode({"command": "/hook-secret", "team_id": "T", "user_id": "U", "text": "payload"})
    body = slack_body.parse(raw.encode(), FORM)
    request = slack_body.ParsedRequest(raw, body, "a=1", {"content-type": FORM})
    copied = request.to_copyable()
    assert (copied.body, copied.raw_body, copied.mode) == (body, raw, "http")
    assert copied.query == {"a": ["1"]} and copied.context.team_id == "T"
