"""manifest.yaml: valid for Slack, and in agreement with what the app registers and calls."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import FormatChecker
from jsonschema.validators import validator_for

from bot.slack import ids
from tests.harness.inprocess import APPROVALS, ORIGIN, REQUESTER, Bot, running_bot

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "manifest.yaml"
# Slack's manifest schema and Web API method descriptions (tests/reference/README.md: sources).
REFERENCE = Path(__file__).parent / "reference" / "slack"
SCHEMA = REFERENCE / "manifest.schema.1.0.0.json"
METHODS = REFERENCE / "methods"
# Web API methods as slack_sdk spells them (``chat_postMessage`` → ``chat.postMessage``).
WEB_API_CALL = re.compile(
    r"\b(auth_test|apps_connections_open|chat_[a-zA-Z]+|conversations_[a-zA-Z]+|"
    r"usergroups_[a-z_]+|users_[a-zA-Z]+|views_[a-zA-Z]+)\b"
)
# Called with the app-level token (Socket Mode): its scope is connections:write, not a bot scope.
APP_TOKEN_METHODS = {"apps.connections.open"}
HTTP_URL = "https://example.com/slack/events"


def _manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return data


def test_manifest_is_valid_for_slacks_schema() -> None:
    """manifest.yaml validates against Slack's app manifest JSON Schema."""
    schema = json.loads(SCHEMA.read_text())
    validator = validator_for(schema)(schema, format_checker=FormatChecker())
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(_manifest())
    ]
    assert problems == []


def test_manifest_serves_http_mode_at_slack_events() -> None:
    """The command, interactivity and options URLs all point at /slack/events; no Socket Mode."""
    manifest = _manifest()
    (command,) = manifest["features"]["slash_commands"]
    interactivity = manifest["settings"]["interactivity"]
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert interactivity["is_enabled"] is True
    assert {
        command["url"],
        interactivity["request_url"],
        interactivity["message_menu_options_url"],
    } == {HTTP_URL}
    assert command["usage_hint"] == "add|update|remove|list [HOOK] [NAME]"
    assert command["description"]


def test_manifest_command_is_the_one_the_app_registers() -> None:
    """The manifest's only slash command is ids.COMMAND."""
    commands = [c["command"] for c in _manifest()["features"]["slash_commands"]]
    assert commands == [ids.COMMAND]


def _interactive(bot: Bot, kind: str, **fields: Any) -> int:
    """Send one interaction payload as Slack would; the HTTP status of the ack."""
    user = {"id": REQUESTER, "username": "rita", "name": "rita", "team_id": bot.slack.team_id}
    payload = {
        "type": kind,
        "team": {"id": bot.slack.team_id, "domain": bot.slack.team_domain},
        "user": user,
        "api_app_id": bot.slack.app_id,
        "token": "legacy-verification-token",
        "is_enterprise_install": False,
        **fields,
    }
    return bot.driver.send("interactive", payload).status


def _submission(bot: Bot, callback_id: str) -> int:
    blocks = [ids.BLOCK_HOOK, ids.BLOCK_SECRET_NAME, ids.BLOCK_SECRET_VALUE, ids.BLOCK_REASON]
    values = {b: {b: {"type": "plain_text_input", "value": None}} for b in blocks}
    values[ids.BLOCK_COMMENT] = {ids.BLOCK_COMMENT: {"type": "plain_text_input", "value": None}}
    view = {
        "id": "V0TEST",
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": "hsr_0000000000000000",
        "state": {"values": values},
        "blocks": [],
    }
    return _interactive(bot, "view_submission", view=view, trigger_id="1.2.3", response_urls=[])


def _click(bot: Bot, action_id: str) -> int:
    action = {"action_id": action_id, "block_id": "decision", "type": "button", "value": "hsr_x"}
    return _interactive(
        bot,
        "block_actions",
        actions=[action],
        container={"type": "message", "message_ts": "1.1", "channel_id": APPROVALS},
        channel={"id": APPROVALS, "name": "secret-approvals"},
        trigger_id="1.2.3",
        response_url=bot.slack.issue_response_url(REQUESTER, APPROVALS),
    )


def _options(bot: Bot, action_id: str) -> int:
    return _interactive(
        bot,
        "block_suggestion",
        action_id=action_id,
        block_id=action_id,
        value="",
        container={"type": "view", "view_id": "V0TEST"},
        view={"id": "V0TEST", "type": "modal", "callback_id": ids.CALLBACK_ADD, "blocks": []},
    )


def test_the_app_handles_exactly_the_contract_ids(sqlite_url: str) -> None:
    """Bolt answers every id in bot/ids.py (and the manifest's command); others are unhandled."""
    unhandled = 404  # what Bolt answers when no listener matched
    (command,) = _manifest()["features"]["slash_commands"]
    with running_bot(sqlite_url) as bot:
        slash = bot.driver.slash_command(
            REQUESTER, "help", channel_id=ORIGIN, command=command["command"]
        )
        other = bot.driver.slash_command(REQUESTER, "help", channel_id=ORIGIN, command="/other")
        assert (slash.status, other.status) == (200, unhandled)
        callbacks = [*ids.REQUEST_CALLBACKS, ids.CALLBACK_APPROVE, ids.CALLBACK_REJECT]
        assert {c: _submission(bot, c) for c in [*callbacks, "other_callback"]} == {
            **dict.fromkeys(callbacks, 200),
            "other_callback": unhandled,
        }
        actions = [ids.ACTION_APPROVE, ids.ACTION_REJECT, ids.LIST_PICKER]
        assert {a: _click(bot, a) for a in [*actions, "other_action"]} == {
            **dict.fromkeys(actions, 200),
            "other_action": unhandled,
        }
        assert (_options(bot, ids.BLOCK_HOOK), _options(bot, "other_select")) == (200, unhandled)
        bot.drain()


def _methods_called_by_the_bot() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "bot").rglob("*.py"):
        found |= {m.replace("_", ".") for m in WEB_API_CALL.findall(path.read_text())}
    return found


def _optional_scopes() -> set[str]:
    """The scopes the manifest offers commented out, for the operator to grant."""
    return set(re.findall(r"^ {6}# - ([a-z:]+)$", MANIFEST.read_text(), re.MULTILINE))


def test_the_optional_history_scopes_are_offered_commented_out() -> None:
    """The read-back of a post a crash cut off works only with the history scopes, which the
    manifest offers commented out; uncommented, the manifest is still valid."""
    assert _optional_scopes() == {"channels:history", "groups:history", "im:history"}
    spec = json.loads((METHODS / "conversations.history.json").read_text())
    assert _optional_scopes() <= set(spec["scope"]["bot"])
    uncommented = yaml.safe_load(
        re.sub(r"^( {6})# (- [a-z:]+)$", r"\1\2", MANIFEST.read_text(), flags=re.MULTILINE)
    )
    assert set(uncommented["oauth_config"]["scopes"]["bot"]) >= _optional_scopes()
    schema = json.loads(SCHEMA.read_text())
    assert list(validator_for(schema)(schema).iter_errors(uncommented)) == []


def test_manifest_scopes_are_exactly_those_the_bot_calls_need() -> None:
    """Every Web API method the bot calls is covered by a bot scope, and no scope is spare;
    conversations.history is covered by the optional scopes (the bot works without them)."""
    granted = set(_manifest()["oauth_config"]["scopes"]["bot"]) | _optional_scopes()
    methods = _methods_called_by_the_bot() - APP_TOKEN_METHODS
    assert {"chat.postMessage", "views.open", "usergroups.users.list"} <= methods
    used: set[str] = {"commands"}  # the slash command itself
    uncovered = []
    for method in sorted(methods):
        spec = json.loads((METHODS / f"{method}.json").read_text())
        if spec.get("no_scope_required"):
            continue
        accepted = set(spec["scope"]["bot"])
        if not accepted & granted:
            uncovered.append(f"{method} needs one of {sorted(accepted)}")
        used |= accepted & granted
    assert uncovered == []
    assert granted - used == set()
    assert "users:read" not in granted  # the bot never looks people up by id
