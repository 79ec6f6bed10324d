"""The Slack stand-in's workspace: people, channels, messages, modals, response URLs, waits."""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from standins.slack.blockkit import (
    fill_ids,
    validate_message_blocks,
)
from standins.slack.history import DEFAULT_SCOPES
from standins.slack.records import (
    JSON,
    MAX_MESSAGE_TEXT,
    RESPONSE_URL_TTL,
    RESPONSE_URL_USES,
    TRIGGER_TTL,
    ApiCall,
    ApiError,
    Channel,
    OpenView,
    ResponsePost,
    ResponseUrl,
    Trigger,
    User,
    new_id,
)

_T = TypeVar("_T")


class Workspace:
    """A workspace on Slack's side and what happened in it; ``SlackStandIn`` serves it."""

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
        scopes: Iterable[str] = DEFAULT_SCOPES,
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
        # The bot token's scopes (checked where the bot's use depends on them: history, info).
        self.scopes = frozenset(scopes)

        self._cond = threading.Condition(threading.RLock())
        self._calls: list[ApiCall] = []
        self._responses: list[ResponsePost] = []
        self._users: dict[str, User] = {}
        self._channels: dict[str, Channel] = {}
        self._groups: dict[str, tuple[str, list[str]]] = {}
        self._messages: dict[str, list[JSON]] = {}
        self._ephemerals: list[JSON] = []
        self._triggers: dict[str, Trigger] = {}
        self._views: dict[str, OpenView] = {}
        self._home_views: dict[str, str] = {}
        self._response_urls: dict[str, ResponseUrl] = {}
        self._ratelimits: dict[str, tuple[int, int]] = {}
        # method -> (until, HTTP status, Retry-After): an outage window per method.
        self._outages: dict[str, tuple[float, int, int]] = {}
        self._delays: dict[str, float] = {}  # method -> seconds each call takes
        self._arrived: dict[str, int] = {}  # method -> calls that reached it, answered or not
        self._seq = itertools.count(1)

        self._base_url = ""  # set by the server once it listens

        self.add_user(bot_user_id, bot_name)
        self.add_channel("C0GENERAL", "general")  # every workspace has one; the driver's default

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running stand-in."""
        if not self._base_url:
            raise RuntimeError("SlackStandIn is not started")
        return self._base_url

    # -- the workspace ------------------------------------------------------

    def add_user(self, user_id: str, name: str, *, team_id: str | None = None) -> None:
        """Add a person (``team_id`` other than the workspace's: a Slack Connect guest)."""
        with self._cond:
            self._users[user_id] = User(user_id, name, team_id or self.team_id)

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        bot_is_member: bool = True,
        members: Sequence[str] | None = None,
        shared_with: Sequence[str] = (),
        pending_with: Sequence[str] = (),
    ) -> None:
        """Add a channel (``G…`` ids are private); ``members=None`` means everyone is in it.
        ``shared_with`` names other organizations' teams it is shared with (Slack Connect),
        ``pending_with`` those invited that have not accepted yet."""
        with self._cond:
            self._channels[channel_id] = Channel(
                channel_id,
                name,
                bot_is_member,
                members=None if members is None else set(members),
                shared_with=tuple(shared_with),
                pending_with=tuple(pending_with),
            )
            self._messages.setdefault(channel_id, [])

    def grant(self, *scopes: str) -> None:
        """Give the bot token more scopes (as reinstalling the app with them would)."""
        with self._cond:
            self.scopes = self.scopes | set(scopes)

    def revoke(self, *scopes: str) -> None:
        """Take scopes from the bot token (as reinstalling the app without them would)."""
        with self._cond:
            self.scopes = self.scopes - set(scopes)

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
                self._channels[channel_id] = Channel(
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

    def fail_for(
        self, method: str, seconds: float, status: int = 500, retry_after: int = 1
    ) -> None:
        """Answer every call to ``method`` for the next ``seconds`` with ``status`` (a 429
        carries ``Retry-After``); the calls are recorded, nothing they asked for happens."""
        with self._cond:
            self._outages[method] = (time.monotonic() + seconds, status, retry_after)

    def slow(self, method: str, seconds: float) -> None:
        """Make each call to ``method`` take ``seconds`` before Slack acts on it (it still
        acts if the caller has gone meanwhile, as Slack does); 0 makes it fast again."""
        with self._cond:
            self._delays[method] = seconds

    def arrived(self, method: str) -> int:
        """How many calls to ``method`` have reached Slack, answered or not yet."""
        with self._cond:
            return self._arrived.get(method, 0)

    def wait_for_arrival(self, method: str, count: int = 1, timeout: float = 10.0) -> None:
        """Block until ``count`` calls to ``method`` have reached Slack in all (answered or
        not yet: a slowed call is in Slack's hands from here on)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._arrived.get(method, 0) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{count} call(s) to {method} did not arrive in {timeout}s")
                self._cond.wait(left)

    def _delay(self, method: str) -> None:
        with self._cond:
            self._arrived[method] = self._arrived.get(method, 0) + 1
            self._cond.notify_all()
            seconds = self._delays.get(method, 0.0)
        if seconds > 0:
            time.sleep(seconds)

    def _outage(self, method: str) -> tuple[int, dict[str, str]] | None:
        """The status and headers of an outage of ``method`` now, if there is one."""
        with self._cond:
            until, status, retry_after = self._outages.get(method, (0.0, 0, 0))
        if time.monotonic() >= until:
            return None
        return status, ({"Retry-After": str(retry_after)} if status == 429 else {})

    def issue_trigger_id(self, user_id: str, *, ttl: float | None = None) -> str:
        """A fresh trigger id for a user's click or command (valid ``trigger_ttl`` s, once)."""
        trigger_id = f"{next(self._seq)}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        with self._cond:
            self._triggers[trigger_id] = Trigger(
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
            self._response_urls[url_id] = ResponseUrl(
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

    def post_as_other_app(
        self, channel_id: str, content: JSON, *, bot_id: str, app_id: str
    ) -> JSON:
        """Add a message another app in the workspace posted: its own ``bot_id``, ``app_id``
        and bot user, and whatever metadata it chose."""
        message = {**self._bot_message(content), "bot_id": bot_id, "app_id": app_id}
        message["user"] = f"U{bot_id[1:]}"
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
            view_id = new_id("V", 8)
            record = OpenView(
                self._materialize_view(view, user_id, view_id, None), user_id, time.monotonic()
            )
            record.view["previous_view_id"] = previous
            self._views[view_id] = record
            self._cond.notify_all()
            return copy.deepcopy(record.view)

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
            fill_ids(message["blocks"])
        return message

    def _materialize_view(
        self, view: JSON, user_id: str, view_id: str, previous: JSON | None
    ) -> JSON:
        blocks = copy.deepcopy(view.get("blocks", []))
        fill_ids(blocks)
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

    def _message_content(self, args: JSON) -> JSON:
        text, blocks, attachments = args.get("text"), args.get("blocks"), args.get("attachments")
        if isinstance(blocks, str) and blocks:
            raise ApiError("invalid_blocks_format")
        if blocks is not None and blocks != "":
            problems = validate_message_blocks(blocks)
            if problems:
                raise ApiError(
                    "invalid_blocks",
                    messages=problems,
                    errors=[m.removeprefix("[ERROR] ") for m in problems],
                )
        if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
            raise ApiError("msg_too_long")
        if not text and not blocks and not attachments:
            raise ApiError("no_text")
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
