"""Slack's side of ``POST /slack/events`` (or Socket Mode): signed requests a user makes."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from standins.slack.blockkit import (
    TEXT_INPUTS,
    validate_options_response,
    validate_view,
)
from standins.slack.records import (
    ACK_DEADLINE,
    FORM,
    JSON,
    STANDIN_KEYS,
    Ack,
)

if TYPE_CHECKING:
    from standins.slack.webapi import SlackStandIn


_Kind = Literal["slash_commands", "interactive"]


class SlackDriver:
    """Plays Slack's side: sends a user's commands and clicks to the bot, signed as Slack signs
    them (HTTP mode, ``app_url`` + ``signing_secret``) or over the stand-in's Socket Mode
    connection (``socket_mode=True``), and applies what Slack would do with the answer."""

    def __init__(
        self,
        standin: SlackStandIn,
        app_url: str | None = None,
        signing_secret: str | None = None,
        *,
        socket_mode: bool = False,
        timeout: float = 10.0,
        verification_token: str = "legacy-verification-token",  # noqa: S107 - any string does
    ) -> None:
        if not socket_mode and (app_url is None or signing_secret is None):
            raise ValueError("HTTP mode needs app_url and signing_secret")
        self.standin = standin
        self.app_url = app_url
        self.socket_mode = socket_mode
        self.timeout = timeout
        self.verification_token = verification_token
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self._http = httpx.Client(timeout=httpx.Timeout(timeout))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SlackDriver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- signing and raw requests ---------------------------------------------

    def sign(self, body: bytes, timestamp: int) -> str:
        """``v0=`` + HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing secret."""
        if self._verifier is None:
            raise RuntimeError("no signing secret")
        signature = self._verifier.generate_signature(timestamp=str(timestamp), body=body)
        if signature is None:
            raise RuntimeError("could not sign")
        return signature

    def signed_headers(
        self, body: bytes, *, timestamp: int | None = None, content_type: str = FORM
    ) -> dict[str, str]:
        """The headers Slack sends with a body: timestamp, signature, content type."""
        ts = int(time.time()) if timestamp is None else timestamp
        return {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": self.sign(body, ts),
        }

    def post_raw(self, body: bytes, headers: Mapping[str, str]) -> Ack:
        """POST exactly these bytes and headers to the app URL (hostile tests)."""
        if self.app_url is None:
            raise RuntimeError("no app_url")
        started = time.monotonic()
        response = self._http.post(self.app_url, content=body, headers=dict(headers))
        elapsed = time.monotonic() - started
        problems = (
            ()
            if elapsed <= ACK_DEADLINE
            else (f"operation_timeout: answered after {elapsed:.1f} s",)
        )
        return Ack(
            response.status_code,
            response.content,
            {k.lower(): v for k, v in response.headers.items()},
            elapsed,
            problems,
        )

    def post_signed(self, body: bytes, *, timestamp: int | None = None) -> Ack:
        """POST a form body signed as Slack would sign it."""
        return self.post_raw(body, self.signed_headers(body, timestamp=timestamp))

    def send(self, kind: _Kind, payload: JSON) -> Ack:
        """Deliver a slash command (form fields) or interaction payload, unchanged."""
        if self.socket_mode:
            return self.standin.socket_mode.deliver(
                kind,
                payload,
                accepts_response_payload=kind == "slash_commands"
                or payload.get("type") in ("view_submission", "block_suggestion"),
            )
        if kind == "slash_commands":
            body = urlencode(payload).encode()
        else:
            body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.post_signed(body)

    # -- payload parts ----------------------------------------------------------

    def _team(self, team_id: str | None) -> tuple[str, str]:
        team = team_id or self.standin.team_id
        domain = self.standin.team_domain if team == self.standin.team_id else "external"
        return team, domain

    def _common(self, user_id: str, team_id: str | None, kind: str) -> JSON:
        team, domain = self._team(team_id or self.standin.user_team(user_id))
        name = self.standin.user_name(user_id)
        return {
            "type": kind,
            "team": {"id": team, "domain": domain},
            "user": {"id": user_id, "username": name, "name": name, "team_id": team},
            "api_app_id": self.standin.app_id,
            "token": self.verification_token,
            "enterprise": None,
            "is_enterprise_install": False,
        }

    # -- what users do ----------------------------------------------------------

    def slash_command_fields(
        self,
        user_id: str,
        text: str,
        *,
        channel_id: str = "C0GENERAL",
        command: str = "/hook-secret",
        team_id: str | None = None,
    ) -> dict[str, str]:
        """The form fields Slack sends for a slash command (fresh trigger id, response URL)."""
        team, domain = self._team(team_id or self.standin.user_team(user_id))
        return {
            "token": self.verification_token,
            "team_id": team,
            "team_domain": domain,
            "channel_id": channel_id,
            "channel_name": self.standin.channel_name(channel_id),
            "user_id": user_id,
            "user_name": self.standin.user_name(user_id),
            "command": command,
            "text": text,
            "api_app_id": self.standin.app_id,
            "is_enterprise_install": "false",
            "response_url": self.standin.issue_response_url(user_id, channel_id),
            "trigger_id": self.standin.issue_trigger_id(user_id),
        }

    def slash_command(
        self,
        user_id: str,
        text: str,
        *,
        channel_id: str = "C0GENERAL",
        command: str = "/hook-secret",
        team_id: str | None = None,
    ) -> Ack:
        """The user runs ``{command} {text}`` in a channel; an answer with text is shown."""
        fields = self.slash_command_fields(
            user_id, text, channel_id=channel_id, command=command, team_id=team_id
        )
        ack = self.send("slash_commands", fields)
        content = ack.payload() if ack.ok else {}
        if content.get("text") or content.get("blocks"):
            if content.get("response_type") == "in_channel":
                self.standin.post_as_bot(channel_id, content)
            else:
                self.standin.show_ephemeral(user_id, channel_id, content, source="ack")
        return ack

    def view_submission(
        self,
        user_id: str,
        view: JSON,
        values: Mapping[str, Any],
        *,
        team_id: str | None = None,
        validate: bool = True,
    ) -> Ack:
        """The user fills the modal's inputs (``values`` by block id) and presses submit.

        A value is a string (text inputs; a static select's option value), ``None`` for
        empty, or a dict merged into the element state (``{"selected_option": {...}}``).
        With ``validate``, inputs the Slack client would refuse (required but empty, over
        ``max_length``, an option not in the list) raise ``ValueError``."""
        current = self.standin.open_views.get(view.get("id", ""), view)
        submitted = copy.deepcopy(current)
        submitted["state"] = {"values": build_state_values(current, values, validate=validate)}
        payload = self._common(user_id, team_id, "view_submission")
        payload.update(
            trigger_id=self.standin.issue_trigger_id(user_id), view=submitted, response_urls=[]
        )
        ack = self.send("interactive", payload)
        return self._after_submission(user_id, current, ack)

    def _after_submission(self, user_id: str, view: JSON, ack: Ack) -> Ack:
        if not ack.ok:
            return ack
        answer = ack.payload()
        action = answer.get("response_action")
        problems: list[str] = []
        view_id = str(view.get("id", ""))
        if action in (None, "clear"):
            if answer and action is None:
                problems.append("unexpected body without response_action")
            self.standin.close_view(view_id)
        elif action == "errors":
            inputs = {
                b.get("block_id")
                for b in view.get("blocks", [])
                if isinstance(b, dict) and b.get("type") == "input"
            }
            errors = answer.get("errors")
            if not isinstance(errors, dict) or not errors:
                problems.append("response_action errors without errors")
            else:
                problems += [
                    f"errors key {k!r} is not an input block" for k in errors if k not in inputs
                ]
        elif action in ("update", "push"):
            new_view = answer.get("view")
            view_problems = validate_view(new_view, pointer="/view")
            problems += view_problems
            if not view_problems and isinstance(new_view, dict):
                if action == "update" and view_id in self.standin.open_views:
                    self.standin.replace_view(view_id, new_view)
                else:
                    self.standin.push_view(user_id, new_view, previous=view_id)
        else:
            problems.append(f"unknown response_action {action!r}")
        return Ack(ack.status, ack.body, ack.headers, ack.elapsed, (*ack.problems, *problems))

    def view_closed(self, user_id: str, view: JSON, *, team_id: str | None = None) -> Ack:
        """The user dismisses the modal; Slack sends this only when the view asked for it
        with ``notify_on_close`` (otherwise the modal just closes and the app hears nothing)."""
        if not view.get("notify_on_close"):
            raise AssertionError("Slack sends view_closed only for a view with notify_on_close")
        self.standin.close_view(str(view.get("id", "")))
        payload = self._common(user_id, team_id, "view_closed")
        payload.update(view=copy.deepcopy(view), is_cleared=False)
        return self.send("interactive", payload)

    def block_action(
        self,
        user_id: str,
        action_id: str,
        value: str | None = None,
        *,
        message: JSON,
        channel_id: str,
        team_id: str | None = None,
    ) -> Ack:
        """The user clicks the element ``action_id`` of a message (``value``: the button's
        value unless given)."""
        block, element = _find_element(message.get("blocks", []), action_id)
        action: JSON = {
            "action_id": action_id,
            "block_id": block.get("block_id"),
            "type": element.get("type", "button"),
            "action_ts": f"{time.time():.6f}",
        }
        if element.get("type") == "button":
            action["text"] = element.get("text")
            action["value"] = element.get("value") if value is None else value
            if element.get("style"):
                action["style"] = element["style"]
        else:
            action.update(_element_state(element, value, validate=False))
        is_ephemeral = bool(message.get("is_ephemeral"))
        payload = self._common(user_id, team_id, "block_actions")
        payload.update(
            container={
                "type": "message",
                "message_ts": message.get("ts"),
                "channel_id": channel_id,
                "is_ephemeral": is_ephemeral,
            },
            trigger_id=self.standin.issue_trigger_id(user_id),
            channel={"id": channel_id, "name": self.standin.channel_name(channel_id)},
            state={"values": {}},
            response_url=self.standin.issue_response_url(
                user_id, channel_id, message_ts=message.get("ts"), is_ephemeral=is_ephemeral
            ),
            actions=[action],
        )
        if not is_ephemeral:
            # Slack sends the clicked message only for ordinary messages, not ephemeral ones.
            payload["message"] = {
                k: copy.deepcopy(v) for k, v in message.items() if k not in STANDIN_KEYS
            }
        return self.send("interactive", payload)

    def view_action(
        self,
        user_id: str,
        view: JSON,
        action_id: str,
        value: Any,
        *,
        team_id: str | None = None,
    ) -> Ack:
        """The user picks ``value`` in the element ``action_id`` of an open modal. Slack sends
        this only for elements outside input blocks, or in one with ``dispatch_action: true``;
        otherwise nothing reaches the app, and this raises ``LookupError``."""
        current = self.standin.open_views.get(view.get("id", ""), view)
        block, element = _find_element(current.get("blocks", []), action_id)
        if block.get("type") == "input" and block.get("dispatch_action") is not True:
            raise LookupError(f"{action_id}: an input without dispatch_action sends no action")
        action: JSON = {
            "action_id": action_id,
            "block_id": block.get("block_id"),
            "action_ts": f"{time.time():.6f}",
            **_element_state(element, value, validate=True),
        }
        # The view as Slack sends it along: its inputs' state, the pick included.
        picked = {str(block["block_id"]): value} if block.get("type") == "input" else {}
        shown = copy.deepcopy(current)
        shown["state"] = {"values": build_state_values(current, picked, validate=False)}
        payload = self._common(user_id, team_id, "block_actions")
        payload.update(
            container={"type": "view", "view_id": current.get("id")},
            trigger_id=self.standin.issue_trigger_id(user_id),
            view=shown,
            actions=[action],
        )
        return self.send("interactive", payload)

    def block_suggestion(
        self,
        user_id: str,
        action_id: str,
        block_id: str,
        value: str,
        view: JSON,
        *,
        team_id: str | None = None,
    ) -> Ack:
        """The user types ``value`` into an external select of a modal (options load)."""
        payload = self._common(user_id, team_id, "block_suggestion")
        payload.update(
            container={"type": "view", "view_id": view.get("id")},
            action_id=action_id,
            block_id=block_id,
            value=value,
            view=copy.deepcopy(view),
        )
        ack = self.send("interactive", payload)
        if ack.ok:
            problems = validate_options_response(ack.payload())
            if problems:
                return Ack(
                    ack.status, ack.body, ack.headers, ack.elapsed, (*ack.problems, *problems)
                )
        return ack


SlackClientSim = SlackDriver
"""The name the project brief uses for the driver."""


def _find_element(blocks: Sequence[Any], action_id: str) -> tuple[JSON, JSON]:
    for block in blocks:
        if not isinstance(block, dict):
            continue
        candidates: list[Any] = [block.get("accessory"), block.get("element")]
        if isinstance(block.get("elements"), list):
            candidates += block["elements"]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block, element
    raise LookupError(f"no element with action_id {action_id!r} in the message")


def _iter_options(element: JSON) -> Iterator[JSON]:
    yield from element.get("options") or []
    for group in element.get("option_groups") or []:
        yield from group.get("options") or []


# Pickers whose state is one value, or a list, under a key named after what they pick.
_SINGLE_PICKS: Final = {
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
}
_MULTI_PICKS: Final = {
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
}


def _element_state(element: JSON, given: Any, *, validate: bool) -> JSON:
    kind = str(element.get("type"))
    if isinstance(given, dict):
        return {"type": kind, **copy.deepcopy(given)}
    if kind in TEXT_INPUTS:
        return {"type": kind, "value": _text_value(element, given, validate=validate)}
    if kind in ("static_select", "external_select", "radio_buttons"):
        return {"type": kind, "selected_option": _option(element, given, validate=validate)}
    if kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        chosen = [] if given is None else [given] if isinstance(given, str) else list(given)
        return {
            "type": kind,
            "selected_options": [_option(element, v, validate=validate) for v in chosen],
        }
    if kind in _SINGLE_PICKS:
        return {"type": kind, _SINGLE_PICKS[kind]: given}
    if kind in _MULTI_PICKS:
        return {"type": kind, _MULTI_PICKS[kind]: [] if given is None else list(given)}
    return {"type": kind, "value": given}


def _text_value(element: JSON, given: Any, *, validate: bool) -> str | None:
    """A text input's value; ``validate``: refuse what Slack's client would not let through."""
    value = None if given in (None, "") else str(given)
    if not validate or value is None:
        return value
    max_length, min_length = element.get("max_length"), element.get("min_length")
    if isinstance(max_length, int) and len(value) > max_length:
        raise ValueError(f"{element.get('action_id')}: longer than max_length {max_length}")
    if isinstance(min_length, int) and len(value) < min_length:
        raise ValueError(f"{element.get('action_id')}: shorter than min_length {min_length}")
    return value


def _option(element: JSON, value: Any, *, validate: bool) -> JSON | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return copy.deepcopy(value)
    for option in _iter_options(element):
        if option.get("value") == value:
            return copy.deepcopy(option)
    if element.get("type", "").startswith(("external", "multi_external")):
        return {
            "text": {"type": "plain_text", "text": str(value), "emoji": True},
            "value": str(value),
        }
    if validate:
        raise ValueError(f"{element.get('action_id')}: no option with value {value!r}")
    return {"text": {"type": "plain_text", "text": str(value)}, "value": str(value)}


def build_state_values(
    view: JSON, values: Mapping[str, Any], *, validate: bool = True
) -> dict[str, dict[str, JSON]]:
    """``view.state.values`` as Slack builds it from what the user entered, by block id."""
    state: dict[str, dict[str, JSON]] = {}
    inputs = [b for b in view.get("blocks", []) if isinstance(b, dict) and b.get("type") == "input"]
    known = {str(b.get("block_id")) for b in inputs}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"no input blocks {sorted(unknown)} in view (inputs: {sorted(known)})")
    for block in inputs:
        element = block.get("element") or {}
        given = values.get(block["block_id"])
        if validate and given in (None, "", []) and not block.get("optional", False):
            raise ValueError(f"{block['block_id']} is required; Slack would not submit")
        state[block["block_id"]] = {
            str(element.get("action_id")): _element_state(element, given, validate=validate)
        }
    return state
