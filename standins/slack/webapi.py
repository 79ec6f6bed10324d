"""The Slack stand-in's Web API and response URLs, served over HTTP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import copy
import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from standins.slack import history
from standins.slack.blockkit import (
    fill_ids,
    validate_view,
)
from standins.slack.records import (
    FORM,
    JSON,
    JSON_DECODED_ARGS,
    ApiCall,
    ApiError,
    Channel,
    OpenView,
    invalid,
    new_id,
    truthy,
)
from standins.slack.responses import ResponseUrls

if TYPE_CHECKING:
    from standins.slack.socket_mode import SocketModeStandIn


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 resets bursts of connections

    def __init__(self, standin: SlackStandIn) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.standin = standin
        self.accepted = 0  # connections, counted by the one thread that accepts them

    def process_request(self, request: Any, client_address: Any) -> None:
        self.accepted += 1
        super().process_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # Kept-alive connections, as Slack's edge keeps them.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; Nagle plus delayed ACK would add 40 ms each.
    disable_nagle_algorithm = True
    # Idle keep-alive connections end on their own rather than pinning threads forever; later
    # than the bot's pool lets them go (bot/latency/slack_pool.py), as a server's idle limit does.
    timeout = 60
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):  # the handshake in this connection's thread
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

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


class SlackStandIn(ResponseUrls):
    """A workspace on Slack's side, served over HTTP on 127.0.0.1 for the bot to call."""

    _server: _Server | None = None
    _thread: threading.Thread | None = None
    _socket: SocketModeStandIn | None = None
    # Serve HTTPS with this context when set before ``start`` (Slack serves nothing else).
    tls: ssl.SSLContext | None = None

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> str:
        """Serve on an ephemeral port of 127.0.0.1; return the Web API base URL."""
        if self._server is not None:
            return self.api_url
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        scheme = "http"
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
            scheme = "https"
        self._base_url = f"{scheme}://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="slack-standin",
            daemon=True,
        )
        self._thread.start()
        if self.app_token is not None:
            # Imported here: websockets is a test extra, the rest of the stand-in works without it.
            from standins.slack.socket_mode import SocketModeStandIn

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
    def connections(self) -> int:
        """How many connections the Web API has accepted since ``start``."""
        if self._server is None:
            return 0
        return self._server.accepted

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
                    raise ApiError("invalid_json") from exc
                if not isinstance(decoded, dict):
                    raise ApiError("invalid_json")
                args.update(decoded)
            elif content_type.startswith(FORM) or not content_type:
                args.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            else:
                raise ApiError("invalid_form_data")
        for key in JSON_DECODED_ARGS:
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
            handler = self._method(method)
            if handler is None:
                raise ApiError("unknown_method", req_method=method)
            with self._cond:
                remaining, retry_after = self._ratelimits.get(method, (0, 0))
                if remaining > 0:
                    self._ratelimits[method] = (remaining - 1, retry_after)
                    status, extra = 429, {"Retry-After": str(retry_after)}
                    raise ApiError("ratelimited")
            self._delay(method)
            outage = self._outage(method)
            if outage is not None:
                status, extra = outage
                raise ApiError("ratelimited" if status == 429 else "internal_error")
            response = {"ok": True, **handler(args, self._token_kind(method, token))}
        except ApiError as exc:
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
        # Slack lists the token's scopes on every Web API answer.
        return status, response, {**extra, "x-oauth-scopes": ",".join(sorted(self.scopes))}

    def _token_kind(self, method: str, token: str | None) -> str:
        if not token:
            raise ApiError("not_authed")
        if token == self.bot_token:
            kind = "bot"
        elif self.app_token is not None and token == self.app_token:
            kind = "app"
        else:
            raise ApiError("invalid_auth")
        wanted = "app" if method == "apps.connections.open" else "bot"
        if kind != wanted:
            raise ApiError("not_allowed_token_type")
        return kind

    def _method(self, name: str) -> Callable[[JSON, str], JSON] | None:
        """The stand-in's handler of Web API method ``name``, if it has one."""
        methods: dict[str, Callable[[JSON, str], JSON]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "apps.connections.open": self._apps_connections_open,
        }
        return methods.get(name)

    # -- Web API methods ------------------------------------------------------

    @staticmethod
    def _require(args: JSON, *names: str) -> None:
        for name in names:
            if args.get(name) in (None, ""):
                raise invalid(f"missing required field: {name}")

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

    def _postable_channel(self, args: JSON) -> Channel:
        self._require(args, "channel")
        channel_id = self._resolve_channel_id(str(args["channel"]))
        if channel_id is None:
            raise ApiError("channel_not_found")
        channel = self._channels[channel_id]
        if not channel.bot_is_member:
            raise ApiError("channel_not_found" if channel.is_private else "not_in_channel")
        return channel

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
                raise ApiError("user_not_in_channel")
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
                raise ApiError("channel_not_found")
            found = [m for m in self._messages[channel_id] if m["ts"] == args["ts"]]
            if not found:
                raise ApiError("message_not_found")
            message = found[0]
            if message.get("bot_id") != self.bot_id:
                raise ApiError("cant_update_message")
            update = dict(args)
            if update.get("text") is None and update.get("blocks") is None:
                raise ApiError("no_text")
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
                fill_ids(message["blocks"])
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
            raise invalid("failed to parse json", "/view")
        problems = validate_view(view, kind=kind)
        if problems:
            raise ApiError("invalid_arguments", messages=problems)
        return view

    def _check_external_id(self, view: JSON, own_id: str | None) -> None:
        external_id = view.get("external_id")
        if not external_id:
            return
        for vid, record in self._views.items():
            if vid != own_id and record.is_open and record.view.get("external_id") == external_id:
                raise ApiError("duplicate_external_id")

    def _views_open(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            view = self._view_arg(args, "modal")
            trigger_id = args.get("trigger_id") or args.get("interactivity_pointer")
            if not trigger_id:
                raise invalid("missing required field: trigger_id")
            trigger = self._triggers.get(str(trigger_id))
            if trigger is None:
                raise ApiError("invalid_trigger_id")
            if trigger.used:
                raise ApiError("exchanged_trigger_id")
            if time.monotonic() - trigger.issued_at > trigger.ttl:
                raise ApiError("expired_trigger_id")
            self._check_external_id(view, None)
            trigger.used = True
            view_id = new_id("V", 8)
            record = OpenView(
                self._materialize_view(view, trigger.user_id, view_id, None),
                trigger.user_id,
                time.monotonic(),
            )
            self._views[view_id] = record
            return {"view": copy.deepcopy(record.view)}

    def _find_view(self, args: JSON) -> OpenView:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            raise invalid("must provide either view_id or external_id")
        for vid, record in self._views.items():
            if record.is_open and (
                vid == view_id or (external_id and record.view.get("external_id") == external_id)
            ):
                return record
        raise ApiError("not_found")

    def _views_update(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            record = self._find_view(args)
            view = self._view_arg(args, str(record.view.get("type")))
            if args.get("hash") and args["hash"] != record.view.get("hash"):
                raise ApiError("hash_conflict")
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
                raise invalid("invalid `user_id`", "/user_id")
            view = self._view_arg(args, "home")
            current = self._home_views.get(user_id)
            previous = self._views[current].view if current else None
            if args.get("hash") and previous and args["hash"] != previous.get("hash"):
                raise ApiError("hash_conflict")
            view_id = current or new_id("V", 8)
            self._views[view_id] = OpenView(
                self._materialize_view(view, user_id, view_id, previous), user_id, time.monotonic()
            )
            self._home_views[user_id] = view_id
            return {"view": copy.deepcopy(self._views[view_id].view)}

    def _channel_info(self, channel: Channel) -> JSON:
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
                    raise ApiError("channel_not_found")
                channel = existing
            elif users_arg:
                users = users_arg if isinstance(users_arg, list) else str(users_arg).split(",")
                users = [u.strip() for u in users if u.strip()]
                if len(users) > 8:
                    raise ApiError("too_many_users")
                for user in users:
                    if user not in self._users:
                        raise ApiError("user_not_found")
                if len(users) == 1:
                    channel = self._channels[self.im_channel(users[0])]
                else:
                    mpim_id = "G" + secrets.token_hex(5).upper()
                    channel = Channel(
                        mpim_id,
                        "mpdm-" + "--".join(users),
                        True,
                        is_mpim=True,
                        members={*users, self.bot_user_id},
                    )
                    self._channels[mpim_id] = channel
                    self._messages[mpim_id] = []
            else:
                raise ApiError("users_list_not_supplied")
            if truthy(args.get("return_im")):
                return {"channel": self._channel_info(channel)}
            return {"channel": {"id": channel.id}}

    def _conversations_info(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            self._require(args, "channel")
            channel = self._channels.get(str(args["channel"]))
            if channel is None or (channel.is_private and not channel.bot_is_member):
                raise ApiError("channel_not_found")
            return {"channel": self._channel_info(channel)}

    def _conversations_history(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            self._require(args, "channel")
            channel = history.readable(self._channels, str(args["channel"]), self.scopes)
            return history.page(self._messages[channel.id], args)

    def _usergroups_users_list(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            self._require(args, "usergroup")
            group = self._groups.get(str(args["usergroup"]))
            if group is None:
                raise ApiError("no_such_subteam")
            return {"users": list(group[1])}

    def _users_info(self, args: JSON, kind: str) -> JSON:
        with self._cond:
            self._require(args, "user")
            user = self._users.get(str(args["user"]))
            if user is None:
                raise ApiError("user_not_found")
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
