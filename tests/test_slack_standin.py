"""The Slack stand-in behaves like Slack for real clients, and its driver is accepted by Bolt."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from standins.slack import SlackDriver, SlackStandIn

SECRET = "test-signing-secret"
APP_TOKEN = "xapp-1-A0APP-test"


def _modal(**overrides: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": "hook_secret_add",
        "private_metadata": "C0GENERAL",
        "title": {"type": "plain_text", "text": "Add a secret"},
        "submit": {"type": "plain_text", "text": "Request"},
        "blocks": [
            {
                "type": "input",
                "block_id": "hook",
                "label": {"type": "plain_text", "text": "Hook"},
                "element": {
                    "type": "static_select",
                    "action_id": "hook",
                    "options": [
                        {"text": {"type": "plain_text", "text": "login"}, "value": "01H1"},
                        {"text": {"type": "plain_text", "text": "signup"}, "value": "01H2"},
                    ],
                },
            },
            {
                "type": "input",
                "block_id": "secret_name",
                "label": {"type": "plain_text", "text": "Name"},
                "element": {"type": "plain_text_input", "action_id": "secret_name"},
            },
            {
                "type": "input",
                "block_id": "reason",
                "optional": True,
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {"type": "plain_text_input", "action_id": "reason", "max_length": 20},
            },
        ],
    }
    view.update(overrides)
    return view


_BUTTONS = [
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "approve_request",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "req-1",
            }
        ],
    }
]


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn(app_token=APP_TOKEN) as slack:
        slack.add_user("U0ALICE", "alice")
        slack.add_user("U0BOB", "bob")
        slack.add_user("U0GUEST", "guest", team_id="T0OTHER")
        slack.add_channel("C0GENERAL", "general")
        slack.add_channel("C0OUTSIDE", "outside", bot_is_member=False)
        slack.add_usergroup("S0ADMINS", "admins", ["U0ALICE"])
        yield slack


@pytest.fixture
def client(standin: SlackStandIn) -> WebClient:
    return WebClient(base_url=standin.api_url, token=standin.bot_token)


def _error(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as info:
        call()
    data: dict[str, Any] = info.value.response.data
    return data


# --- Web API ----------------------------------------------------------------


def test_auth_test_names_the_workspace_and_bot(client: WebClient) -> None:
    """auth.test answers the bot's identity in the stand-in's workspace."""
    data = client.auth_test().data
    assert data == {
        "ok": True,
        "url": "https://acme.slack.com/",
        "team": "Acme",
        "user": "hook-secret-bot",
        "team_id": "T0TEAM",
        "user_id": "U0BOT",
        "bot_id": "B0BOT",
        "app_id": "A0APP",  # auth.test's output schema names it; the read-back checks it
        "is_enterprise_install": False,
    }


def test_wrong_or_missing_token_is_refused(standin: SlackStandIn) -> None:
    """Wrong token: invalid_auth; none: not_authed; an app token: not_allowed_token_type."""
    wrong = WebClient(base_url=standin.api_url, token="xoxb-wrong")
    assert _error(wrong.auth_test)["error"] == "invalid_auth"
    assert _error(WebClient(base_url=standin.api_url).auth_test)["error"] == "not_authed"
    app = WebClient(base_url=standin.api_url, token=APP_TOKEN)
    assert _error(lambda: app.chat_postMessage(channel="C0GENERAL", text="x"))["error"] == (
        "not_allowed_token_type"
    )


def test_form_token_field_and_json_bodies_are_both_read(standin: SlackStandIn) -> None:
    """A form body carrying the token as a field works as well as JSON with a Bearer header."""
    form = httpx.post(
        standin.api_url + "chat.postMessage",
        data={"token": standin.bot_token, "channel": "C0GENERAL", "text": "form"},
    )
    as_json = httpx.post(
        standin.api_url + "chat.postMessage",
        json={"channel": "C0GENERAL", "blocks": [{"type": "divider"}], "text": "json"},
        headers={"Authorization": f"Bearer {standin.bot_token}"},
    )
    assert form.json()["ok"]
    assert as_json.json()["ok"]
    assert [m["text"] for m in standin.messages("C0GENERAL")] == ["form", "json"]
    form_call, json_call = standin.calls_to("chat.postMessage")
    assert form_call.token == standin.bot_token
    assert "token" not in form_call.args
    assert json_call.args["blocks"] == [{"type": "divider"}]


def test_post_message_records_it_and_routes_user_ids_to_the_dm(client: WebClient) -> None:
    """chat.postMessage returns ts and the message; a user id posts into the bot's DM."""
    sent = client.chat_postMessage(channel="C0GENERAL", text="hello", blocks=_BUTTONS)
    assert sent["channel"] == "C0GENERAL"
    assert sent["message"]["text"] == "hello"
    assert sent["message"]["ts"] == sent["ts"]
    assert sent["message"]["bot_id"] == "B0BOT"
    dm = client.chat_postMessage(channel="U0ALICE", text="psst")
    assert dm["channel"] == client.conversations_open(users="U0ALICE")["channel"]["id"]
    assert dm["channel"].startswith("D")


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"channel": "C0OUTSIDE", "text": "x"}, "not_in_channel"),
        ({"channel": "C0NOPE", "text": "x"}, "channel_not_found"),
        ({"channel": "U0NOBODY", "text": "x"}, "channel_not_found"),
        ({"channel": "C0GENERAL"}, "no_text"),
        ({"channel": "C0GENERAL", "text": "x" * 40_001}, "msg_too_long"),
        (
            {"channel": "C0GENERAL", "text": "x", "blocks": [{"type": "divider"}] * 51},
            "invalid_blocks",
        ),
        (
            {
                "channel": "C0GENERAL",
                "text": "x",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}],
            },
            "invalid_blocks",
        ),
    ],
)
def test_post_message_errors(client: WebClient, kwargs: dict[str, Any], error: str) -> None:
    """chat.postMessage refuses what Slack refuses, with Slack's error codes."""
    assert _error(lambda: client.chat_postMessage(**kwargs))["error"] == error


def test_invalid_blocks_name_the_offending_field(client: WebClient) -> None:
    """Block errors carry Slack's json-pointer messages."""
    blocks: list[dict[str, Any]] = [
        {"type": "divider"},
        {"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}},
    ]
    data = _error(lambda: client.chat_postMessage(channel="C0GENERAL", text="x", blocks=blocks))
    assert data["response_metadata"]["messages"] == [
        "[ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text/text]"
    ]


def test_update_replaces_a_bot_message(client: WebClient, standin: SlackStandIn) -> None:
    """chat.update replaces text and blocks of an existing message; unknown ts is refused."""
    sent = client.chat_postMessage(channel="C0GENERAL", text="pending", blocks=_BUTTONS)
    client.chat_update(channel="C0GENERAL", ts=sent["ts"], text="approved", blocks=[])
    (message,) = standin.messages("C0GENERAL")
    assert message["text"] == "approved"
    assert "blocks" not in message
    assert "edited" in message
    gone = _error(lambda: client.chat_update(channel="C0GENERAL", ts="1.000000", text="x"))
    assert gone["error"] == "message_not_found"


def test_ephemeral_needs_a_user_and_is_recorded(client: WebClient, standin: SlackStandIn) -> None:
    """chat.postEphemeral returns message_ts and shows the message to that user only."""
    ts = client.chat_postEphemeral(channel="C0GENERAL", user="U0ALICE", text="only you")[
        "message_ts"
    ]
    (shown,) = standin.ephemerals("U0ALICE")
    assert shown["ts"] == ts
    assert shown["text"] == "only you"
    assert standin.ephemerals("U0BOB") == []
    missing = _error(
        lambda: client.api_call("chat.postEphemeral", json={"channel": "C0GENERAL", "text": "x"})
    )
    assert missing["error"] == "invalid_arguments"


def test_directory_methods(client: WebClient, standin: SlackStandIn) -> None:
    """users.info, conversations.info and usergroups.users.list answer from the workspace."""
    assert client.users_info(user="U0GUEST")["user"]["team_id"] == "T0OTHER"
    assert _error(lambda: client.users_info(user="U0NOBODY"))["error"] == "user_not_found"
    assert client.conversations_info(channel="C0OUTSIDE")["channel"]["is_member"] is False
    assert (
        _error(lambda: client.conversations_info(channel="C0NOPE"))["error"] == "channel_not_found"
    )
    assert client.usergroups_users_list(usergroup="S0ADMINS")["users"] == ["U0ALICE"]
    standin.set_group_members("S0ADMINS", ["U0BOB"])
    assert client.usergroups_users_list(usergroup="S0ADMINS")["users"] == ["U0BOB"]
    assert (
        _error(lambda: client.usergroups_users_list(usergroup="S0NONE"))["error"]
        == "no_such_subteam"
    )
    assert _error(lambda: client.api_call("foo.bar"))["error"] == "unknown_method"


# --- modals -------------------------------------------------------------------


def test_trigger_ids_work_once(client: WebClient, standin: SlackStandIn) -> None:
    """views.open opens a modal for the trigger's user; the same trigger then is exchanged."""
    trigger = standin.issue_trigger_id("U0ALICE")
    view = client.views_open(trigger_id=trigger, view=_modal())["view"]
    assert view["id"].startswith("V")
    assert view["hash"]
    assert view["callback_id"] == "hook_secret_add"
    assert standin.view_for_user("U0ALICE")["id"] == view["id"]
    assert list(standin.open_views) == [view["id"]]
    again = _error(lambda: client.views_open(trigger_id=trigger, view=_modal()))
    assert again["error"] == "exchanged_trigger_id"


def test_expired_and_unknown_trigger_ids(client: WebClient, standin: SlackStandIn) -> None:
    """A trigger past its lifetime is expired_trigger_id; an unknown one invalid_trigger_id."""
    old = standin.issue_trigger_id("U0ALICE", ttl=-1.0)  # issued past its lifetime
    assert _error(lambda: client.views_open(trigger_id=old, view=_modal()))["error"] == (
        "expired_trigger_id"
    )
    assert _error(lambda: client.views_open(trigger_id="1.2.3", view=_modal()))["error"] == (
        "invalid_trigger_id"
    )


@pytest.mark.parametrize(
    ("overrides", "pointer"),
    [
        ({"title": {"type": "plain_text", "text": "x" * 25}}, "/view/title/text"),
        ({"submit": {"type": "plain_text", "text": "x" * 25}}, "/view/submit/text"),
        ({"close": {"type": "plain_text", "text": "x" * 25}}, "/view/close/text"),
        ({"private_metadata": "x" * 3001}, "/view/private_metadata"),
        ({"callback_id": "x" * 256}, "/view/callback_id"),
        ({"blocks": [{"type": "divider"}] * 101}, "/view/blocks"),
        ({"blocks": [{"type": "divider", "block_id": "b" * 256}]}, "/view/blocks/0/block_id"),
        (
            {
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "action_id": "a" * 256,
                                "text": {"type": "plain_text", "text": "Go"},
                            }
                        ],
                    }
                ]
            },
            "/view/blocks/0/elements/0/action_id",
        ),
        ({"title": {"type": "mrkdwn", "text": "Title"}}, "/view/title/type"),
        ({"submit": None}, "/view"),
    ],
)
def test_view_limits(
    client: WebClient, standin: SlackStandIn, overrides: dict[str, Any], pointer: str
) -> None:
    """A view over Slack's limits is invalid_arguments naming the field; the trigger survives."""
    trigger = standin.issue_trigger_id("U0ALICE")
    data = _error(lambda: client.views_open(trigger_id=trigger, view=_modal(**overrides)))
    assert data["error"] == "invalid_arguments"
    assert any(f"[json-pointer:{pointer}]" in m for m in data["response_metadata"]["messages"])
    assert client.views_open(trigger_id=trigger, view=_modal())["ok"]


def test_views_update_by_id_or_external_id_with_hash(
    client: WebClient, standin: SlackStandIn
) -> None:
    """views.update replaces an open view; stale hash: hash_conflict; unknown id: not_found."""
    opened = client.views_open(
        trigger_id=standin.issue_trigger_id("U0ALICE"), view=_modal(external_id="req-1")
    )["view"]
    updated = client.views_update(
        view_id=opened["id"], hash=opened["hash"], view=_modal(private_metadata="v2")
    )["view"]
    assert updated["id"] == opened["id"]
    assert updated["hash"] != opened["hash"]
    assert standin.open_views[opened["id"]]["private_metadata"] == "v2"
    assert client.views_update(external_id="req-1", view=_modal(external_id="req-1"))["ok"]
    stale = _error(
        lambda: client.views_update(view_id=opened["id"], hash=opened["hash"], view=_modal())
    )
    assert stale["error"] == "hash_conflict"
    assert (
        _error(lambda: client.views_update(view_id="VNOPE", view=_modal()))["error"] == "not_found"
    )


def test_views_publish_sets_the_home_tab(client: WebClient, standin: SlackStandIn) -> None:
    """views.publish stores a home view per user."""
    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
    }
    client.views_publish(user_id="U0ALICE", view=home)
    published = standin.home_view("U0ALICE")
    assert published is not None
    assert published["type"] == "home"


# --- rate limits and waiting ------------------------------------------------------


def test_rate_limit_is_429_with_retry_after(client: WebClient, standin: SlackStandIn) -> None:
    """ratelimit_next answers HTTP 429 with Retry-After and ratelimited."""
    standin.ratelimit_next("chat.postMessage", 1, retry_after=7)
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel="C0GENERAL", text="x")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] in ("7", ["7"])
    assert info.value.response["error"] == "ratelimited"
    assert client.chat_postMessage(channel="C0GENERAL", text="x")["ok"]


def test_retry_handler_honours_retry_after(standin: SlackStandIn) -> None:
    """slack_sdk's RateLimitErrorRetryHandler waits Retry-After seconds and then succeeds."""
    client = WebClient(
        base_url=standin.api_url,
        token=standin.bot_token,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    standin.ratelimit_next("chat.postMessage", 1, retry_after=1)
    started = time.monotonic()
    assert client.chat_postMessage(channel="C0GENERAL", text="x")["ok"]
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in standin.calls_to("chat.postMessage")] == [429, 200]


def test_wait_for_blocks_until_the_call_arrives(client: WebClient, standin: SlackStandIn) -> None:
    """wait_for returns a call made later from another thread."""
    timer = threading.Timer(0.2, lambda: client.chat_postMessage(channel="C0GENERAL", text="late"))
    timer.start()
    call = standin.wait_for("chat.postMessage", lambda c: c.args.get("text") == "late", timeout=3)
    assert call.ok
    with pytest.raises(TimeoutError):
        standin.wait_for("chat.update", timeout=0.1)


# --- response URLs ------------------------------------------------------------------


def test_response_url_works_five_times(standin: SlackStandIn) -> None:
    """A response URL accepts five posts, then answers 404 used_url."""
    url = standin.issue_response_url("U0ALICE", "C0GENERAL")
    statuses = [httpx.post(url, json={"text": f"n{i}"}).status_code for i in range(6)]
    assert statuses == [200] * 5 + [404]
    assert httpx.post(url, json={"text": "x"}).json() == {"ok": False, "error": "used_url"}
    assert [r.text for r in standin.responses("U0ALICE")] == [f"n{i}" for i in range(5)]
    assert all(r.response_type == "ephemeral" for r in standin.responses("U0ALICE"))


def test_response_url_expires_after_30_minutes(standin: SlackStandIn) -> None:
    """A response URL older than 30 minutes is refused."""
    url = standin.issue_response_url("U0ALICE", "C0GENERAL")
    standin.age_response_url(url, 30 * 60 + 1)
    answer = httpx.post(url, json={"text": "late"})
    assert (answer.status_code, answer.json()["error"]) == (404, "expired_url")


def test_response_url_replaces_and_deletes_the_original(
    client: WebClient, standin: SlackStandIn
) -> None:
    """replace_original edits the clicked message; delete_original removes it."""
    ts = client.chat_postMessage(channel="C0GENERAL", text="pending", blocks=_BUTTONS)["ts"]
    url = standin.issue_response_url("U0BOB", "C0GENERAL", message_ts=ts)
    httpx.post(url, json={"replace_original": True, "text": "approved by bob"})
    assert [m["text"] for m in standin.messages("C0GENERAL")] == ["approved by bob"]
    httpx.post(url, json={"delete_original": True})
    assert standin.messages("C0GENERAL") == []


# --- the driver against a bare Bolt app over HTTP -------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _bare_app(standin: SlackStandIn, seen: dict[str, Any], **kwargs: Any) -> App:
    app = App(client=WebClient(base_url=standin.api_url, token=standin.bot_token), **kwargs)

    @app.command("/hook-secret")
    def command(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        seen["command"] = body
        if body["text"] == "help":
            ack("Usage: /hook-secret add")
            return
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=_modal())

    @app.view("hook_secret_add")
    def submit(ack: Ack, view: dict[str, Any], body: dict[str, Any]) -> None:
        seen["submission"] = body
        if view["state"]["values"]["secret_name"]["secret_name"]["value"] == "bad":
            ack(response_action="errors", errors={"secret_name": "Invalid name"})
        else:
            ack()

    @app.action("hook")
    def picked(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        seen["pick"] = body

    @app.action("approve_request")
    def approve(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        seen["action"] = body
        respond(replace_original=True, text=f"Approved by <@{body['user']['id']}>")

    return app


@pytest.fixture
def http_app(standin: SlackStandIn) -> Iterator[tuple[SlackDriver, dict[str, Any]]]:
    seen: dict[str, Any] = {}
    app = _bare_app(standin, seen, signing_secret=SECRET)
    server = make_server(
        "127.0.0.1",
        0,
        SlackRequestHandler(app),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/slack/events"
    with SlackDriver(standin, url, SECRET) as driver:
        yield driver, seen
    server.shutdown()
    server.server_close()


def test_signed_slash_command_is_accepted_and_opens_a_modal(
    http_app: tuple[SlackDriver, dict[str, Any]], standin: SlackStandIn
) -> None:
    """Bolt accepts the driver's signed slash command and its trigger id opens a modal."""
    driver, seen = http_app
    ack = driver.slash_command("U0ALICE", "add login API_KEY")
    assert (ack.status, ack.problems) == (200, ())
    view = standin.wait_for_view("U0ALICE", callback_id="hook_secret_add")
    fields = seen["command"]
    assert fields["text"] == "add login API_KEY"
    assert fields["user_name"] == "alice"
    assert fields["team_id"] == "T0TEAM"
    assert fields["response_url"].startswith(standin.base_url)
    assert view["private_metadata"] == "C0GENERAL"


def test_ack_text_is_shown_to_the_user_only(
    http_app: tuple[SlackDriver, dict[str, Any]], standin: SlackStandIn
) -> None:
    """A slash command answered with text shows it as an ephemeral message to that user."""
    driver, _ = http_app
    ack = driver.slash_command("U0ALICE", "help", channel_id="C0GENERAL")
    assert ack.payload() == {"text": "Usage: /hook-secret add"}
    (shown,) = standin.ephemerals("U0ALICE", "C0GENERAL")
    assert (shown["text"], shown["source"]) == ("Usage: /hook-secret add", "ack")
    assert standin.messages("C0GENERAL") == []


def test_guests_from_other_workspaces_carry_their_team(
    http_app: tuple[SlackDriver, dict[str, Any]],
) -> None:
    """A Slack Connect user's command carries their own team id, as Slack sends it."""
    driver, seen = http_app
    driver.slash_command("U0GUEST", "help")
    assert (seen["command"]["team_id"], seen["command"]["team_domain"]) == ("T0OTHER", "external")


def test_bad_or_stale_signatures_get_401(http_app: tuple[SlackDriver, dict[str, Any]]) -> None:
    """A tampered body, a wrong secret or a stale timestamp are refused with 401."""
    driver, seen = http_app
    body = b"command=%2Fhook-secret&text=list&user_id=U0ALICE&team_id=T0TEAM&trigger_id=1"
    headers = driver.signed_headers(body)
    assert driver.post_raw(body + b"&x=1", headers).status == 401
    forged = dict(headers, **{"X-Slack-Signature": "v0=" + "0" * 64})
    assert driver.post_raw(body, forged).status == 401
    assert driver.post_signed(body, timestamp=int(time.time()) - 6 * 60).status == 401
    assert (
        driver.post_raw(body, {"Content-Type": "application/x-www-form-urlencoded"}).status == 401
    )
    assert "command" not in seen


def test_view_submission_carries_state_values(
    http_app: tuple[SlackDriver, dict[str, Any]], standin: SlackStandIn
) -> None:
    """The driver builds view.state.values like Slack, and a plain ack closes the modal."""
    driver, seen = http_app
    driver.slash_command("U0ALICE", "add")
    view = standin.wait_for_view("U0ALICE")
    ack = driver.view_submission("U0ALICE", view, {"hook": "01H2", "secret_name": "API_KEY"})
    assert (ack.status, ack.body, ack.problems) == (200, b"", ())
    values = seen["submission"]["view"]["state"]["values"]
    assert values["hook"]["hook"]["selected_option"]["value"] == "01H2"
    assert values["secret_name"]["secret_name"] == {"type": "plain_text_input", "value": "API_KEY"}
    assert values["reason"]["reason"] == {"type": "plain_text_input", "value": None}
    assert seen["submission"]["user"] == {
        "id": "U0ALICE",
        "username": "alice",
        "name": "alice",
        "team_id": "T0TEAM",
    }
    assert standin.open_views == {}


def test_view_submission_errors_keep_the_modal_open(
    http_app: tuple[SlackDriver, dict[str, Any]], standin: SlackStandIn
) -> None:
    """response_action errors keyed by an input block is accepted and leaves the modal open."""
    driver, _ = http_app
    driver.slash_command("U0ALICE", "add")
    view = standin.wait_for_view("U0ALICE")
    ack = driver.view_submission("U0ALICE", view, {"hook": "01H1", "secret_name": "bad"})
    assert ack.payload() == {"response_action": "errors", "errors": {"secret_name": "Invalid name"}}
    assert ack.problems == ()
    assert view["id"] in standin.open_views


def test_a_pick_in_a_dispatching_input_sends_block_actions_from_the_view(
    http_app: tuple[SlackDriver, dict[str, Any]], client: WebClient, standin: SlackStandIn
) -> None:
    """A select in an input block with `dispatch_action: true` sends block_actions when an
    option is chosen, with the view (its state holding the pick); without the flag, Slack
    sends nothing and the driver raises."""
    driver, seen = http_app
    quiet = client.views_open(trigger_id=standin.issue_trigger_id("U0ALICE"), view=_modal())
    with pytest.raises(LookupError, match="dispatch_action"):
        driver.view_action("U0ALICE", quiet["view"], "hook", "01H2")
    dispatching = _modal()
    dispatching["blocks"][0]["dispatch_action"] = True
    view = client.views_open(trigger_id=standin.issue_trigger_id("U0ALICE"), view=dispatching)
    ack = driver.view_action("U0ALICE", view["view"], "hook", "01H2")
    assert (ack.status, ack.problems) == (200, ())
    pick = seen["pick"]
    assert pick["type"] == "block_actions" and "trigger_id" in pick
    assert pick["container"] == {"type": "view", "view_id": view["view"]["id"]}
    (action,) = pick["actions"]
    assert (action["action_id"], action["block_id"], action["type"]) == (
        "hook",
        "hook",
        "static_select",
    )
    assert action["selected_option"]["value"] == "01H2"
    assert pick["view"]["id"] == view["view"]["id"]
    state = pick["view"]["state"]["values"]
    assert state["hook"]["hook"]["selected_option"]["value"] == "01H2"
    assert state["secret_name"]["secret_name"]["value"] is None


def test_driver_refuses_what_the_slack_client_would_not_submit(standin: SlackStandIn) -> None:
    """Required inputs left empty, too long text or unknown options raise before sending."""
    trigger = standin.issue_trigger_id("U0ALICE")
    view = WebClient(base_url=standin.api_url, token=standin.bot_token).views_open(
        trigger_id=trigger, view=_modal()
    )["view"]
    with SlackDriver(standin, "http://127.0.0.1:9/", SECRET) as driver:
        for values in (
            {"hook": "01H1"},
            {"hook": "nope", "secret_name": "A"},
            {"hook": "01H1", "secret_name": "A", "reason": "x" * 21},
            {"hook": "01H1", "secret_name": "A", "unknown": "x"},
        ):
            with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
                driver.view_submission("U0ALICE", view, values)


def test_block_action_and_respond_replace_the_message(
    http_app: tuple[SlackDriver, dict[str, Any]], client: WebClient, standin: SlackStandIn
) -> None:
    """A button click carries container, trigger and response_url; respond() edits the message."""
    driver, seen = http_app
    client.chat_postMessage(channel="C0GENERAL", text="Request req-1", blocks=_BUTTONS)
    (message,) = standin.messages("C0GENERAL")
    ack = driver.block_action(
        "U0BOB", "approve_request", None, message=message, channel_id="C0GENERAL"
    )
    assert ack.status == 200
    standin.wait_for_message("C0GENERAL", lambda m: m["text"] == "Approved by <@U0BOB>")
    body = seen["action"]
    assert body["actions"][0]["value"] == "req-1"
    assert body["actions"][0]["block_id"] == "decide"
    assert body["container"] == {
        "type": "message",
        "message_ts": message["ts"],
        "channel_id": "C0GENERAL",
        "is_ephemeral": False,
    }
    assert body["trigger_id"]
    assert body["channel"]["id"] == "C0GENERAL"


def test_block_suggestion_validates_options(standin: SlackStandIn) -> None:
    """An options load is signed and delivered; Slack's limits on the answer are reported."""
    app = App(
        client=WebClient(base_url=standin.api_url, token=standin.bot_token), signing_secret=SECRET
    )

    @app.options("hook")
    def options(ack: Ack, body: dict[str, Any]) -> None:
        label = "x" * 76 if body["value"] == "long" else body["value"]
        ack(options=[{"text": {"type": "plain_text", "text": label}, "value": "01H1"}])

    server = make_server(
        "127.0.0.1",
        0,
        SlackRequestHandler(app),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        with SlackDriver(
            standin, f"http://127.0.0.1:{server.server_port}/slack/events", SECRET
        ) as driver:
            view = {"id": "V1", "blocks": []}
            fine = driver.block_suggestion("U0ALICE", "hook", "hook", "log", view)
            assert fine.json()["options"][0]["text"]["text"] == "log"
            assert fine.problems == ()
            long = driver.block_suggestion("U0ALICE", "hook", "hook", "long", view)
            assert long.problems == (
                "[ERROR] must be less than 76 characters [json-pointer:/options/0/text/text]",
            )
    finally:
        server.shutdown()
        server.server_close()


# --- Socket Mode ---------------------------------------------------------------------


def test_connections_open_needs_the_app_token(client: WebClient, standin: SlackStandIn) -> None:
    """apps.connections.open gives a ws:// URL for the app-level token only."""
    url = WebClient(base_url=standin.api_url).apps_connections_open(app_token=APP_TOKEN)["url"]
    assert url.startswith("ws://127.0.0.1:")
    refused = _error(lambda: client.apps_connections_open(app_token=standin.bot_token))
    assert refused["error"] == "not_allowed_token_type"


def test_socket_mode_round_trip(standin: SlackStandIn) -> None:
    """Over Socket Mode, Bolt's builtin client acks commands, submissions and clicks."""
    seen: dict[str, Any] = {}
    app = _bare_app(standin, seen)
    handler = SocketModeHandler(app, APP_TOKEN)
    handler.connect()  # type: ignore[no-untyped-call]  # slack_bolt leaves connect() unannotated
    try:
        standin.socket_mode.wait_connected()
        driver = SlackDriver(standin, socket_mode=True)
        assert driver.slash_command("U0ALICE", "add").status == 200
        view = standin.wait_for_view("U0ALICE")
        errors = driver.view_submission("U0ALICE", view, {"hook": "01H1", "secret_name": "bad"})
        assert errors.payload()["errors"] == {"secret_name": "Invalid name"}
        done = driver.view_submission("U0ALICE", view, {"hook": "01H1", "secret_name": "OK"})
        assert (done.status, done.body) == (200, b"")
        assert standin.open_views == {}
        message = WebClient(base_url=standin.api_url, token=standin.bot_token).chat_postMessage(
            channel="C0GENERAL", text="Request", blocks=_BUTTONS
        )["message"]
        clicked = driver.block_action(
            "U0BOB", "approve_request", None, message=message, channel_id="C0GENERAL"
        )
        assert clicked.ok
        standin.wait_for_message("C0GENERAL", lambda m: m["text"].startswith("Approved"))
        envelope_types = [e["type"] for e in standin.socket_mode.envelopes]
        assert envelope_types == ["slash_commands", "interactive", "interactive", "interactive"]
        assert {a.envelope_id for a in standin.socket_mode.acks} == {
            e["envelope_id"] for e in standin.socket_mode.envelopes
        }
        assert json.loads(standin.socket_mode.acks[1].raw)["payload"]["response_action"] == "errors"
    finally:
        # The builtin client's close() waits out a 3 s socket read; nothing needs to wait for it.
        threading.Thread(target=handler.close, daemon=True).start()


def test_socket_mode_spreads_envelopes_over_connections(standin: SlackStandIn) -> None:
    """With two live connections, consecutive envelopes go to different ones, as on Slack."""
    seen: dict[str, Any] = {}
    handlers = [SocketModeHandler(_bare_app(standin, seen), APP_TOKEN) for _ in range(2)]
    for handler in handlers:
        handler.connect()  # type: ignore[no-untyped-call]  # slack_bolt leaves connect() unannotated
    try:
        standin.socket_mode.wait_connected(count=2)
        driver = SlackDriver(standin, socket_mode=True)
        acks = [driver.slash_command("U0ALICE", "help") for _ in range(2)]
        assert [a.payload() for a in acks] == [{"text": "Usage: /hook-secret add"}] * 2
        assert len({a.connection for a in standin.socket_mode.acks}) == 2
        assert standin.socket_mode.connection_count == 2
    finally:
        for handler in handlers:
            threading.Thread(target=handler.close, daemon=True).start()


def test_clicks_on_ephemeral_messages_carry_no_message(
    http_app: tuple[SlackDriver, dict[str, Any]], client: WebClient, standin: SlackStandIn
) -> None:
    """A click on an ephemeral message has container.is_ephemeral and no message, like Slack."""
    driver, seen = http_app
    client.chat_postEphemeral(channel="C0GENERAL", user="U0BOB", text="Decide", blocks=_BUTTONS)
    (shown,) = standin.ephemerals("U0BOB")
    driver.block_action("U0BOB", "approve_request", None, message=shown, channel_id="C0GENERAL")
    standin.wait_for_ephemeral("U0BOB", lambda m: m["text"] == "Approved by <@U0BOB>")
    assert seen["action"]["container"]["is_ephemeral"] is True
    assert "message" not in seen["action"]
