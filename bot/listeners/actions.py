"""Approve and Reject buttons: check the clicker, then open the decision modal."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import blocks, ids
from bot.flow import Services, describe_state, open_modal
from bot.models import State


def register(app: App, services: Services) -> None:
    """Attach the button listeners."""

    @app.action(ids.ACTION_APPROVE)
    @app.action(ids.ACTION_REJECT)
    def on_button(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        ack()
        services.background(_open_decision, services, client, respond, body, action)


def _open_decision(
    services: Services,
    client: WebClient,
    respond: Respond,
    body: dict[str, Any],
    action: dict[str, Any],
) -> None:
    user, team = body["user"]["id"], body["team"]["id"]
    approve = action["action_id"] == ids.ACTION_APPROVE
    request, expired_now = services.workflow.touch(str(action.get("value", ""))[:32])
    if request is not None and expired_now:
        services.notifier.expired(request)
    if request is None:
        respond(
            text="That request does not exist.", response_type="ephemeral", replace_original=False
        )
        return
    if user == request.requester or not services.policy.may_approve(user, team):
        why = (
            "you requested it"
            if user == request.requester
            else "you are not in HOOK_SECRET_APPROVERS"
        )
        respond(
            text=f":no_entry: You can't decide request `{request.id}`: {why}.",
            response_type="ephemeral",
            replace_original=False,
        )
        services.workflow.refuse(
            "approval.denied",
            user,
            team,
            "self_approval" if user == request.requester else "not_an_approver",
            request_id=request.id,
            hook_id=request.hook_id,
            secret_name=request.secret_name,
        )
        return
    if request.state != State.PENDING:
        respond(
            text=f"Request `{request.id}` was {describe_state(request)}.",
            response_type="ephemeral",
            replace_original=False,
        )
        return
    open_modal(client, respond, body["trigger_id"], blocks.decision_modal(request, approve))
