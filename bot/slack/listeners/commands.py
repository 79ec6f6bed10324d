"""``/hook-secret``: usage, refusals, and opening the request modal."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.approvals.states import Kind
from bot.slack import answers, blocks, ids
from bot.slack.blocks import esc
from bot.slack.listeners.listing import show_list
from bot.slack.services import Services
from bot.slack.text import cut
from bot.slack.validation import Command, parse_command
from bot.targets import Described

# Characters of a hook name from the command shown back when none has it, "…" included
# (escaping may multiply them: the notice stays far inside Slack's 3,000).
NAMED_SHOWN = 101
VALUE_WARNING = (
    ":warning: I did not run that: it looked like it carried a secret value. Slash command "
    "text stays in Slack's history, so if that was a real value, treat it as exposed and "
    "rotate it. Type values only into the form: `/hook-secret add [HOOK] [NAME]`."
)


def register(app: App) -> None:
    """Attach the slash command listener."""
    app.command(ids.COMMAND)(on_command)


def on_command(ack: Ack, command: dict[str, Any], respond: Respond, services: Services) -> None:
    """Usage and refusals in the ack; the modal or the list after it."""
    parsed = parse_command(command.get("text") or "")
    if parsed.action == "help":
        ack(text=blocks.USAGE)
        return
    if parsed.action == "value_refused":
        ack(text=VALUE_WARNING)
        services.refuse_later(
            "request.refused",
            command["user_id"],
            services.team_id,  # the team guard pinned it
            "value_in_command",
            channel=command.get("channel_id"),
        )
        return
    ack()
    services.later_for(respond, open_request, services, respond, command, parsed)


def open_request(
    services: Services, respond: Respond, command: dict[str, Any], parsed: Command
) -> None:
    """Open the request modal (or answer ``list``), once the user may request."""
    user, team = command["user_id"], services.team_id  # the team guard pinned it
    if parsed.action == "list":
        show_list(services, respond, user, team, parsed.hook)
        return
    if not services.policy.may_request(user, team):
        _not_a_requester(services, respond, user, team, parsed)
        return
    kind = parsed.kind or Kind.ADD
    metadata = json.dumps({"channel": command.get("channel_id") or user})
    view = blocks.request_modal(
        kind,
        private_metadata=metadata,
        require_reason=services.require_reason,
        secret_name=parsed.name,
    )
    opened = services.modals.open(respond, command.get("trigger_id") or "", view)
    if opened is not None and parsed.hook:
        _prefill_hook(services, opened, kind, metadata, parsed, user)


def _not_a_requester(
    services: Services, respond: Respond, user: str, team: str, parsed: Command
) -> None:
    respond(
        text=f":no_entry: You are not allowed to request hook secret changes. Ask "
        f"{services.policy.requesters.describe()} or a bot admin to add you to "
        "HOOK_SECRET_REQUESTERS.",
        response_type="ephemeral",
    )
    services.refuse("request.denied", user, team, "not_a_requester", subcommand=parsed.action)


def _named_target(services: Services, text: str, user: str) -> tuple[Described | None, str | None]:
    """The target the command's text names, if the user may request it, else the notice
    that says why not (none found, several tenants have it, no rule, not a requester)."""
    found = services.fleet.find(text)
    named = esc(cut(text, NAMED_SHOWN))
    if found.tenants:
        where = ", ".join(f"`{t}/…`" for t in found.tenants)
        return None, f":warning: `{named}` is in several tenants ({where}): name one, or pick."
    hook = found.target
    if hook is None:
        return None, f":warning: No hook named `{named}`: pick one."
    rule = services.policy.rule_for(hook.ref.tenant, hook.kind, hook.name)
    if rule is not None and services.policy.may_request(user, services.team_id, rule):
        return hook, None
    event, outcome, why = (
        ("request.refused", "no_rule", answers.NO_RULE)
        if rule is None
        else ("request.denied", "not_a_requester", answers.NO_REQUESTER_HERE)
    )
    target = {f"{hook.kind}_id": hook.id, "target": str(hook.kind), "tenant": hook.ref.tenant}
    services.refuse(event, user, services.team_id, outcome, **target)
    return None, f":no_entry: {why}"


def _prefill_hook(
    services: Services,
    opened: dict[str, Any],
    kind: Kind,
    metadata: str,
    parsed: Command,
    user: str,
) -> None:
    """Select the hook or action named in the command (``tenant/name`` with a policy file),
    once the modal is already open; one no rule covers, or the user may not request, is
    refused with a notice in the modal."""
    hook, notice = _named_target(services, parsed.hook or "", user)
    if hook is not None:  # read ahead while the modal updates and the user types
        services.watch_target(hook.ref.key, str(opened.get("id", "")))
    view = blocks.request_modal(
        kind,
        private_metadata=metadata,
        require_reason=services.require_reason,
        hook=hook,
        secret_name=parsed.name,
        notice=notice,
    )
    services.modals.update(opened, view)
