"""Pieces every Block Kit surface shares: verbs, the target's noun, sections, notes, dates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View

from bot.approvals.states import Kind
from bot.db.models import SecretRequest
from bot.slack.text import shown
from bot.targets import DEFAULT_TENANT, TargetKind

VERB = {Kind.ADD: "add", Kind.UPDATE: "rotate", Kind.REMOVE: "remove"}
DONE = {Kind.ADD: "added", Kind.UPDATE: "rotated", Kind.REMOVE: "removed"}


def kind_noun(request: SecretRequest) -> str:
    """What kind of target the request changes: "hook" or "action"."""
    return str(TargetKind(request.target_kind or TargetKind.HOOK))


def named_tenant(request: SecretRequest) -> bool:
    """Whether the request's tenant comes from a policy file (messages then name it)."""
    return bool(request.tenant) and request.tenant != DEFAULT_TENANT


def target_noun(request: SecretRequest) -> str:
    """What the request changes, as people read it: "hook" or "action", after the tenant's
    name with a policy file ("prod · action", CONTRACT §6)."""
    noun = kind_noun(request)
    return f"{request.tenant} · {noun}" if named_tenant(request) else noun


def request_label(request: SecretRequest) -> str:
    """A request as a short answer names it: its id, and its target after the tenant with a
    policy file (``hsr_… (prod · action enrich)``)."""
    if not named_tenant(request):
        return f"`{request.id}`"
    return f"`{request.id}` ({target_noun(request)} {shown(request.target_name)})"


def message(text: str, blocks: list[Block]) -> tuple[str, list[dict[str, Any]]]:
    """A message's fallback text and its blocks as Slack takes them."""
    return text, [b.to_dict() for b in blocks]


def section(text: str) -> SectionBlock:
    """A block of mrkdwn (text already escaped where it came from users)."""
    return SectionBlock(text=MarkdownTextObject(text=text))


def note(text: str) -> ContextBlock:
    """A line of small mrkdwn print (text already escaped where it came from users)."""
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def slack_date(moment: datetime) -> str:
    """A date each reader sees in their own time zone (the ISO form where Slack can't)."""
    epoch = int(moment.timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} at {{time}}|{moment.isoformat()}>"


def info_modal(title: str, text: str) -> dict[str, Any]:
    """A modal that only says something (used to answer a submission that lost a race)."""
    view = View(
        type="modal",
        title=title[:24],
        close="Close",
        blocks=[SectionBlock(text=MarkdownTextObject(text=text))],
    )
    return view.to_dict()
