"""What the bot will tell people after a request moves, built as outbox messages (data only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.approvals.results import Failure
from bot.approvals.rulebook import Rulebook, still_deciding
from bot.approvals.rules import Rule
from bot.approvals.states import Kind
from bot.db.models import SecretRequest
from bot.outbox.messages import Message, Method
from bot.slack.blocks.approval_message import (
    approval_message,
    decided_message,
    describe_state,
    quorum_met_message,
    shows_progress,
)
from bot.slack.blocks.confirmation import confirmation, failure_effect
from bot.slack.blocks.parts import DONE, VERB, target_noun
from bot.slack.text import esc, shown
from bot.targets.errors import TargetUnavailable

if TYPE_CHECKING:
    from bot.approvals.approving import Tally

COULD_NOT_POST = (
    "the approval channel, where the bot could not post: invite it there and the request "
    "will be posted"
)


class Notifier:
    """Builds the messages each transition implies; the workflow records them in its transaction
    and ``bot.outbox.worker`` sends them."""

    def __init__(
        self,
        approval_channel: str | None = None,
        mention: str | None = None,
        *,
        rules: Rulebook | None = None,
        tally: Callable[[SecretRequest, Rule], Tally] | None = None,
    ) -> None:
        self.approval_channel = approval_channel
        self.mention = mention
        # With a policy: each request's channel and mention from the rule that decides it,
        # and its approvals so far (``Approving.tally``) in the message.
        self.rules = rules
        self.tally = tally

    def _rule(self, request: SecretRequest) -> Rule | None:
        return self.rules.rule_of(request) if self.rules is not None else None

    def channel_for(self, request: SecretRequest) -> str | None:
        """Where the request's approval is asked: its rule's channel (the variable's without
        a policy)."""
        if self.rules is None:
            return self.approval_channel
        rule = self._rule(request)
        return rule.channel if rule is not None else None

    def mention_for(self, request: SecretRequest) -> str | None:
        """The user groups pinged by the approval request: those that may approve it."""
        rule = self._rule(request)
        if rule is None:
            return self.mention
        lists = [rule.approvers, *(t.principals for t in rule.terms)]
        groups = dict.fromkeys(i for ids in lists for i in ids if i.startswith("S"))
        return " ".join(f"<!subteam^{g}>" for g in groups) or None

    def submitted(self, request: SecretRequest) -> list[Message]:
        """Post the approval request; once it lands, tell the requester where it waits. The
        post itself is rendered when it is sent (``approval``), from the request as stored:
        the ack that queues it does not pay for the blocks."""
        channel = self.channel_for(request)
        if channel is None or request.required_approvals == 0:
            return []
        return [
            Message(
                Method.POST_STORED_APPROVAL,
                request.id,
                channel=channel,
                user=request.requester,
                origin=request.origin_channel,
                then=self._waiting(request, f"<#{channel}>"),
                unreachable=self._waiting(request, COULD_NOT_POST),
            )
        ]

    def approval(self, request: SecretRequest) -> tuple[str, list[dict[str, Any]]]:
        """The approval request's text and blocks, with Approve and Reject buttons (and the
        approvals so far, with a policy)."""
        rule = self._rule(request)
        tally = self.tally(request, rule) if rule is not None and self.tally else None
        return approval_message(request, self.mention_for(request), tally)

    def progress(self, request: SecretRequest, tally: Tally) -> list[Message]:
        """One approval more, the quorum not met yet: the message shows who approved (sent
        only while the request is still pending)."""
        text, body = approval_message(request, None, tally)
        return [Message(Method.UPDATE_PENDING_APPROVAL, request.id, text=text, blocks=body)]

    def quorum_met(self, request: SecretRequest, tally: Tally) -> list[Message]:
        """The last approval needed is in: the buttons go, the approvers stay (where the
        message counts approvals: without a file and with one approval needed, the apply's
        outcome replaces it as before)."""
        if not shows_progress(request):
            return []
        text, body = quorum_met_message(request, tally)
        return [Message(Method.UPDATE_APPROVAL, request.id, text=text, blocks=body)]

    def _waiting(self, request: SecretRequest, where: str) -> str:
        return (
            f"Your request `{request.id}` to {VERB[Kind(request.kind)]} secret "
            f"`{esc(request.secret_name)}` on {target_noun(request)} "
            f"{shown(request.target_name)} is waiting for "
            f"approval in {where}. It expires if nobody decides in time."
        )

    def applied(self, request: SecretRequest) -> list[Message]:
        """Update the approval message, post the redacted confirmation (or DM it instead)."""
        approvers = self._approved_by(request)
        text, body = confirmation(request, approvers)
        by = ", ".join(f"<@{a}>" for a in approvers)
        outcome = f":white_check_mark: {DONE[Kind(request.kind)].capitalize()} (approved by {by})"
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
            f"`{esc(request.secret_name)}` on {target_noun(request)} "
            f"{shown(request.target_name)}) was approved and is still being applied: Auth0 is "
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

    def policy_changed(self, request: SecretRequest) -> list[Message]:
        """The rule that decided the request is gone or changed: it expired unapplied."""
        outcome = (
            ":hourglass: Expired: the policy's rule for this target changed since it was "
            "requested; the value was erased."
        )
        text = (
            f"Your request `{request.id}` for secret `{esc(request.secret_name)}` on "
            f"{target_noun(request)} {shown(request.target_name)} expired because the "
            "policy's rule for it changed; its value was erased. Request it again to have it "
            "decided under the current rule."
        )
        return [*self.decided(request, outcome), self.tell(request, text)]

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
        """Replace the approval message's buttons with the outcome (once it was posted), and
        the approvals it had where the message counts them."""
        if request.required_approvals == 0 or (self.rules is None and not self.approval_channel):
            return []
        text, body = decided_message(request, outcome, comment, self._tally(request))
        return [Message(Method.UPDATE_APPROVAL, request.id, text=text, blocks=body)]

    def _tally(self, request: SecretRequest) -> Tally | None:
        """The request's approvals, where its message counts them (a policy file, or more
        than one needed)."""
        rule = self._rule(request)
        if rule is None or self.tally is None or not shows_progress(request):
            return None
        if not still_deciding(request, rule):  # counted against the rule that decides it now,
            return None  # its approvals would read as another rule's (a change expired it)
        return self.tally(request, rule)

    def _approved_by(self, request: SecretRequest) -> list[str]:
        """Who approved: everyone counted toward the quorum, or the one who decided."""
        tally = self._tally(request)
        if tally is not None and tally.counted:
            return list(tally.counted)
        return [request.decided_by] if request.decided_by else []

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
