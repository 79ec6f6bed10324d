"""A local stand-in for Slack: its Web API and response URLs over HTTP, and a driver that sends
signed slash commands and interactions to the bot the way Slack does.

``SlackStandIn`` is what the bot talks to (``WebClient(base_url=standin.api_url)``); it keeps a
small workspace (users, channels, user groups), the messages and modals the bot produced, and
every call it received. ``SlackDriver`` is what talks to the bot: it plays Slack's side of
``POST /slack/events`` (or of Socket Mode, see ``bot.sandbox.slack_socket``) for a given user.
Behaviour follows the verified facts in the project's Slack reference: trigger ids die after 3 s
and work once, response URLs work 5 times in 30 minutes, Block Kit limits are enforced with
Slack's error shapes.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from slack_sdk.signature import SignatureVerifier

if TYPE_CHECKING:
    from bot.sandbox.slack_socket import SocketModeStandIn

JSON = dict[str, Any]
_T = TypeVar("_T")

TRIGGER_TTL: Final = 3.0
RESPONSE_URL_USES: Final = 5
RESPONSE_URL_TTL: Final = 30 * 60.0
ACK_DEADLINE: Final = 3.0

MAX_MESSAGE_TEXT: Final = 40_000
MAX_MESSAGE_BLOCKS: Final = 50
MAX_VIEW_BLOCKS: Final = 100

_FORM: Final = "application/x-www-form-urlencoded"
_JSON_DECODED_ARGS: Final = ("view", "blocks", "attachments", "metadata")
_ID_CHARS: Final = string.ascii_uppercase + string.digits
# Keys the stand-in adds to its records of messages (ephemeral ones); Slack never sends them.
_STANDIN_KEYS: Final = frozenset({"is_ephemeral", "source", "channel"})


def _new_id(prefix: str, length: int = 10) -> str:
    return prefix + "".join(secrets.choice(_ID_CHARS) for _ in range(length))


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


# ---------------------------------------------------------------------------
# Block Kit validation: the limits Slack enforces, reported in Slack's message format.


class _Problems:
    """Collects ``[ERROR] … [json-pointer:…]`` lines as Slack reports them."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str, pointer: str) -> None:
        self.items.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    def max_len(self, value: object, limit: int, pointer: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.add(f"must be less than {limit + 1} characters", pointer)

    def max_items(self, value: object, limit: int, pointer: str) -> None:
        if isinstance(value, list) and len(value) > limit:
            self.add(f"no more than {limit} items allowed", pointer)


def _check_text(
    p: _Problems,
    obj: object,
    ptr: str,
    *,
    limit: int,
    plain_only: bool = False,
    required: bool = True,
) -> None:
    if obj is None:
        if required:
            field_name = ptr.rsplit("/", 1)[-1]
            p.add(f"missing required field: {field_name}", ptr.rsplit("/", 1)[0] or "/")
        return
    if not isinstance(obj, dict):
        p.add("must be an object", ptr)
        return
    kind = obj.get("type")
    if plain_only and kind != "plain_text":
        p.add("must be a plain_text text object", f"{ptr}/type")
    elif kind not in ("plain_text", "mrkdwn"):
        p.add("must be one of 'plain_text', 'mrkdwn'", f"{ptr}/type")
    text = obj.get("text")
    if not isinstance(text, str):
        p.add("missing required field: text", ptr)
        return
    if not text:
        p.add("must be more than 0 characters", f"{ptr}/text")
    p.max_len(text, limit, f"{ptr}/text")


def _check_option(p: _Problems, option: object, ptr: str, *, plain_only: bool = True) -> None:
    if not isinstance(option, dict):
        p.add("must be an object", ptr)
        return
    _check_text(p, option.get("text"), f"{ptr}/text", limit=75, plain_only=plain_only)
    value = option.get("value")
    if not isinstance(value, str) or not value:
        p.add("missing required field: value", ptr)
    p.max_len(value, 150, f"{ptr}/value")
    _check_text(
        p,
        option.get("description"),
        f"{ptr}/description",
        limit=75,
        plain_only=plain_only,
        required=False,
    )


def _check_options(
    p: _Problems, element: JSON, ptr: str, *, limit: int, required: bool, plain_only: bool = True
) -> None:
    options, groups = element.get("options"), element.get("option_groups")
    if options is None and groups is None:
        if required:
            p.add("must provide either options or option_groups", ptr)
        return
    if options is not None:
        if not isinstance(options, list):
            p.add("must be an array", f"{ptr}/options")
            return
        p.max_items(options, limit, f"{ptr}/options")
        for i, option in enumerate(options):
            _check_option(p, option, f"{ptr}/options/{i}", plain_only=plain_only)
    if isinstance(groups, list):
        p.max_items(groups, 100, f"{ptr}/option_groups")
        for g, group in enumerate(groups):
            gptr = f"{ptr}/option_groups/{g}"
            if not isinstance(group, dict):
                p.add("must be an object", gptr)
                continue
            _check_text(p, group.get("label"), f"{gptr}/label", limit=75, plain_only=True)
            group_options = group.get("options")
            p.max_items(group_options, 100, f"{gptr}/options")
            for i, option in enumerate(group_options if isinstance(group_options, list) else []):
                _check_option(p, option, f"{gptr}/options/{i}")


_TEXT_INPUTS: Final = frozenset(
    {"plain_text_input", "email_text_input", "url_text_input", "number_input"}
)
_SELECTS: Final = frozenset(
    {
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
    }
)
_OTHER_ELEMENTS: Final = frozenset(
    {
        "button",
        "overflow",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "checkboxes",
        "radio_buttons",
        "rich_text_input",
        "file_input",
        "image",
        "workflow_button",
    }
)
_INPUT_ELEMENTS: Final = (_TEXT_INPUTS | _SELECTS) | {
    "datepicker",
    "timepicker",
    "datetimepicker",
    "checkboxes",
    "radio_buttons",
    "rich_text_input",
    "file_input",
}
_BLOCK_TYPES: Final = frozenset(
    {
        "section",
        "divider",
        "image",
        "actions",
        "context",
        "input",
        "header",
        "rich_text",
        "video",
        "file",
        "markdown",
        "context_actions",
    }
)


def _check_element(p: _Problems, element: object, ptr: str) -> None:
    if not isinstance(element, dict):
        p.add("must be an object", ptr)
        return
    kind = element.get("type")
    if kind not in _TEXT_INPUTS | _SELECTS | _OTHER_ELEMENTS:
        p.add(f"unsupported type: {kind}", f"{ptr}/type")
        return
    p.max_len(element.get("action_id"), 255, f"{ptr}/action_id")
    _check_text(
        p,
        element.get("placeholder"),
        f"{ptr}/placeholder",
        limit=150,
        plain_only=True,
        required=False,
    )
    if kind == "button":
        _check_text(p, element.get("text"), f"{ptr}/text", limit=75, plain_only=True)
        p.max_len(element.get("value"), 2000, f"{ptr}/value")
        p.max_len(element.get("url"), 3000, f"{ptr}/url")
        style = element.get("style")
        if style is not None and style not in ("primary", "danger"):
            p.add("must be one of 'primary', 'danger'", f"{ptr}/style")
    elif kind in ("static_select", "multi_static_select"):
        _check_options(p, element, ptr, limit=100, required=True)
    elif kind in ("checkboxes", "radio_buttons"):
        # Checkbox and radio options may use mrkdwn text.
        _check_options(p, element, ptr, limit=10, required=True, plain_only=False)
    elif kind == "overflow":
        _check_options(p, element, ptr, limit=5, required=True)
    elif kind in ("external_select", "multi_external_select"):
        initial = element.get("initial_option")
        if initial is not None:
            _check_option(p, initial, f"{ptr}/initial_option")
    elif kind == "plain_text_input":
        for key in ("min_length", "max_length"):
            length = element.get(key)
            if length is None:
                continue
            if not isinstance(length, int) or isinstance(length, bool):
                p.add("must be an integer", f"{ptr}/{key}")
            elif length > 3000:
                p.add("must be less than or equal to 3000", f"{ptr}/{key}")
            elif length < (1 if key == "max_length" else 0):
                p.add("must be greater than 0", f"{ptr}/{key}")
        p.max_len(element.get("initial_value"), 3000, f"{ptr}/initial_value")


def _check_block(p: _Problems, block: object, ptr: str, *, surface: str) -> None:
    if not isinstance(block, dict):
        p.add("must be an object", ptr)
        return
    kind = block.get("type")
    if kind not in _BLOCK_TYPES:
        p.add(f"unsupported type: {kind}", f"{ptr}/type")
        return
    p.max_len(block.get("block_id"), 255, f"{ptr}/block_id")
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            p.add("must provide either text or fields", ptr)
        _check_text(p, text, f"{ptr}/text", limit=3000, required=False)
        p.max_items(fields, 10, f"{ptr}/fields")
        for i, item in enumerate(fields if isinstance(fields, list) else []):
            _check_text(p, item, f"{ptr}/fields/{i}", limit=2000)
        if block.get("accessory") is not None:
            _check_element(p, block["accessory"], f"{ptr}/accessory")
    elif kind == "header":
        _check_text(p, block.get("text"), f"{ptr}/text", limit=150, plain_only=True)
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            p.add("must provide at least one element", f"{ptr}/elements")
            return
        p.max_items(elements, 25, f"{ptr}/elements")
        for i, element in enumerate(elements):
            _check_element(p, element, f"{ptr}/elements/{i}")
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            p.add("must provide at least one element", f"{ptr}/elements")
            return
        p.max_items(elements, 10, f"{ptr}/elements")
        for i, element in enumerate(elements):
            if isinstance(element, dict) and element.get("type") in ("plain_text", "mrkdwn"):
                _check_text(p, element, f"{ptr}/elements/{i}", limit=3000)
    elif kind == "input":
        _check_text(p, block.get("label"), f"{ptr}/label", limit=2000, plain_only=True)
        _check_text(
            p, block.get("hint"), f"{ptr}/hint", limit=2000, plain_only=True, required=False
        )
        element = block.get("element")
        if element is None:
            p.add("missing required field: element", ptr)
        elif isinstance(element, dict) and element.get("type") not in _INPUT_ELEMENTS:
            p.add(f"unsupported type for an input block: {element.get('type')}", f"{ptr}/element")
        else:
            _check_element(p, element, f"{ptr}/element")


def _check_blocks(p: _Problems, blocks: object, ptr: str, *, limit: int, surface: str) -> None:
    if not isinstance(blocks, list):
        p.add("must be an array", ptr)
        return
    p.max_items(blocks, limit, ptr)
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        _check_block(p, block, f"{ptr}/{i}", surface=surface)
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str):
            if block_id in seen:
                p.add(f"duplicate block_id: {block_id}", f"{ptr}/{i}/block_id")
            seen.add(block_id)


def validate_view(view: object, *, kind: str = "modal", pointer: str = "/view") -> list[str]:
    """Return Slack's error lines for a view (empty when Slack would accept it)."""
    p = _Problems()
    if not isinstance(view, dict):
        p.add("must be an object", pointer)
        return p.items
    if view.get("type") != kind:
        p.add(f"must be '{kind}'", f"{pointer}/type")
    if kind == "modal":
        _check_text(p, view.get("title"), f"{pointer}/title", limit=24, plain_only=True)
    for button in ("submit", "close"):
        _check_text(
            p, view.get(button), f"{pointer}/{button}", limit=24, plain_only=True, required=False
        )
    blocks = view.get("blocks")
    if blocks is None:
        p.add("missing required field: blocks", pointer)
    else:
        _check_blocks(p, blocks, f"{pointer}/blocks", limit=MAX_VIEW_BLOCKS, surface=kind)
    has_input = isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "input" for b in blocks
    )
    if kind == "modal" and has_input and view.get("submit") is None:
        p.add("must provide a submit property when using input blocks", pointer)
    p.max_len(view.get("private_metadata"), 3000, f"{pointer}/private_metadata")
    p.max_len(view.get("callback_id"), 255, f"{pointer}/callback_id")
    p.max_len(view.get("external_id"), 255, f"{pointer}/external_id")
    return p.items


def validate_message_blocks(blocks: object, *, pointer: str = "/blocks") -> list[str]:
    """Return Slack's error lines for the blocks of a message (empty when acceptable)."""
    p = _Problems()
    _check_blocks(p, blocks, pointer, limit=MAX_MESSAGE_BLOCKS, surface="message")
    return p.items


def validate_options_response(body: object) -> list[str]:
    """Return what Slack would reject in an options-load (block_suggestion) response."""
    p = _Problems()
    if not isinstance(body, dict) or ("options" not in body and "option_groups" not in body):
        p.add("must provide either options or option_groups", "/")
        return p.items
    _check_options(p, body, "", limit=100, required=True)
    return p.items


def _fill_ids(blocks: list[Any]) -> None:
    """Give blocks and elements without ids random ones, as Slack does."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        block.setdefault("block_id", _new_id("", 5))
        elements: list[Any] = []
        for key in ("element", "accessory"):
            if isinstance(block.get(key), dict):
                elements.append(block[key])
        if block.get("type") == "actions" and isinstance(block.get("elements"), list):
            elements.extend(block["elements"])
        for element in elements:
            if isinstance(element, dict) and element.get("type") in (
                _TEXT_INPUTS | _SELECTS | _OTHER_ELEMENTS
            ) - {"image"}:
                element.setdefault("action_id", _new_id("", 5))


# ---------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class ApiCall:
    """One Web API request the stand-in received and what it answered."""

    method: str
    args: JSON
    headers: Mapping[str, str]
    body: bytes
    time: float
    status: int
    response: JSON
    token: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return error if isinstance(error, str) else None


@dataclass(frozen=True)
class ResponsePost:
    """One POST to a response URL issued by the stand-in."""

    url: str
    user_id: str
    channel_id: str
    payload: JSON
    time: float
    status: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def text(self) -> str:
        text = self.payload.get("text")
        return text if isinstance(text, str) else ""

    @property
    def response_type(self) -> str:
        return str(self.payload.get("response_type") or "ephemeral")

    @property
    def replace_original(self) -> bool:
        return _truthy(self.payload.get("replace_original", False))

    @property
    def delete_original(self) -> bool:
        return _truthy(self.payload.get("delete_original", False))


@dataclass
class _User:
    id: str
    name: str
    team_id: str


@dataclass
class _Channel:
    id: str
    name: str
    bot_is_member: bool
    is_im: bool = False
    is_mpim: bool = False
    im_user: str | None = None
    members: set[str] | None = None  # None: everybody is in the channel
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def is_private(self) -> bool:
        return self.id.startswith("G")

    def has_member(self, user_id: str) -> bool:
        if self.is_im:
            return user_id == self.im_user
        return self.members is None or user_id in self.members


@dataclass
class _Trigger:
    user_id: str
    issued_at: float
    ttl: float
    used: bool = False


@dataclass
class _View:
    view: JSON
    user_id: str
    opened_at: float
    is_open: bool = True


@dataclass
class _ResponseUrl:
    id: str
    user_id: str
    channel_id: str
    issued_at: float
    message_ts: str | None
    is_ephemeral: bool
    uses: int = 0
    last_ephemeral_ts: str | None = None


class _ApiError(Exception):
    def __init__(self, error: str, *, messages: Sequence[str] = (), **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.body: JSON = {"ok": False, "error": error, **extra}
        if messages:
            self.body["response_metadata"] = {"messages": list(messages)}


def _invalid(message: str, pointer: str = "/") -> _ApiError:
    return _ApiError("invalid_arguments", messages=[f"[ERROR] {message} [json-pointer:{pointer}]"])


# ---------------------------------------------------------------------------
# The stand-in server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, standin: SlackStandIn) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.standin = standin


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload, extra = self.server.standin._route(self.command, self.path, headers, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the stand-in records every call instead of logging it."""


class SlackStandIn:
    """A workspace on Slack's side, served over HTTP on 127.0.0.1 for the bot to call."""

    def __init__(
        self,
        bot_token: str = "xoxb-test-token",  # noqa: S107 - the stand-in's fake token
        team_id: str = "T0TEAM",
        team_domain: str = "acme",
        bot_user_id: str = "U0BOT",
        app_id: str = "A0APP",
        app_token: str | None = None,
        *,
        bot_id: str = "B0BOT",
        team_name: str = "Acme",
        bot_name: str = "hook-secret-bot",
        trigger_ttl: float = TRIGGER_TTL,
        response_url_uses: int = RESPONSE_URL_USES,
        response_url_ttl: float = RESPONSE_URL_TTL,
    ) -> None:
        self.bot_token = bot_token
        self.team_id = team_id
        self.team_domain = team_domain
        self.team_name = team_name
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.app_token = app_token
        self.trigger_ttl = trigger_ttl
        self.response_url_uses = response_url_uses
        self.response_url_ttl = response_url_ttl

        self._cond = threading.Condition(threading.RLock())
        self._calls: list[ApiCall] = []
        self._responses: list[ResponsePost] = []
        self._users: dict[str, _User] = {}
        self._channels: dict[str, _Channel] = {}
        self._groups: dict[str, tuple[str, list[str]]] = {}
        self._messages: dict[str, list[JSON]] = {}
        self._ephemerals: list[JSON] = []
        self._triggers: dict[str, _Trigger] = {}
        self._views: dict[str, _View] = {}
        self._home_views: dict[str, str] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._ratelimits: dict[str, tuple[int, int]] = {}
        self._seq = itertools.count(1)

        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: SocketModeStandIn | None = None
        self._base_url = ""

        self.add_user(bot_user_id, bot_name)
        self.add_channel("C0GENERAL", "general")  # every workspace has one; the driver's default
        self._handlers: dict[str, Callable[[JSON, str], JSON]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "apps.connections.open": self._apps_connections_open,
        }

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> str:
        """Serve on an ephemeral port of 127.0.0.1; return the Web API base URL."""
        if self._server is not None:
            return self.api_url
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self._base_url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="slack-standin",
            daemon=True,
        )
        self._thread.start()
        if self.app_token is not None:
            # Imported here: websockets is a test extra, the rest of the stand-in works without it.
            from bot.sandbox.slack_socket import SocketModeStandIn

            self._socket = SocketModeStandIn(self)
            self._socket.start()
        return self.api_url

    def stop(self) -> None:
        """Stop serving (Web API, response URLs and Socket Mode)."""
        if self._socket is not None:
            self._socket.stop()
            self._socket = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SlackStandIn:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running stand-in."""
        if not self._base_url:
            raise RuntimeError("SlackStandIn is not started")
        return self._base_url

    @property
    def api_url(self) -> str:
        """The Web API base URL, ending in ``/api/`` (``WebClient(base_url=...)``)."""
        return f"{self.base_url}/api/"

    @property
    def socket_mode(self) -> SocketModeStandIn:
        """The Socket Mode side; exists when the stand-in was built with an ``app_token``."""
        if self._socket is None:
            raise RuntimeError("Socket Mode needs SlackStandIn(app_token=...) and start()")
        return self._socket

    # -- the workspace ------------------------------------------------------

    def add_user(self, user_id: str, name: str, *, team_id: str | None = None) -> None:
        """Add a person (``team_id`` other than the workspace's: a Slack Connect guest)."""
        with self._cond:
            self._users[user_id] = _User(user_id, name, team_id or self.team_id)

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        bot_is_member: bool = True,
        members: Sequence[str] | None = None,
    ) -> None:
        """Add a channel (``G…`` ids are private); ``members=None`` means everyone is in it."""
        with self._cond:
            self._channels[channel_id] = _Channel(
                channel_id,
                name,
                bot_is_member,
                members=None if members is None else set(members),
            )
            self._messages.setdefault(channel_id, [])

    def add_usergroup(self, group_id: str, handle: str, members: list[str]) -> None:
        """Add a user group (``S…``) with its members."""
        with self._cond:
            self._groups[group_id] = (handle, list(members))

    def set_group_members(self, group_id: str, members: list[str]) -> None:
        """Replace a user group's members."""
        with self._cond:
            handle, _ = self._groups[group_id]
            self._groups[group_id] = (handle, list(members))

    def user_name(self, user_id: str) -> str:
        """The user's name in the workspace, or the id lowercased for unknown users."""
        with self._cond:
            user = self._users.get(user_id)
            return user.name if user else user_id.lower()

    def user_team(self, user_id: str) -> str:
        with self._cond:
            user = self._users.get(user_id)
            return user.team_id if user else self.team_id

    def channel_name(self, channel_id: str) -> str:
        with self._cond:
            channel = self._channels.get(channel_id)
        if channel is None:
            return "privategroup"
        return "directmessage" if channel.is_im else channel.name

    def im_channel(self, user_id: str) -> str:
        """The id of the bot's direct-message channel with a user (opened if needed)."""
        with self._cond:
            channel_id = "D" + user_id[1:]
            if channel_id not in self._channels:
                self._channels[channel_id] = _Channel(
                    channel_id, user_id, True, is_im=True, im_user=user_id
                )
                self._messages.setdefault(channel_id, [])
            return channel_id

    # -- what happened ------------------------------------------------------

    @property
    def calls(self) -> list[ApiCall]:
        """Every Web API call received, in order (a copy)."""
        with self._cond:
            return list(self._calls)

    def calls_to(self, method: str) -> list[ApiCall]:
        with self._cond:
            return [c for c in self._calls if c.method == method]

    def mark(self) -> int:
        """The number of calls so far, for ``wait_for(..., after=mark)``."""
        with self._cond:
            return len(self._calls)

    def wait_for(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 5.0,
        *,
        after: int = 0,
    ) -> ApiCall:
        """Block until a call to ``method`` (matching ``predicate``) has arrived; return the
        first such call at index ``after`` or later. Listeners run after ``ack()``, so tests
        wait instead of asserting right after the driver returns."""

        def find() -> ApiCall | None:
            for call in self._calls[after:]:
                if call.method == method and (predicate is None or predicate(call)):
                    return call
            return None

        return self._wait(find, timeout, lambda: f"a {method} call; got {self._summary(method)}")

    def _summary(self, method: str) -> str:
        return repr(
            [
                (c.status, c.response.get("error"), c.args)
                for c in self._calls
                if c.method == method
            ][-5:]
        )

    def _wait(self, find: Callable[[], _T | None], timeout: float, what: Callable[[], str]) -> _T:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = find()
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"waited {timeout} s for {what()}")
                self._cond.wait(remaining)

    def messages(self, channel: str) -> list[JSON]:
        """Current messages of a channel (or of the DM with a user id), oldest first."""
        with self._cond:
            channel_id = self._resolve_channel_id(channel) or channel
            return copy.deepcopy(self._messages.get(channel_id, []))

    def wait_for_message(
        self,
        channel: str,
        predicate: Callable[[JSON], bool] | None = None,
        timeout: float = 5.0,
    ) -> JSON:
        """Block until a message matching ``predicate`` is in the channel; return it."""

        def find() -> JSON | None:
            for message in self.messages(channel):
                if predicate is None or predicate(message):
                    return message
            return None

        return self._wait(
            find, timeout, lambda: f"a message in {channel}: {self.messages(channel)}"
        )

    def ephemerals(self, user_id: str | None = None, channel: str | None = None) -> list[JSON]:
        """Ephemeral messages shown to people: chat.postEphemeral, response URLs and acks."""
        with self._cond:
            channel_id = self._resolve_channel_id(channel) if channel else None
            return copy.deepcopy(
                [
                    e
                    for e in self._ephemerals
                    if (user_id is None or e["user"] == user_id)
                    and (channel is None or e["channel"] in (channel, channel_id))
                ]
            )

    def wait_for_ephemeral(
        self,
        user_id: str,
        predicate: Callable[[JSON], bool] | None = None,
        timeout: float = 5.0,
    ) -> JSON:
        """Block until an ephemeral message matching ``predicate`` was shown to the user."""

        def find() -> JSON | None:
            for message in self.ephemerals(user_id):
                if predicate is None or predicate(message):
                    return message
            return None

        return self._wait(
            find, timeout, lambda: f"an ephemeral for {user_id}: {self.ephemerals(user_id)}"
        )

    @property
    def open_views(self) -> dict[str, JSON]:
        """Modals currently open, by view id."""
        with self._cond:
            return {
                vid: copy.deepcopy(v.view)
                for vid, v in self._views.items()
                if v.is_open and v.view.get("type") == "modal"
            }

    def view_for_user(self, user_id: str) -> JSON:
        """The latest modal open for a user; ``LookupError`` when there is none."""
        with self._cond:
            found = self._latest_view(user_id, None)
        if found is None:
            raise LookupError(f"no modal is open for {user_id}")
        return found

    def wait_for_view(
        self,
        user_id: str,
        *,
        callback_id: str | None = None,
        timeout: float = 5.0,
        after: JSON | None = None,
    ) -> JSON:
        """Block until a modal (with ``callback_id``) is open for the user; return it. With
        ``after`` (a view), wait for a different view or a newer version of it."""

        def find() -> JSON | None:
            view = self._latest_view(user_id, callback_id)
            if view is not None and after is not None and view.get("hash") == after.get("hash"):
                return None
            return view

        return self._wait(find, timeout, lambda: f"a view for {user_id} ({callback_id})")

    def _latest_view(self, user_id: str, callback_id: str | None) -> JSON | None:
        candidates = [
            v
            for v in self._views.values()
            if v.is_open
            and v.user_id == user_id
            and v.view.get("type") == "modal"
            and (callback_id is None or v.view.get("callback_id") == callback_id)
        ]
        if not candidates:
            return None
        return copy.deepcopy(max(candidates, key=lambda v: v.opened_at).view)

    def home_view(self, user_id: str) -> JSON | None:
        """The App Home view published for a user, if any."""
        with self._cond:
            view_id = self._home_views.get(user_id)
            return copy.deepcopy(self._views[view_id].view) if view_id else None

    def responses(
        self, for_user: str | None = None, *, include_rejected: bool = False
    ) -> list[ResponsePost]:
        """What was posted to response URLs (accepted ones unless ``include_rejected``)."""
        with self._cond:
            return [
                r
                for r in self._responses
                if (for_user is None or r.user_id == for_user) and (include_rejected or r.ok)
            ]

    def wait_for_response(
        self,
        for_user: str | None = None,
        predicate: Callable[[ResponsePost], bool] | None = None,
        timeout: float = 5.0,
    ) -> ResponsePost:
        """Block until an accepted response-URL post (for the user, matching) arrived."""

        def find() -> ResponsePost | None:
            for r in self.responses(for_user):
                if predicate is None or predicate(r):
                    return r
            return None

        return self._wait(
            find,
            timeout,
            lambda: f"a response for {for_user}: {self.responses(for_user, include_rejected=True)}",
        )

    # -- switches for tests ---------------------------------------------------

    def ratelimit_next(self, method: str, n: int, retry_after: int = 1) -> None:
        """Answer the next ``n`` calls to ``method`` with HTTP 429 and ``Retry-After``."""
        with self._cond:
            self._ratelimits[method] = (n, retry_after)

    def issue_trigger_id(self, user_id: str, *, ttl: float | None = None) -> str:
        """A fresh trigger id for a user's click or command (valid ``trigger_ttl`` s, once)."""
        trigger_id = f"{next(self._seq)}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        with self._cond:
            self._triggers[trigger_id] = _Trigger(
                user_id, time.monotonic(), self.trigger_ttl if ttl is None else ttl
            )
        return trigger_id

    def issue_response_url(
        self,
        user_id: str,
        channel_id: str,
        *,
        message_ts: str | None = None,
        is_ephemeral: bool = False,
    ) -> str:
        """A response URL for a user's command or click (``message_ts``: the clicked message)."""
        url_id = f"{self.team_id}/{next(self._seq)}/{secrets.token_urlsafe(18)}"
        with self._cond:
            self._response_urls[url_id] = _ResponseUrl(
                url_id, user_id, channel_id, time.monotonic(), message_ts, is_ephemeral
            )
        return f"{self.base_url}/response/{url_id}"

    def age_response_url(self, url: str, seconds: float) -> None:
        """Pretend a response URL was issued ``seconds`` earlier (expiry tests)."""
        url_id = url.split("/response/", 1)[1]
        with self._cond:
            self._response_urls[url_id].issued_at -= seconds

    def show_ephemeral(self, user_id: str, channel_id: str, content: JSON, *, source: str) -> JSON:
        """Record an ephemeral message shown to a user (used by the driver for acks)."""
        message = self._bot_message(content)
        message.update(channel=channel_id, user=user_id, is_ephemeral=True, source=source)
        with self._cond:
            self._ephemerals.append(message)
            self._cond.notify_all()
        return message

    def post_as_bot(self, channel_id: str, content: JSON) -> JSON:
        """Add a message from the bot to a channel without a Web API call (``in_channel``)."""
        message = self._bot_message(content)
        with self._cond:
            self._messages.setdefault(channel_id, []).append(message)
            self._cond.notify_all()
        return message

    def close_view(self, view_id: str) -> None:
        """Close a modal (the user submitted or dismissed it)."""
        with self._cond:
            if view_id in self._views:
                self._views[view_id].is_open = False
                self._cond.notify_all()

    def replace_view(self, view_id: str, view: JSON) -> JSON:
        """Replace an open modal's content (``response_action: update``); return the new view."""
        with self._cond:
            record = self._views[view_id]
            record.view = self._materialize_view(view, record.user_id, view_id, record.view)
            record.opened_at = time.monotonic()
            self._cond.notify_all()
            return copy.deepcopy(record.view)

    def push_view(self, user_id: str, view: JSON, *, previous: str | None = None) -> JSON:
        """Open a modal on top of another (``response_action: push``); return it."""
        with self._cond:
            view_id = _new_id("V", 8)
            record = _View(
                self._materialize_view(view, user_id, view_id, None), user_id, time.monotonic()
            )
            record.view["previous_view_id"] = previous
            self._views[view_id] = record
            self._cond.notify_all()
            return copy.deepcopy(record.view)

    # -- HTTP routing ---------------------------------------------------------

    def _route(
        self, verb: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, JSON, dict[str, str]]:
        parts = urlsplit(path)
        if parts.path.startswith("/api/"):
            return self._api(parts.path[len("/api/") :], parts.query, headers, body)
        if parts.path.startswith("/response/") and verb == "POST":
            return self._response_url(parts.path[len("/response/") :], headers, body)
        return 404, {"ok": False, "error": "not_found"}, {}

    def _parse_args(self, query: str, headers: dict[str, str], body: bytes) -> JSON:
        args: JSON = dict(parse_qsl(query, keep_blank_values=True))
        content_type = headers.get("content-type", "")
        if body:
            if content_type.startswith("application/json"):
                try:
                    decoded = json.loads(body)
                except ValueError as exc:
                    raise _ApiError("invalid_json") from exc
                if not isinstance(decoded, dict):
                    raise _ApiError("invalid_json")
                args.update(decoded)
            elif content_type.startswith(_FORM) or not content_type:
                args.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            else:
                raise _ApiError("invalid_form_data")
        for key in _JSON_DECODED_ARGS:
            value = args.get(key)
            if isinstance(value, str) and value.strip()[:1] in ("{", "["):
                # Left as a string when it is not JSON: the method reports its format error.
                with contextlib.suppress(ValueError):
                    args[key] = json.loads(value)
        return args

    def _api(
        self, method: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, JSON, dict[str, str]]:
        status, extra = 200, {}
        token: str | None = None
        args: JSON = {}
        try:
            args = self._parse_args(query, headers, body)
            auth = headers.get("authorization", "")
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
            form_token = args.pop("token", None)
            token = token or (form_token if isinstance(form_token, str) else None)
            handler = self._handlers.get(method)
            if handler is None:
                raise _ApiError("unknown_method", req_method=method)
            with self._cond:
                remaining, retry_after = self._ratelimits.get(method, (0, 0))
                if remaining > 0:
                    self._ratelimits[method] = (remaining - 1, retry_after)
                    status, extra = 429, {"Retry-After": str(retry_after)}
                    raise _ApiError("ratelimited")
            response = {"ok": True, **handler(args, self._token_kind(method, token))}
        except _ApiError as exc:
            response = exc.body
        call = ApiCall(
            method,
            copy.deepcopy(args),
            dict(headers),
            body,
            time.time(),
            status,
            copy.deepcopy(response),
            token,
        )
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()
        return status, response, extra

    def _token_kind(self, method: str, token: str | None) -> str:
        if not token:
            raise _ApiError("not_authed")
        if token == self.bot_token:
            kind = "bot"
        elif self.app_token is not None and token == self.app_token:
            kind = "app"
        else:
            raise _ApiError("invalid_auth")
        wanted = "app" if method == "apps.connections.open" else "bot"
        if kind != wanted:
            raise _ApiError("not_allowed_token_type")
        return kind

    # -- Web API methods ------------------------------------------------------

    @staticmethod
    def _require(args: JSON, *names: str) -> None:
        for name in names:
            if args.get(name) in (None, ""):
                raise _invalid(f"missing required field: {name}")

    def _auth_test(self, args: JSON, kind: str) -> JSON:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _resolve_channel_id(self, channel: str) -> str | None:
        if channel[:1] in ("U", "W") and channel in self._users:
            return self.im_channel(channel)
        if channel in self._channels:
            return channel
        name = channel.lstrip("#")
        for candidate in self._channels.values():
            if not candidate.is_im and candidate.name == name:
                return candidate.id
        return None

    def _postable_channel(self, args: JSON) -> _Channel:
        self._require(args, "channel")
        channel_id = self._resolve_channel_id(str(args["channel"]))
        if channel_id is None:
            raise _ApiError("channel_not_found")
        channel = self._channels[channel_id]
        if not channel.bot_is_member:
            raise _ApiError("channel_not_found" if channel.is_private else "not_in_channel")
        return channel

    def _message_content(self, args: JSON) -> JSON:
        text, blocks, attachments = args.get("text"), args.get("blocks"), args.get("attachments")
        if isinstance(blocks, str) and blocks:
            raise _ApiError("invalid_blocks_format")
        if blocks is not None and blocks != "":
            problems = validate_message_blocks(blocks)
            if problems:
                raise _ApiError(
                    "invalid_blocks",
                    messages=problems,
                    errors=[m.removeprefix("[ERROR] ") for m in problems],
                )
        if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
            raise _ApiError("msg_too_long")
        if not text and not blocks and not attachments:
            raise _ApiError("no_text")
        content: JSON = {"text": text or ""}
        if blocks:
            content["blocks"] = copy.deepcopy(blocks)
        if attachments:
            content["attachments"] = copy.deepcopy(attachments)
        if args.get("thread_ts"):
            content["thread_ts"] = args["thread_ts"]
        if isinstance(args.get("metadata"), dict):
            content["metadata"] = copy.deepcopy(args["metadata"])
        return content

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._seq):06d}"

    def _bot_message(self, content: JSON) -> JSON:
        message: JSON = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": self._next_ts(),
            "text": "",
            **copy.deepcopy(content),
        }
        if isinstance(message.get("blocks"), list):
            _fill_ids(message["blocks"])
        return message

    def _chat_post_message(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            channel = self._postable_channel(args)
            message = self._bot_message(self._message_content(args))
            self._messages[channel.id].append(message)
            return {"channel": channel.id, "ts": message["ts"], "message": copy.deepcopy(message)}

    def _chat_post_ephemeral(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            channel = self._postable_channel(args)
            self._require(args, "user")
            user_id = str(args["user"])
            if user_id not in self._users or not channel.has_member(user_id):
                raise _ApiError("user_not_in_channel")
            message = self._bot_message(self._message_content(args))
            message.update(
                channel=channel.id, user=user_id, is_ephemeral=True, source="chat.postEphemeral"
            )
            self._ephemerals.append(message)
            return {"message_ts": message["ts"]}

    def _chat_update(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            self._require(args, "channel", "ts")
            channel_id = self._resolve_channel_id(str(args["channel"]))
            if channel_id is None:
                raise _ApiError("channel_not_found")
            found = [m for m in self._messages[channel_id] if m["ts"] == args["ts"]]
            if not found:
                raise _ApiError("message_not_found")
            message = found[0]
            if message.get("bot_id") != self.bot_id:
                raise _ApiError("cant_update_message")
            update = dict(args)
            if update.get("text") is None and update.get("blocks") is None:
                raise _ApiError("no_text")
            if update.get("text") is None:
                update["text"] = message.get("text", "")
            if update.get("blocks") is None and message.get("blocks"):
                update["blocks"] = message["blocks"]
            update.pop("thread_ts", None)
            content = self._message_content(update)
            for key in ("blocks", "attachments"):
                if key in args and not args[key]:
                    message.pop(key, None)
            message.update(content)
            if isinstance(message.get("blocks"), list):
                _fill_ids(message["blocks"])
            message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
            return {
                "channel": channel_id,
                "ts": message["ts"],
                "text": message["text"],
                "message": copy.deepcopy(message),
            }

    def _view_arg(self, args: JSON, kind: str) -> JSON:
        self._require(args, "view")
        view = args["view"]
        if not isinstance(view, dict):
            raise _invalid("failed to parse json", "/view")
        problems = validate_view(view, kind=kind)
        if problems:
            raise _ApiError("invalid_arguments", messages=problems)
        return view

    def _materialize_view(
        self, view: JSON, user_id: str, view_id: str, previous: JSON | None
    ) -> JSON:
        blocks = copy.deepcopy(view.get("blocks", []))
        _fill_ids(blocks)
        root = previous.get("root_view_id", view_id) if previous else view_id
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type"),
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": blocks,
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": root,
            "previous_view_id": previous.get("previous_view_id") if previous else None,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    def _check_external_id(self, view: JSON, own_id: str | None) -> None:
        external_id = view.get("external_id")
        if not external_id:
            return
        for vid, record in self._views.items():
            if vid != own_id and record.is_open and record.view.get("external_id") == external_id:
                raise _ApiError("duplicate_external_id")

    def _views_open(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            view = self._view_arg(args, "modal")
            trigger_id = args.get("trigger_id") or args.get("interactivity_pointer")
            if not trigger_id:
                raise _invalid("missing required field: trigger_id")
            trigger = self._triggers.get(str(trigger_id))
            if trigger is None:
                raise _ApiError("invalid_trigger_id")
            if trigger.used:
                raise _ApiError("exchanged_trigger_id")
            if time.monotonic() - trigger.issued_at > trigger.ttl:
                raise _ApiError("expired_trigger_id")
            self._check_external_id(view, None)
            trigger.used = True
            view_id = _new_id("V", 8)
            record = _View(
                self._materialize_view(view, trigger.user_id, view_id, None),
                trigger.user_id,
                time.monotonic(),
            )
            self._views[view_id] = record
            return {"view": copy.deepcopy(record.view)}

    def _find_view(self, args: JSON) -> _View:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            raise _invalid("must provide either view_id or external_id")
        for vid, record in self._views.items():
            if record.is_open and (
                vid == view_id or (external_id and record.view.get("external_id") == external_id)
            ):
                return record
        raise _ApiError("not_found")

    def _views_update(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            record = self._find_view(args)
            view = self._view_arg(args, str(record.view.get("type")))
            if args.get("hash") and args["hash"] != record.view.get("hash"):
                raise _ApiError("hash_conflict")
            self._check_external_id(view, record.view["id"])
            if not view.get("external_id") and record.view.get("external_id"):
                view = {**view, "external_id": record.view["external_id"]}
            record.view = self._materialize_view(
                view, record.user_id, record.view["id"], record.view
            )
            record.opened_at = time.monotonic()
            return {"view": copy.deepcopy(record.view)}

    def _views_publish(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            self._require(args, "user_id")
            user_id = str(args["user_id"])
            if user_id not in self._users:
                raise _invalid("invalid `user_id`", "/user_id")
            view = self._view_arg(args, "home")
            current = self._home_views.get(user_id)
            previous = self._views[current].view if current else None
            if args.get("hash") and previous and args["hash"] != previous.get("hash"):
                raise _ApiError("hash_conflict")
            view_id = current or _new_id("V", 8)
            self._views[view_id] = _View(
                self._materialize_view(view, user_id, view_id, previous), user_id, time.monotonic()
            )
            self._home_views[user_id] = view_id
            return {"view": copy.deepcopy(self._views[view_id].view)}

    def _channel_info(self, channel: _Channel) -> JSON:
        if channel.is_im:
            return {
                "id": channel.id,
                "created": channel.created,
                "is_im": True,
                "is_org_shared": False,
                "user": channel.im_user,
                "is_open": True,
                "is_member": True,
            }
        return {
            "id": channel.id,
            "name": channel.name,
            "name_normalized": channel.name,
            "is_channel": not channel.is_private and not channel.is_mpim,
            "is_group": channel.is_private and not channel.is_mpim,
            "is_im": False,
            "is_mpim": channel.is_mpim,
            "is_private": channel.is_private,
            "is_archived": False,
            "is_general": channel.name == "general",
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "created": channel.created,
            "context_team_id": self.team_id,
            "is_member": channel.bot_is_member,
        }

    def _conversations_open(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            users_arg, channel_arg = args.get("users"), args.get("channel")
            if channel_arg:
                existing = self._channels.get(str(channel_arg))
                if existing is None or not (existing.is_im or existing.is_mpim):
                    raise _ApiError("channel_not_found")
                channel = existing
            elif users_arg:
                users = users_arg if isinstance(users_arg, list) else str(users_arg).split(",")
                users = [u.strip() for u in users if u.strip()]
                if len(users) > 8:
                    raise _ApiError("too_many_users")
                for user in users:
                    if user not in self._users:
                        raise _ApiError("user_not_found")
                if len(users) == 1:
                    channel = self._channels[self.im_channel(users[0])]
                else:
                    mpim_id = "G" + secrets.token_hex(5).upper()
                    channel = _Channel(
                        mpim_id,
                        "mpdm-" + "--".join(users),
                        True,
                        is_mpim=True,
                        members={*users, self.bot_user_id},
                    )
                    self._channels[mpim_id] = channel
                    self._messages[mpim_id] = []
            else:
                raise _ApiError("users_list_not_supplied")
            if _truthy(args.get("return_im")):
                return {"channel": self._channel_info(channel)}
            return {"channel": {"id": channel.id}}

    def _conversations_info(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            self._require(args, "channel")
            channel = self._channels.get(str(args["channel"]))
            if channel is None or (channel.is_private and not channel.bot_is_member):
                raise _ApiError("channel_not_found")
            return {"channel": self._channel_info(channel)}

    def _usergroups_users_list(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            self._require(args, "usergroup")
            group = self._groups.get(str(args["usergroup"]))
            if group is None:
                raise _ApiError("no_such_subteam")
            return {"users": list(group[1])}

    def _users_info(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            self._require(args, "user")
            user = self._users.get(str(args["user"]))
            if user is None:
                raise _ApiError("user_not_found")
            is_bot = user.id == self.bot_user_id
            return {
                "user": {
                    "id": user.id,
                    "team_id": user.team_id,
                    "name": user.name,
                    "deleted": False,
                    "real_name": user.name.title(),
                    "tz": "Europe/Berlin",
                    "is_bot": is_bot,
                    "is_admin": False,
                    "is_owner": False,
                    "is_restricted": False,
                    "is_ultra_restricted": False,
                    "is_app_user": False,
                    "updated": 0,
                    "profile": {
                        "real_name": user.name.title(),
                        "display_name": user.name,
                        "team": user.team_id,
                    },
                }
            }

    def _apps_connections_open(self, args: JSON, kind: str) -> JSON:
        return {"url": self.socket_mode.issue_url()}

    # -- response URLs --------------------------------------------------------

    def _response_url(
        self, url_id: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, JSON, dict[str, str]]:
        with self._cond:
            entry = self._response_urls.get(url_id)
            payload: JSON = {}
            try:
                if entry is None:
                    raise _ResponseError(404, "invalid_url")
                if time.monotonic() - entry.issued_at > self.response_url_ttl:
                    raise _ResponseError(404, "expired_url")
                if entry.uses >= self.response_url_uses:
                    raise _ResponseError(404, "used_url")
                payload = self._response_payload(headers, body)
                self._apply_response(entry, payload)
                entry.uses += 1
                status, error = 200, None
            except _ResponseError as exc:
                status, error = exc.status, exc.error
            self._responses.append(
                ResponsePost(
                    f"{self.base_url}/response/{url_id}",
                    entry.user_id if entry else "",
                    entry.channel_id if entry else "",
                    payload,
                    time.time(),
                    status,
                    error,
                )
            )
            self._cond.notify_all()
        if error is None:
            return 200, {"ok": True}, {}
        return status, {"ok": False, "error": error}, {}

    @staticmethod
    def _response_payload(headers: dict[str, str], body: bytes) -> JSON:
        try:
            if headers.get("content-type", "").startswith(_FORM):
                decoded = json.loads(dict(parse_qsl(body.decode())).get("payload", ""))
            else:
                decoded = json.loads(body or b"null")
        except ValueError as exc:
            raise _ResponseError(400, "invalid_payload") from exc
        if not isinstance(decoded, dict):
            raise _ResponseError(400, "invalid_payload")
        return decoded

    def _apply_response(self, entry: _ResponseUrl, payload: JSON) -> None:
        if _truthy(payload.get("delete_original")):
            self._delete_original(entry)
            return
        try:
            content = self._message_content(payload)
        except _ApiError as exc:
            raise _ResponseError(400, exc.error) from exc
        if _truthy(payload.get("replace_original")) and self._replace_original(entry, content):
            return
        if payload.get("response_type") == "in_channel":
            self._messages.setdefault(entry.channel_id, []).append(self._bot_message(content))
            return
        message = self._bot_message(content)
        message.update(
            channel=entry.channel_id, user=entry.user_id, is_ephemeral=True, source="response_url"
        )
        self._ephemerals.append(message)
        entry.last_ephemeral_ts = message["ts"]

    def _original(self, entry: _ResponseUrl) -> tuple[list[JSON], JSON] | None:
        if entry.message_ts and not entry.is_ephemeral:
            pool = self._messages.get(entry.channel_id, [])
            ts: str | None = entry.message_ts
        else:
            pool = [e for e in self._ephemerals if e["user"] == entry.user_id]
            ts = entry.message_ts or entry.last_ephemeral_ts
        for message in pool:
            if message["ts"] == ts:
                return pool, message
        return None

    def _replace_original(self, entry: _ResponseUrl, content: JSON) -> bool:
        found = self._original(entry)
        if found is None:
            return False
        message = found[1]
        message.pop("blocks", None)
        message.update(content)
        if isinstance(message.get("blocks"), list):
            _fill_ids(message["blocks"])
        return True

    def _delete_original(self, entry: _ResponseUrl) -> None:
        found = self._original(entry)
        if found is None:
            return
        pool, message = found
        if pool is self._messages.get(entry.channel_id):
            pool.remove(message)
        else:
            self._ephemerals.remove(message)


class _ResponseError(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


# ---------------------------------------------------------------------------
# The driver: Slack's requests to the bot


@dataclass(frozen=True)
class Ack:
    """The bot's answer to one request from Slack.

    ``status`` is the HTTP status (Socket Mode: 200 when an ack arrived, 0 when none did in
    time). ``problems`` lists what Slack itself would reject in the answer (late ack, errors
    keyed by a non-input block, an invalid view or options list)."""

    status: int
    body: bytes
    headers: Mapping[str, str]
    elapsed: float
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The answer's JSON (``None`` for an empty body)."""
        return json.loads(self.body) if self.body else None

    def payload(self) -> JSON:
        """The answer as Slack reads it: JSON object, ``{"text": body}`` for plain text, or
        ``{}`` for an empty body."""
        if not self.body:
            return {}
        content_type = self.headers.get("content-type", "")
        if content_type.startswith("application/json") or self.body.lstrip()[:1] == b"{":
            try:
                decoded = json.loads(self.body)
            except ValueError:
                return {"text": self.text}
            return decoded if isinstance(decoded, dict) else {"text": self.text}
        return {"text": self.text}


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
        self, body: bytes, *, timestamp: int | None = None, content_type: str = _FORM
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
        """The user dismisses the modal (sent only when the view asked ``notify_on_close``)."""
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
                k: copy.deepcopy(v) for k, v in message.items() if k not in _STANDIN_KEYS
            }
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


def _element_state(element: JSON, given: Any, *, validate: bool) -> JSON:
    kind = str(element.get("type"))
    if isinstance(given, dict):
        return {"type": kind, **copy.deepcopy(given)}
    if kind in _TEXT_INPUTS:
        value = None if given in (None, "") else str(given)
        max_length = element.get("max_length")
        if (
            validate
            and value is not None
            and isinstance(max_length, int)
            and len(value) > max_length
        ):
            raise ValueError(f"{element.get('action_id')}: longer than max_length {max_length}")
        min_length = element.get("min_length")
        if (
            validate
            and value is not None
            and isinstance(min_length, int)
            and len(value) < min_length
        ):
            raise ValueError(f"{element.get('action_id')}: shorter than min_length {min_length}")
        return {"type": kind, "value": value}
    if kind in ("static_select", "external_select", "radio_buttons"):
        return {"type": kind, "selected_option": _option(element, given, validate=validate)}
    if kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        chosen = [] if given is None else [given] if isinstance(given, str) else list(given)
        return {
            "type": kind,
            "selected_options": [_option(element, v, validate=validate) for v in chosen],
        }
    single = {
        "users_select": "selected_user",
        "conversations_select": "selected_conversation",
        "channels_select": "selected_channel",
        "datepicker": "selected_date",
        "timepicker": "selected_time",
    }
    if kind in single:
        return {"type": kind, single[kind]: given}
    multi = {
        "multi_users_select": "selected_users",
        "multi_conversations_select": "selected_conversations",
        "multi_channels_select": "selected_channels",
    }
    if kind in multi:
        return {"type": kind, multi[kind]: [] if given is None else list(given)}
    return {"type": kind, "value": given}


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
