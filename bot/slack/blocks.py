"""Block Kit builders: pure functions from domain data to Slack views and messages."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    ExternalDataSelectElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    OptionGroup,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.approvals.states import Kind, State
from bot.db.models import SecretRequest
from bot.limits import COMMENT_MAX, MAX_SECRETS_PER_HOOK, NAME_MAX, REASON_MAX, Provenance
from bot.slack import ids
from bot.slack.text import cut, one_line
from bot.targets import Described, Offer, TargetKind

# Slack caps plain_text_input.max_length at 3000, below Auth0's sensible 4096.
INPUT_MAX = 3000
# Slack's limit on a section block's text.
SECTION_TEXT_MAX = 3000
# The labels typed text is shown under (the forms check it fits: fits_typed).
REASON_LABEL, COMMENT_LABEL = "Reason", "Comment"
# Slack shows at most 100 options, each label at most 75 characters.
MAX_OPTIONS = 100
LABEL_MAX = 75

VERB = {Kind.ADD: "add", Kind.UPDATE: "rotate", Kind.REMOVE: "remove"}
DONE = {Kind.ADD: "added", Kind.UPDATE: "rotated", Kind.REMOVE: "removed"}
TITLE = {
    Kind.ADD: "Add a hook secret",
    Kind.UPDATE: "Rotate a hook secret",
    Kind.REMOVE: "Remove a hook secret",
}
CALLBACK = {
    Kind.ADD: ids.CALLBACK_ADD,
    Kind.UPDATE: ids.CALLBACK_UPDATE,
    Kind.REMOVE: ids.CALLBACK_REMOVE,
}

USAGE = """*Usage:* `/hook-secret <command>`
• `add [HOOK] [NAME]`: request a new secret on a hook (type the value in the form, never here)
• `update [HOOK] [NAME]`: rotate an existing secret's value
• `remove [HOOK] [NAME]`: remove a secret
• `list [HOOK]`: show a hook's secret names and who last set them
• `help`: this text
Quote a hook name that has spaces: `/hook-secret add "Client Credentials" API_KEY`."""


def esc(text: str) -> str:
    """Neutralise mrkdwn control characters in user-supplied text (ampersand first)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shown(text: str) -> str:
    """User-typed text inside mrkdwn: one line, invisible characters shown, mrkdwn escaped."""
    return esc(one_line(text))


def hook_label(hook: Described) -> str:
    """Option text for a hook or action: its name and trigger, within Slack's 75 characters."""
    label = f"{hook.name} ({hook.trigger_id})"
    if not hook.enabled:
        label += " [disabled]"
    return cut(label, LABEL_MAX)


def hook_option(hook: Described) -> Option:
    """A select option whose value is the Auth0 hook id, or ``action:`` and the action id."""
    value = hook.ref.key
    return Option(text=hook_label(hook), value=value)


GROUP_LABELS = {TargetKind.ACTION: "Actions", TargetKind.HOOK: "Hooks"}


def target_options(offers: list[Offer]) -> dict[str, Any]:
    """The picker's options load: groups ``Actions`` and ``Hooks`` when the tenant offers
    actions (a kind it lacks says why in its group); a plain hook list when it offers none."""
    actions = next((o for o in offers if o.kind is TargetKind.ACTION), None)
    hooks = next((o for o in offers if o.kind is TargetKind.HOOK), None)
    if actions is None or not actions.targets:
        shown = hooks.targets if hooks else []
        return {"options": [hook_option(h).to_dict() for h in shown[:MAX_OPTIONS]]}
    groups = []
    for offer in (actions, hooks):
        if offer is None:
            continue
        options = [hook_option(t) for t in offer.targets[:MAX_OPTIONS]]
        if not options:
            options = [unavailable_option(f"no hooks: {offer.missing or 'none'}")]
        groups.append(OptionGroup(label=GROUP_LABELS[offer.kind], options=options).to_dict())
    return {"option_groups": groups}


def unavailable_option(reason: str) -> Option:
    """The one option shown when Auth0 can't list hooks: not a hook id, so choosing it asks
    for a hook again."""
    return Option(text=f"Auth0: {reason}"[:LABEL_MAX], value=ids.OPTION_UNAVAILABLE)


def hook_picker(hooks: list[Described]) -> list[dict[str, Any]]:
    """The list command's picker: which hook's secrets to show."""
    picker = SectionBlock(
        text=MarkdownTextObject(text="Which hook's or action's secrets?"),
        accessory=StaticSelectElement(
            action_id=ids.LIST_PICKER,
            placeholder="Choose a hook",
            options=[hook_option(h) for h in hooks[:MAX_OPTIONS]],
        ),
    )
    return [picker.to_dict()]


def secret_list(
    hook: Described,
    names: list[str],
    origin: dict[str, Provenance],
    *,
    cap: int = MAX_SECRETS_PER_HOOK,
    stamps: dict[str, str] | None = None,
    undeployed: bool = False,
) -> str:
    """One line per secret name with who last set it through the bot, never a value; for an
    action also when Auth0 last changed each, and whether its draft holds undeployed changes."""
    lines = [f"*{esc(hook.name)}* (`{hook.id}`): {len(names)} of {cap} secrets"]
    if undeployed:
        lines.append(":warning: The action has changes that are not deployed yet.")
    for name in sorted(names):
        record = origin.get(name)
        stamp = f" (updated in Auth0 {stamps[name]})" if stamps and name in stamps else ""
        if record is None:
            lines.append(f"• `{esc(name)}`{stamp}: set outside the bot")
            continue
        verb = "added" if record.added else "rotated"
        approver = (
            f", approved by <@{record.approver}>" if record.approver != record.requester else ""
        )
        lines.append(
            f"• `{esc(name)}`{stamp}: {verb} by <@{record.requester}>{approver} "
            f"at {record.timestamp}"
        )
    if not names:
        lines.append("_No secrets._")
    return "\n".join(lines)


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


def request_modal(
    kind: Kind,
    *,
    private_metadata: str,
    require_reason: bool,
    hook: Described | None = None,
    secret_name: str | None = None,
    notice: str | None = None,
) -> dict[str, Any]:
    """The request form: hook, secret name, value (not for remove) and reason."""
    if secret_name is not None and len(secret_name) > NAME_MAX:
        secret_name = None  # never valid, and past the field's max_length Slack would refuse
    if hook is None and notice is None:
        # What a slash command opens differs only in its metadata: built with the models
        # (which check Slack's limits) once per shape, each copy a fresh dict.
        view: dict[str, Any] = json.loads(_blank_form(kind, require_reason, secret_name))
        view["private_metadata"] = private_metadata
        return view
    return _request_view(kind, private_metadata, require_reason, hook, secret_name, notice)


@functools.lru_cache(maxsize=64)
def _blank_form(kind: Kind, require_reason: bool, secret_name: str | None) -> str:
    return json.dumps(_request_view(kind, "", require_reason, None, secret_name, None))


def _request_view(
    kind: Kind,
    private_metadata: str,
    require_reason: bool,
    hook: Described | None,
    secret_name: str | None,
    notice: str | None,
) -> dict[str, Any]:
    blocks: list[Block] = [_note(notice)] if notice else []
    blocks += _request_inputs(kind, require_reason, hook, secret_name)
    submit = "Request" if require_reason else VERB[kind].capitalize()
    view = View(
        type="modal",
        callback_id=CALLBACK[kind],
        title=TITLE[kind],
        submit=submit,
        close="Cancel",
        private_metadata=private_metadata,
        blocks=blocks,
        # Cancel tells the bot (view_closed), which stops keeping the target's names fresh.
        notify_on_close=True,
    )
    return view.to_dict()


def _request_inputs(
    kind: Kind, require_reason: bool, hook: Described | None, secret_name: str | None
) -> list[Block]:
    """The request form's input blocks, each block id equal to its element's action id."""
    value = InputBlock(
        block_id=ids.BLOCK_SECRET_VALUE,
        label="Secret value",
        hint="Sent to Auth0 only; never shown in Slack, logs or the database in clear.",
        element=PlainTextInputElement(action_id=ids.BLOCK_SECRET_VALUE, max_length=INPUT_MAX),
    )
    return [
        InputBlock(
            block_id=ids.BLOCK_HOOK,
            label="Hook or action",
            # A pick is sent at once (block_actions), so the target's names are read before submit.
            dispatch_action=True,
            element=ExternalDataSelectElement(
                action_id=ids.BLOCK_HOOK,
                placeholder="Search actions and hooks by name",
                min_query_length=0,
                initial_option=hook_option(hook) if hook else None,
            ),
        ),
        InputBlock(
            block_id=ids.BLOCK_SECRET_NAME,
            label="Secret name",
            hint=f"Letters, digits, _ and -, starting with a letter or _ (at most {NAME_MAX}).",
            element=PlainTextInputElement(
                action_id=ids.BLOCK_SECRET_NAME, initial_value=secret_name, max_length=NAME_MAX
            ),
        ),
        *([value] if kind is not Kind.REMOVE else []),
        InputBlock(
            block_id=ids.BLOCK_REASON,
            label="Reason",
            optional=not require_reason,
            element=PlainTextInputElement(
                action_id=ids.BLOCK_REASON, multiline=True, max_length=REASON_MAX
            ),
        ),
    ]


def _facts(request: SecretRequest) -> str:
    """The request's facts as the bot states them (names escaped and kept on one line)."""
    lines = [
        f"*{target_noun(request).capitalize()}:* "
        f"{shown(request.target_name)} (`{request.target_id}`)",
        f"*Secret:* `{esc(request.secret_name)}` ({VERB[Kind(request.kind)]})",
        f"*Requested by:* <@{request.requester}>",
    ]
    if request.fingerprint:
        lines.append(f"*Value fingerprint:* `{request.fingerprint}`")
    return "\n".join(lines)


def _typed(label: str, text: str) -> SectionBlock:
    """What a person typed, in a block of its own: plain text (no mrkdwn is live), one line
    (no forged lines), invisible and direction-changing characters shown as code points."""
    return SectionBlock(text=PlainTextObject(text=_fitted(f"{label}: ", text), emoji=False))


def fits_typed(label: str, text: str) -> bool:
    """Whether ``text`` shown under ``label`` fits a section whole (each invisible character
    takes eight, ``<`` four): the forms refuse what doesn't."""
    return len(label) + 2 + len(shown(text)) <= SECTION_TEXT_MAX


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


def _summary(request: SecretRequest, head: str = "") -> list[Block]:
    """The facts, then the requester's reason as typed."""
    blocks: list[Block] = [_section(head + _facts(request))]
    if request.reason:
        blocks.append(_typed(REASON_LABEL, request.reason))
    return blocks


def approval_message(
    request: SecretRequest, mention: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """The approval request posted to the approval channel, with Approve and Reject buttons."""
    expires = _slack_date(request.expires_at)
    head = f"{mention} " if mention else ""
    text = (
        f"{head}<@{request.requester}> asks to {VERB[Kind(request.kind)]} secret "
        f"`{esc(request.secret_name)}` on {target_noun(request)} {shown(request.target_name)}"
    )
    blocks: list[Block] = [
        *_summary(request, f"{head}*Approval needed*\n"),
        _note(f"Request `{request.id}` expires {expires}. The requester cannot approve it."),
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
    return _message(text, blocks)


def decided_message(
    request: SecretRequest, outcome: str, comment: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The approval message once decided: the outcome (and the decider's comment as typed),
    and no buttons."""
    text = f"Request `{request.id}`: {outcome}"
    said = [_typed(COMMENT_LABEL, comment)] if comment else []
    return _message(text, [*_summary(request), _note(outcome), *said])


def confirmation(request: SecretRequest) -> tuple[str, list[dict[str, Any]]]:
    """The redacted confirmation: who, which hook, which secret, never the value."""
    kind = Kind(request.kind)
    approver = (
        f"approved by <@{request.decided_by}>"
        if request.decided_by and request.decided_by != request.requester
        else "self-confirmed (no approval required)"
    )
    noun = target_noun(request)
    deployed = (
        f" and deployed as version {request.target_version}"
        if noun == TargetKind.ACTION and request.target_version is not None
        else ""
    )
    text = (
        f"Secret `{esc(request.secret_name)}` {DONE[kind]} on {noun} {shown(request.target_name)}"
        f"{deployed} by <@{request.requester}>, {approver}."
    )
    note = f"Request `{request.id}` · {noun} id `{request.target_id}` · the value is never shown"
    return _message(text, [_section(f":white_check_mark: {text}"), _note(note)])


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


def info_modal(title: str, text: str) -> dict[str, Any]:
    """A modal that only says something (used to answer a submission that lost a race)."""
    view = View(
        type="modal",
        title=title[:24],
        close="Close",
        blocks=[SectionBlock(text=MarkdownTextObject(text=text))],
    )
    return view.to_dict()


def target_noun(request: SecretRequest) -> str:
    """What the request changes, as people read it: "hook" or "action"."""
    return str(TargetKind(request.target_kind or TargetKind.HOOK))


def failure_effect(request: SecretRequest, unknown: bool) -> str:
    """What a failed apply left behind, as people are told it."""
    if unknown:  # a timeout or a lost answer: don't promise nothing changed
        return ""
    if request.target_kind == TargetKind.ACTION and request.apply_phase not in (None, "planned"):
        return " Nothing was deployed; the action's draft in Auth0 holds the change."
    return " Nothing was changed by it."


def _message(text: str, blocks: list[Block]) -> tuple[str, list[dict[str, Any]]]:
    """A message's fallback text and its blocks as Slack takes them."""
    return text, [b.to_dict() for b in blocks]


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text))


def _note(text: str) -> ContextBlock:
    """A line of small mrkdwn print (text already escaped where it came from users)."""
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def _slack_date(moment: datetime) -> str:
    epoch = int(moment.timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} at {{time}}|{moment.isoformat()}>"
