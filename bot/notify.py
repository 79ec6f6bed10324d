"""What the bot tells people in Slack after a request moves: approvals, outcomes, confirmations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot import blocks
from bot.auth0.errors import Auth0Error, Auth0Unavailable
from bot.blocks import esc
from bot.logs import get_logger
from bot.models import Kind, SecretRequest
from bot.workflow import ApplyError

log = get_logger(__name__)
UNREACHABLE = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}


class ApprovalPosts(Protocol):
    """Where approval messages are, and the claim that lets one replica post each."""

    def claim_post(self, request_id: str, now: datetime) -> bool:
        """Take the right to post; False when posted already or another replica is posting."""

    def release_post(self, request_id: str) -> None:
        """Give the claim back after a failed post."""

    def set_approval_message(self, request_id: str, channel: str, ts: str) -> None:
        """Remember where the message was posted."""

    def approval_message(self, request: SecretRequest) -> tuple[str, str] | None:
        """The posted message's channel and ts, or None."""


class Notifier:
    """Posts and updates the bot's Slack messages; Slack errors never undo a decision."""

    def __init__(
        self,
        client: WebClient,
        posts: ApprovalPosts,
        approval_channel: str | None,
        mention: str | None,
        now: Callable[[], datetime],
    ) -> None:
        self.client = client
        self.posts = posts
        self.now = now
        self.approval_channel = approval_channel
        self.mention = mention

    def request_waiting(self, request: SecretRequest) -> None:
        """Post the approval request and tell the requester where it waits."""
        if self.approval_channel is None:
            return
        if self.post_approval(request):
            where = f"<#{self.approval_channel}>"
        else:
            where = (
                "the approval channel, where the bot could not post: invite it there and the "
                "request will be posted"
            )
        self.tell(
            request.requester,
            request.origin_channel,
            f"Your request `{request.id}` to {blocks.VERB[Kind(request.kind)]} secret "
            f"`{esc(request.secret_name)}` on {blocks.target_noun(request)} "
            f"{esc(request.hook_name)} is waiting for "
            f"approval in {where}. It expires if nobody decides in time.",
        )

    def post_approval(self, request: SecretRequest) -> bool:
        """Post the approval request with its buttons; False when the channel is unreachable."""
        if self.approval_channel is None:
            return False
        if not self.posts.claim_post(request.id, self.now()):
            return True  # posted already, or another replica is posting it right now
        text, body = blocks.approval_message(request, self.mention)
        posted = self._post(self.approval_channel, text, body)
        if posted is None:
            self.posts.release_post(request.id)
            return False
        self.posts.set_approval_message(request.id, posted["channel"], posted["ts"])
        return True

    def decided(self, request: SecretRequest, outcome: str) -> None:
        """Replace the approval message's buttons with the outcome."""
        where = self.posts.approval_message(request)
        if where is None:  # never posted: nothing to update
            return
        text, body = blocks.decided_message(request, outcome)
        self._call(
            "chat_update",
            channel=where[0],
            ts=where[1],
            text=text,
            blocks=body,
        )

    def applied(self, request: SecretRequest) -> None:
        """Post the redacted confirmation to the origin channel, or DM the requester instead."""
        text, body = blocks.confirmation(request)
        self.decided(
            request,
            f":white_check_mark: {blocks.DONE[Kind(request.kind)].capitalize()}"
            f" (approved by <@{request.decided_by}>)",
        )
        posted = self._post(request.origin_channel, text, body)
        if posted is None:
            self.dm(
                request.requester,
                text + f"\n_(I could not post in <#{request.origin_channel}>"
                ": invite me there to confirm changes publicly.)_",
            )

    def failed(self, request: SecretRequest, error: Auth0Error | ApplyError | None) -> None:
        """Tell the requester and the approval channel why applying failed."""
        reason = error.message if error else "unknown error"
        # Timeouts and lost answers leave Auth0's state unknown: don't promise nothing changed.
        changed = blocks.failure_effect(request, isinstance(error, Auth0Unavailable))
        text = (
            f":x: Applying request `{request.id}` ({blocks.VERB[Kind(request.kind)]} "
            f"`{esc(request.secret_name)}` on {blocks.target_noun(request)} "
            f"{esc(request.hook_name)}) failed: "
            f"{esc(reason)}.{changed} The value was erased."
        )
        self.decided(request, text)
        self.tell(request.requester, request.origin_channel, text)
        if request.decided_by and request.decided_by != request.requester:
            self.dm(request.decided_by, text)

    def rejected(self, request: SecretRequest) -> None:
        """Tell the requester their request was rejected, with the comment if any."""
        comment = f" Comment: {esc(request.decision_comment)}" if request.decision_comment else ""
        self.decided(request, f":no_entry: Rejected by <@{request.decided_by}>.{comment}")
        self.tell(
            request.requester,
            request.origin_channel,
            f"Your request `{request.id}` for secret `{esc(request.secret_name)}` on "
            f"{blocks.target_noun(request)} "
            f"{esc(request.hook_name)} was rejected by <@{request.decided_by}>.{comment}",
        )

    def expired(self, request: SecretRequest) -> None:
        """Tell the requester their request expired and its value was erased."""
        self.decided(request, ":hourglass: Expired before anyone decided; the value was erased.")
        self.tell(
            request.requester,
            request.origin_channel,
            f"Your request `{request.id}` for secret `{esc(request.secret_name)}` on "
            f"{blocks.target_noun(request)} "
            f"{esc(request.hook_name)} expired; its value was erased. Submit it again "
            "if it is still needed.",
        )

    def tell(self, user: str, channel: str, text: str) -> None:
        """An ephemeral message in ``channel``, or a DM when the bot cannot post there."""
        if self._call("chat_postEphemeral", channel=channel, user=user, text=text) is None:
            self.dm(user, text)

    def dm(self, user: str, text: str) -> None:
        """A direct message to ``user``."""
        opened = self._call("conversations_open", users=user)
        if opened is not None:
            self._call("chat_postMessage", channel=opened["channel"]["id"], text=text)

    def _post(self, channel: str, text: str, body: list[dict[str, Any]]) -> Any:
        """A message with blocks (links not unfurled); None when Slack refused it."""
        return self._call(
            "chat_postMessage", channel=channel, text=text, blocks=body, unfurl_links=False
        )

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(**kwargs)
        except SlackApiError as error:
            code = error.response.get("error")
            level = "info" if code in UNREACHABLE else "warning"
            getattr(log, level)("slack call failed", method=method, error=code)
            return None
        except (SlackClientError, OSError) as error:  # Slack unreachable: the decision stands
            log.warning("slack call failed", method=method, error=type(error).__name__)
            return None
