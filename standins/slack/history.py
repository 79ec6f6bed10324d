"""``conversations.history`` as Slack serves it (tests/reference/slack/methods/
conversations.history.json): the scope each kind of conversation needs (conversations.info's
too), membership, the ``oldest``/``latest`` window, newest first, cursor pages, metadata only
when asked for."""

from __future__ import annotations

import base64
import copy

from standins.slack.records import JSON, ApiError, Channel, truthy

# The scopes the manifest grants a bot; tests add the history ones with ``grant``.
DEFAULT_SCOPES = frozenset(
    {"commands", "chat:write", "usergroups:read", "im:write", "channels:read", "groups:read"}
)
DEFAULT_LIMIT, MAX_LIMIT = 100, 999


def needed_scope(channel: Channel) -> str:
    """The history scope a conversation of this kind needs."""
    if channel.is_im:
        return "im:history"
    if channel.is_mpim:
        return "mpim:history"
    return "groups:history" if channel.is_private else "channels:history"


def read_scope(channel: Channel) -> str:
    """The scope conversations.info needs for a conversation of this kind."""
    if channel.is_im:
        return "im:read"
    if channel.is_mpim:
        return "mpim:read"
    return "groups:read" if channel.is_private else "channels:read"


def readable(channels: dict[str, Channel], channel_id: str, scopes: frozenset[str]) -> Channel:
    """The conversation, when this bot may read it; Slack's error otherwise."""
    channel = channels.get(channel_id)
    if channel is None:
        raise ApiError("channel_not_found")
    scope = needed_scope(channel)
    if scope not in scopes:
        raise ApiError("missing_scope", needed=scope, provided=",".join(sorted(scopes)))
    if not channel.bot_is_member:
        raise ApiError("channel_not_found" if channel.is_private else "not_in_channel")
    return channel


def page(messages: list[JSON], args: JSON) -> JSON:
    """One page of ``messages`` (oldest first, as stored) for these arguments."""
    oldest, latest = _ts(args, "oldest", "0"), _ts(args, "latest", "9999999999.999999")
    inclusive = truthy(args.get("inclusive", False))
    chosen = [
        m
        for m in reversed(messages)
        if (oldest <= float(m["ts"]) <= latest)
        and (inclusive or float(m["ts"]) not in (oldest, latest))
    ]
    start = _cursor(args.get("cursor"))
    limit = _limit(args.get("limit"))
    shown = chosen[start : start + limit]
    more = start + limit < len(chosen)
    if not truthy(args.get("include_all_metadata", False)):
        shown = [{k: v for k, v in m.items() if k != "metadata"} for m in shown]
    return {
        "messages": copy.deepcopy(shown),
        "has_more": more,
        "pin_count": 0,
        "response_metadata": {"next_cursor": _encode(start + limit) if more else ""},
    }


def _ts(args: JSON, name: str, default: str) -> float:
    value = args.get(name)
    try:
        return float(value if value not in (None, "") else default)
    except (TypeError, ValueError):
        raise ApiError(f"invalid_ts_{name}") from None


def _limit(value: object) -> int:
    if value in (None, ""):
        return DEFAULT_LIMIT
    try:
        return max(1, min(MAX_LIMIT, int(str(value))))
    except ValueError:
        raise ApiError("invalid_limit") from None


def _encode(offset: int) -> str:
    return base64.b64encode(f"next:{offset}".encode()).decode()


def _cursor(value: object) -> int:
    if value in (None, ""):
        return 0
    try:
        kind, offset = base64.b64decode(str(value), validate=True).decode().split(":")
        if kind != "next":
            raise ValueError(kind)
        return int(offset)
    except ValueError:
        raise ApiError("invalid_cursor") from None
