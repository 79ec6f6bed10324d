"""``/hook-secret list``: a hook's secret names with who last set them, never values."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App, Respond

from bot import blocks
from bot.auth0.errors import Auth0Error
from bot.flow import Services

LIST_PICKER = "list_hook"
MAX_SECRETS = 20


def register(app: App, services: Services) -> None:
    """Attach the hook picker of the list command."""

    @app.action(LIST_PICKER)
    def on_pick(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        ack()
        user, team = body["user"]["id"], body["team"]["id"]
        hook_id = (action.get("selected_option") or {}).get("value", "")
        services.background(show_list, services, respond, user, team, hook_id)


def may_list(services: Services, user: str, team: str) -> bool:
    """Requesters and approvers may see names and provenance."""
    return services.policy.may_request(user, team) or services.policy.may_approve(user, team)


def show_list(
    services: Services, respond: Respond, user: str, team: str, hook_key: str | None
) -> None:
    """Answer ephemerally with the hook's secrets, or a picker when no hook was named."""
    if not may_list(services, user, team):
        respond(
            text=":no_entry: Only requesters and approvers may list hook secrets.",
            response_type="ephemeral",
        )
        services.workflow.refuse("request.denied", user, team, "not_allowed_to_list")
        return
    if not hook_key:
        respond(**_picker(services), response_type="ephemeral")
        return
    hook = services.catalog.find(hook_key)
    if hook is None:
        respond(text=f"No hook named `{blocks.esc(hook_key)}`.", response_type="ephemeral")
        return
    try:
        names = services.auth0.get_secret_names(hook.id)
    except Auth0Error as error:
        respond(
            text=f"Auth0 could not list the secrets: {error.message}", response_type="ephemeral"
        )
        return
    respond(
        text=render(services, hook.name, hook.id, names),
        response_type="ephemeral",
        replace_original=False,
    )


def render(services: Services, hook_name: str, hook_id: str, names: list[str]) -> str:
    """One line per secret name with its provenance from the audit trail."""
    origin = services.workflow.store.provenance(hook_id)
    lines = [f"*{blocks.esc(hook_name)}* (`{hook_id}`): {len(names)} of {MAX_SECRETS} secrets"]
    for name in sorted(names):
        record = origin.get(name)
        if record is None:
            lines.append(f"• `{blocks.esc(name)}`: set outside the bot")
            continue
        detail = json.loads(record.detail)
        verb = "added" if record.event == "secret.added" else "rotated"
        requester = detail.get("requester") or record.actor
        approver = f", approved by <@{record.actor}>" if record.actor != requester else ""
        lines.append(
            f"• `{blocks.esc(name)}`: {verb} by <@{requester}>{approver} at {record.timestamp}"
        )
    if not names:
        lines.append("_No secrets._")
    return "\n".join(lines)


def _picker(services: Services) -> dict[str, Any]:
    try:
        hooks = services.catalog.hooks(deadline=2.0)[:100]
    except Auth0Error as error:
        return {"text": f"Auth0 could not list hooks: {error.message}"}
    if not hooks:
        return {"text": "No hooks found in the tenant."}
    options = [blocks.hook_option(h).to_dict() for h in hooks]
    return {
        "text": "Pick a hook to list its secrets.",
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "Which hook's secrets?"},
                "accessory": {
                    "type": "static_select",
                    "action_id": LIST_PICKER,
                    "options": options,
                    "placeholder": {"type": "plain_text", "text": "Choose a hook"},
                },
            }
        ],
    }
