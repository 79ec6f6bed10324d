"""What the bot will tell people after a request moves, built as outbox messages (data only)."""

from __future__ import annotations

from typing import Any

from bot.approvals.results import Failure
from bot.approvals.states import Kind
from bot.db.models import SecretRequest
from bot.outbox.messages import Message, Method
from bot.slack.blocks.approval_message import approval_message, decided_message, describe_state
from bot.slack.blocks.confirmation import confirmation, failure_effect
from bot.slack.blocks.parts import DONE, VERB, target_noun
from bot.slack.text import esc, shown
from bot.targets.errors import TargetUnavailable

COULD_NOT_POST = (
    "the approval channel, where the bot could not post: invite it there and the request "
    "will be posted"
)


class Notifier:
    """Builds the messages each transition implies; the workflow records them in its transaction
    and ``bot.outbox.worker`` sends them."""

    def __init__(self, approval_channel: str | None, mention: str | None) -> None:
        self.approval_channel = approval_channel
        self.mention = mention

    def submitted(self, request: SecretRequest) -> list[Message]:
        """Post the approval request; once it lands, tell the requester where it waits. The
        post itself is rendered when it is sent (``approval``), from the request as stored:
        the ack that queues it does not pay for the blocks."""
        if self.approval_channel is None:
            return []
        return [
            Message(
                Method.POST_STORED_APPROVAL,
                request.id,
                channel=self.approval_channel,
                user=request.requester,
                origin=request.origin_channel,
                then=self._waiting(request, f"<#{self.approval_channel}>"),
                unreachable=self._waiting(request, COULD_NOT_POST),
            )
        ]

    def approval(self, request: SecretRequest) -> tuple[str, list[dict[str, Any]]]:
        """The approval request's text and blocks, with Approve and Reject buttons."""
        return approval_message(request, self.mention)

    def _waiting(self, request: SecretRequest, where: str) -> str:
        return (
            f"Your request `{request.id}` to {VERB[Kind(request.kind)]} secret "
            f"`{esc(request.secret_name)}` on {target_noun(request)} "
            f"{shown(request.target_name)} is waiting for "
            f"approval in {where}. It expires if nobody decides in time."
        )

    def applied(self, request: SecretRequest) -> list[Message]:
        """Update the approval message, post the redacted confirmation (or DM it instead)."""
        text, body = confirmation(request)
        outcome = (
            f":white_check_mark: {DONE[Kind(request.kind)].capitalize()}"
            f" (approved by <@{request.decided_by}>)"
        )
        fallback = (
            text + f"\n_(I could not post in <#{request.origin_channel}>"
            ": invite me there to confirm changes publicly.)_"
        )
        confirm = Message(
            Method.CONFIRM,
            request.id,
            channel=request.origin_channel,
            user=request.requester,
            text=text,
            blocks=body,
            fallback=fallback,
        )
        return [*self.decided(request, outcome), confirm]

    def failed(self, request: SecretRequest, error: Failure | None) -> list[Message]:
        """Tell the requester, the approver and the approval channel why applying failed."""
        reason = error.message if error else "unknown error"
        # Timeouts and lost answers leave Auth0's state unknown: don't promise nothing changed.
        changed = failure_effect(request, isinstance(error, TargetUnavailable))
        text = (
            f":x: Applying request `{request.id}` ({VERB[Kind(request.kind)]} "
            f"`{esc(request.secret_name)}` on {target_noun(request)} "
            f"{shown(request.target_name)}) failed: "
            f"{esc(reason)}.{changed} The value was erased."
        )
        messages = [*self.decided(request, text), self.tell(request, text)]
        if request.decided_by and request.decided_by != request.requester:
            messages.append(Message(Method.DM, request.id, user=request.decided_by, text=text))
        return messages

    def checking(self, request: SecretRequest) -> list[Message]:
        """Auth0 left the write's outcome unknown: say it is being checked, promise nothing."""
        text = (
            f":hourglass_flowing_sand: Request `{request.id}` ({VERB[Kind(request.kind)]} "
            f"`{esc(request.secret_name)}` on {target_noun(request)} "
            f"{shown(request.target_name)}): Auth0 did not "
            "confirm the change. The bot is reading Auth0 back to find out whether it landed "
            "and will say when it knows."
        )
        return [*self.decided(request, text), self.tell(request, text)]

    def still_applying(self, request: SecretRequest) -> list[Message]:
        """An apply that is taking long: tell the requester it is still going."""
        text = (
            f"Request `{request.id}` ({VERB[Kind(request.kind)]} "
            f"`{esc(request.secret_name)}`) was approved and is still being applied: Auth0 is "
            "slow to answer. You will be told the outcome."
        )
        return [self.tell(request, text)]

    def rejected(self, request: SecretRequest) -> list[Message]:
        """Tell the requester their request was rejected, with the comment if any."""
        comment = request.decision_comment
        said = f" Comment: {shown(comment)}" if comment else ""
        outcome = f":no_entry: Rejected by <@{request.decided_by}>."
        text = (
            f"Your request `{request.id}` for secret `{esc(request.secret_name)}` on "
            f"{target_noun(request)} "
            f"{shown(request.target_name)} was rejected by <@{request.decided_by}>.{said}"
        )
        return [*self.decided(request, outcome, comment), self.tell(request, text)]

    def expired(self, request: SecretRequest) -> list[Message]:
        """Tell the requester their request expired and its value was erased."""
        outcome = ":hourglass: Expired before anyone decided; the value was erased."
        text = (
            f"Your request `{request.id}` for secret `{esc(request.secret_name)}` on "
            f"{target_noun(request)} "
            f"{shown(request.target_name)} expired; its value was erased. Submit it again "
            "if it is still needed."
        )
        return [*self.decided(request, outcome), self.tell(request, text)]

    def decided(
        self, request: SecretRequest, outcome: str, comment: str | None = None
    ) -> list[Message]:
        """Replace the approval message's buttons with the outcome (once it was posted)."""
        if self.approval_channel is None:
            return []
        text, body = decided_message(request, outcome, comment)
        return [Message(Method.UPDATE_APPROVAL, request.id, text=text, blocks=body)]

    def stale_copy(self, request: SecretRequest, channel: str, ts: str) -> list[Message]:
        """A duplicate approval message (posted before a crash, its ts never stored) that
        someone clicked after the decision: replace its buttons with the request's state."""
        outcome = f"This copy is out of date: the request was {describe_state(request)}."
        text, body = decided_message(request, outcome)
        return [
            Message(
                Method.UPDATE_APPROVAL, request.id, channel=channel, ts=ts, text=text, blocks=body
            )
        ]

    @staticmethod
    def tell(request: SecretRequest, text: str) -> Message:
        """An ephemeral message to the requester where they asked, or a DM."""
        return Message(
            Method.TELL,
            request.id,
            channel=request.origin_channel,
            user=request.requester,
            text=text,
        )


def not_posted(request_id: str, code: str, render_failed: bool) -> str:
    """What the requester is told when their approval request can never be posted."""
    why = "the bot could not build the message." if render_failed else f"Slack answered `{code}`."
    return (
        f"The approval request `{request_id}` could not be posted: {why}"
        " Ask an administrator to check the bot."
    )
