"""``/hook-secret list``: a hook's or action's secret names with who last set them, never values."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.slack import blocks, ids
from bot.slack.services import Services
from bot.targets import Described
from bot.targets.errors import TargetError

PICKER_DEADLINE = 2.0


def register(app: App) -> None:
    """Attach the target picker of the list command."""
    app.action(ids.LIST_PICKER)(on_pick)


def on_pick(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond, services: Services
) -> None:
    """List the secrets of the hook or action just picked."""
    ack()
    user, team = body["user"]["id"], services.team_id  # the team guard pinned it
    target = (action.get("selected_option") or {}).get("value", "")
    services.later_for(respond, show_list, services, respond, user, team, target)


def show_list(
    services: Services, respond: Respond, user: str, team: str, hook_key: str | None
) -> None:
    """Answer ephemerally with the target's secrets, or a picker when none was named."""
    if not services.may_list(user, team):
        respond(
            text=":no_entry: Only requesters and approvers may list hook secrets.",
            response_type="ephemeral",
        )
        services.refuse("request.denied", user, team, "not_allowed_to_list")
        return
    if not hook_key:
        respond(**_picker(services), response_type="ephemeral")
        return
    respond(text=_listed(services, hook_key), response_type="ephemeral", replace_original=False)


def _listed(services: Services, hook_key: str) -> str:
    """What ``list`` answers for the target ``hook_key`` names (or why it can't)."""
    target = services.fleet.find(hook_key).target
    if target is None:
        return f"No hook or action named `{blocks.esc(hook_key)}`."
    try:
        return _secret_list(services, target)
    except TargetError as error:
        return f"Auth0 could not list the secrets: {error.message}"


def _secret_list(services: Services, target: Described) -> str:
    """Names and provenance; for an action also Auth0's stamps, the cap and undeployed edits."""
    shown = services.shown_secrets(target)
    return blocks.secret_list(
        target,
        shown.names,
        shown.origin,
        cap=shown.cap,
        stamps=shown.stamps,
        undeployed=shown.undeployed,
    )


def _picker(services: Services) -> dict[str, Any]:
    try:
        found = [
            t
            for site in services.fleet
            for target in site.targets
            for t in target.offer(PICKER_DEADLINE).targets
        ]
    except TargetError as error:
        return {"text": f"Auth0 could not list hooks: {error.message}"}
    if not found:
        return {"text": "No hooks found in the tenant."}
    return {
        "text": "Pick a hook or an action to list its secrets.",
        "blocks": blocks.hook_picker(found),
    }
