"""What ``list`` and ``help`` show: the target picker, secret names and who set them, usage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock, StaticSelectElement

from bot.limits import MAX_SECRETS_PER_HOOK, Provenance
from bot.slack import ids
from bot.slack.blocks.pickers import MAX_OPTIONS, hook_option
from bot.slack.text import esc
from bot.targets import Described

USAGE = """*Usage:* `/hook-secret <command>`
• `add [HOOK] [NAME]`: request a new secret on a hook (type the value in the form, never here)
• `update [HOOK] [NAME]`: rotate an existing secret's value
• `remove [HOOK] [NAME]`: remove a secret
• `list [HOOK]`: show a hook's secret names and who last set them
• `help`: this text
Quote a hook name that has spaces: `/hook-secret add "Client Credentials" API_KEY`."""


def hook_picker(hooks: Sequence[Described]) -> list[dict[str, Any]]:
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
        stamp = f" (updated in Auth0 {stamps[name]})" if stamps and name in stamps else ""
        lines.append(_secret_line(name, stamp, origin.get(name)))
    if not names:
        lines.append("_No secrets._")
    return "\n".join(lines)


def _secret_line(name: str, stamp: str, record: Provenance | None) -> str:
    if record is None:
        return f"• `{esc(name)}`{stamp}: set outside the bot"
    verb = "added" if record.added else "rotated"
    approver = f", approved by <@{record.approver}>" if record.approver != record.requester else ""
    return (
        f"• `{esc(name)}`{stamp}: {verb} by <@{record.requester}>{approver} at {record.timestamp}"
    )
