"""Whether the channel a request came from may hear about it: one shared with another
organization (Slack Connect), or one Slack won't describe, gets nothing; its messages go to
the requester as DMs that say why."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.logs import get_logger
from bot.outbox.messages import Message, Method
from bot.slack.blocks.confirmation import sent_directly, shared_channel, unchecked_channel

log = get_logger(__name__)
# How long conversations.info's answer stands for a channel: a channel shared with another
# organization meanwhile gets nothing more once this has passed.
REMEMBER_FOR = 60.0
# The methods that speak in the request's own channel (a confirmation, an ephemeral note).
IN_ORIGIN = (Method.CONFIRM, Method.TELL)


class CannotCheck(Exception):
    """Slack would not describe the channel (``missing_scope``, ``channel_not_found``...)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Verdict:
    """What the bot knows of a channel: shared outside, or Slack's refusal to say."""

    shared: bool
    error: str | None = None

    def why(self, channel: str) -> str | None:
        """The line a DM carries instead of a message in ``channel`` (None: post there)."""
        if self.error is not None:
            return unchecked_channel(channel, self.error)
        return shared_channel(channel) if self.shared else None


class OriginGuard:
    """Sends a message meant for a request's channel to the requester when the channel is
    shared with another organization, or when Slack won't say whether it is (fail closed)."""

    def __init__(
        self,
        info: Callable[[str], dict[str, Any]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # conversations.info's ``channel``; raises CannotCheck, or the outbox's Retry when
        # Slack can't answer now (the message then waits for the next attempt).
        self.info = info
        self.clock = clock
        self._known: dict[str, tuple[float, Verdict]] = {}
        self._lock = threading.Lock()

    def route(self, message: Message) -> Message:
        """``message`` as it may be sent: unchanged, or a DM to its user saying why."""
        channel = message.channel
        # A DM (``D…``) is the requester's own with the bot, or one the bot can't post in.
        if message.method not in IN_ORIGIN or not channel or channel.startswith("D"):
            return message
        verdict = self.verdict(channel)
        why = verdict.why(channel)
        if why is None:
            return message
        facts = {"method": message.method, "request_id": message.request_id, "channel": channel}
        if verdict.error is not None:
            log.warning(
                "could not check whether the request's channel is shared with another "
                "organization: telling the requester directly",
                error=verdict.error,
                **facts,
            )
        else:
            log.info(
                "the request's channel is shared with another organization: "
                "telling the requester directly",
                **facts,
            )
        text, blocks = sent_directly(message.text, message.blocks, why)
        return Message(Method.DM, message.request_id, user=message.user, text=text, blocks=blocks)

    def verdict(self, channel: str) -> Verdict:
        """What Slack said of ``channel`` at most ``REMEMBER_FOR`` seconds ago."""
        now = self.clock()
        with self._lock:
            known = self._known.get(channel)
        if known is not None and now < known[0]:
            return known[1]
        try:
            info = self.info(channel)
        except CannotCheck as cannot:
            verdict = Verdict(shared=True, error=cannot.code)
        else:
            # A pending invitation counts: once accepted, the other side reads the history.
            verdict = Verdict(bool(info.get("is_ext_shared") or info.get("is_pending_ext_shared")))
        with self._lock:
            self._known[channel] = (now + REMEMBER_FOR, verdict)
        return verdict
