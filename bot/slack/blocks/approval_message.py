"""The approval request message, its updates once decided, and the Approve/Reject modal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.approvals.policy import Principals
from bot.approvals.states import Kind, State
from bot.db.models import SecretRequest
from bot.limits import COMMENT_MAX
from bot.slack import ids
from bot.slack.blocks.parts import (
    VERB,
    kind_noun,
    message,
    named_tenant,
    note,
    section,
    slack_date,
    target_noun,
)
from bot.slack.text import COMMENT_LABEL, REASON_LABEL, SECTION_TEXT_MAX, esc, shown

if TYPE_CHECKING:
    from bot.approvals.approving import Tally


def approval_message(
    request: SecretRequest, mention: str | None, tally: Tally | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The approval request posted to the approval channel, with Approve and Reject buttons
    (and, with ``tally``, the approvals so far)."""
    expires = slack_date(request.expires_at)
    head = f"{mention} " if mention else ""
    text = (
        f"{head}<@{request.requester}> asks to {VERB[Kind(request.kind)]} secret "
        f"`{esc(request.secret_name)}` on {target_noun(request)} {shown(request.target_name)}"
    )
    blocks: list[Block] = [
        *_summary(request, f"{head}*Approval needed*\n"),
        *([section(progress_text(tally))] if tally is not None and shows_progress(request) else []),
        note(f"Request `{request.id}` expires {expires}. The requester cannot approve it."),
        ActionsBlock(
            block_id=ids.BLOCK_DECISION,
            elements=[
                ButtonElement(
                    action_id=ids.ACTION_APPROVE, text="Approve", style="primary", value=request.id
                ),
                ButtonElement(
                    action_id=ids.ACTION_REJECT, text="Reject", style="danger", value=request.id
                ),
            ],
        ),
    ]
    return message(text, blocks)


def decided_message(
    request: SecretRequest,
    outcome: str,
    comment: str | None = None,
    tally: Tally | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """The approval message once decided: the outcome (and the decider's comment as typed),
    the approvals it had (with ``tally``), and no buttons."""
    text = f"Request `{request.id}`: {outcome}"
    said = [_typed(COMMENT_LABEL, comment)] if comment else []
    shown = [section(progress_text(tally))] if tally is not None else []
    return message(text, [*_summary(request), *shown, note(outcome), *said])


def shows_progress(request: SecretRequest) -> bool:
    """Whether the message counts approvals: with a policy file, or more than one needed (one
    approval from the variables' list reads as before)."""
    return named_tenant(request) or request.required_approvals > 1


def progress_text(tally: Tally) -> str:
    """``Approvals: K of N`` and who approved; for a quorum, a line per term."""
    progress = tally.progress
    seated = {person: index for index, people in enumerate(progress.filled) for person in people}
    head = f"*Approvals:* {progress.counted} of {progress.required}"
    if not tally.rule.quorum:
        people = [f"<@{p}>" for p in tally.counted]
        return head + (f": {', '.join(people)}" if people else "")
    lines = [head]
    for index, term in enumerate(tally.rule.terms):
        people = [f"<@{p}>" for p in tally.counted if seated.get(p) == index]
        filled = ": " + ", ".join(people) if people else ""
        who = Principals.parse(term.principals).describe()
        lines.append(f"• {len(people)} of {term.count} from {who}{filled}")
    return "\n".join(lines)


def quorum_met_message(request: SecretRequest, tally: Tally) -> tuple[str, list[dict[str, Any]]]:
    """The approval message once the last approval needed is in: no buttons, who approved."""
    outcome = ":white_check_mark: Approved; the change is being applied."
    text = f"Request `{request.id}`: {outcome}"
    return message(text, [*_summary(request), section(progress_text(tally)), note(outcome)])


def describe_state(request: SecretRequest) -> str:
    """A short account of a decided request, for whoever lost the race."""
    who = f" by <@{request.decided_by}>" if request.decided_by else ""
    return {
        State.APPROVED: f"already approved{who} and being applied",
        State.APPLIED: f"already approved{who} and applied",
        State.FAILED: f"already approved{who}; applying it failed ({request.failure_reason})",
        State.REJECTED: f"already rejected{who}",
        State.EXPIRED: "expired before anyone decided",
        State.PENDING: "still pending",
    }[State(request.state)]


def decision_modal(request: SecretRequest, approve: bool) -> dict[str, Any]:
    """The approval (or rejection) modal; private_metadata carries the request id."""
    verb = "Approve" if approve else "Reject"
    blocks: list[Block] = [
        *_summary(request),
        InputBlock(
            block_id=ids.BLOCK_COMMENT,
            label="Comment",
            optional=True,
            element=PlainTextInputElement(
                action_id=ids.BLOCK_COMMENT, multiline=True, max_length=COMMENT_MAX
            ),
        ),
    ]
    view = View(
        type="modal",
        callback_id=ids.CALLBACK_APPROVE if approve else ids.CALLBACK_REJECT,
        title=f"{verb} request",
        submit=verb,
        close="Cancel",
        private_metadata=request.id,
        blocks=blocks,
    )
    return view.to_dict()


def _facts(request: SecretRequest) -> str:
    """The request's facts as the bot states them (names escaped and kept on one line)."""
    lines = [
        f"*{kind_noun(request).capitalize()}:* "
        f"{shown(request.target_name)} (`{request.target_id}`)",
        f"*Secret:* `{esc(request.secret_name)}` ({VERB[Kind(request.kind)]})",
        f"*Requested by:* <@{request.requester}>",
    ]
    if request.fingerprint:
        lines.append(f"*Value fingerprint:* `{request.fingerprint}`")
    if named_tenant(request):  # a policy file's tenant and the rule that decides the request
        lines[:0] = [f"*Tenant:* {esc(request.tenant)}"]
        lines.append(f"*Rule:* {esc(request.rule_name or '')}")
    return "\n".join(lines)


def _summary(request: SecretRequest, head: str = "") -> list[Block]:
    """The facts, then the requester's reason as typed."""
    blocks: list[Block] = [section(head + _facts(request))]
    if request.reason:
        blocks.append(_typed(REASON_LABEL, request.reason))
    return blocks


def _typed(label: str, text: str) -> SectionBlock:
    """What a person typed, in a block of its own: plain text (no mrkdwn is live), one line
    (no forged lines), invisible and direction-changing characters shown as code points."""
    return SectionBlock(text=PlainTextObject(text=_fitted(f"{label}: ", text), emoji=False))


def _fitted(prefix: str, text: str) -> str:
    """``prefix`` and ``text`` as shown, cut and marked "…" past a section's limit: a message
    Slack would refuse is never built, whatever got past the forms (a stored request)."""
    room = SECTION_TEXT_MAX - len(prefix)
    out = shown(text)
    if len(out) <= room:
        return prefix + out
    low, high = 0, len(text)  # the longest beginning that fits with its "…": between these
    while low < high:
        middle = (low + high + 1) // 2
        if len(shown(text[:middle])) + 1 <= room:
            low = middle
        else:
            high = middle - 1
    return prefix + shown(text[:low]) + "…"
