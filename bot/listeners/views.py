"""View submissions: the request form and the approval/rejection modals."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App

from bot import blocks, ids
from bot.auth0.client import MAX_SECRETS_PER_HOOK, Hook
from bot.auth0.errors import HookNotFound
from bot.blocks import NAME_MAX
from bot.flow import RemoteCheck, Services, describe_state
from bot.models import Kind
from bot.validation import HOOK_ID, NAME, RequestForm, comment_problem, form_errors, parse_form
from bot.workflow import AlreadyOpen, Draft, Outcome

# Refusals where the secret name passed its own checks (the error is about the hook's state).
NAME_WAS_VALID = ("name_exists", "name_missing", "request_open")
KINDS = {
    ids.CALLBACK_ADD: Kind.ADD,
    ids.CALLBACK_UPDATE: Kind.UPDATE,
    ids.CALLBACK_REMOVE: Kind.REMOVE,
}


def register(app: App, services: Services) -> None:
    """Attach the view submission listeners."""

    @app.view(ids.CALLBACK_ADD)
    @app.view(ids.CALLBACK_UPDATE)
    @app.view(ids.CALLBACK_REMOVE)
    def on_request(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user, team = body["user"]["id"], body["team"]["id"]
        kind, form = KINDS[view["callback_id"]], parse_form(view)
        if not services.policy.may_request(user, team):
            ack(
                response_action="errors",
                errors={
                    ids.BLOCK_SECRET_NAME: "You are not allowed to request hook secret changes."
                },
            )
            services.background(
                services.workflow.refuse, "request.denied", user, team, "not_a_requester"
            )
            return
        errors, hook = form_errors(form, kind, services.require_reason), None
        outcome = "invalid_name" if ids.BLOCK_SECRET_NAME in errors else "invalid_input"
        if not errors:
            errors, hook, outcome = _remote_errors(services, form, kind)
        if errors:
            _refuse_input(services, ack, user, team, form, errors, outcome)
            return
        try:
            request = services.workflow.submit(
                Draft(
                    kind=kind,
                    team_id=team,
                    requester=user,
                    origin_channel=_origin_channel(view, user),
                    hook_id=form.hook_id or "",
                    # Auth0's name for the id; the option label is client-supplied.
                    hook_name=hook.name if hook else _hook_name(form),
                    secret_name=form.secret_name,
                    value=form.value if kind is not Kind.REMOVE else None,
                    reason=form.reason,
                )
            )
        except AlreadyOpen as clash:  # submitted at the same moment as another one
            errors = {ids.BLOCK_SECRET_NAME: _still_open(clash.request_id, clash.requester)}
            _refuse_input(services, ack, user, team, form, errors, "request_open")
            return
        ack()
        services.background(services.after_submit, request)

    @app.view(ids.CALLBACK_APPROVE)
    @app.view(ids.CALLBACK_REJECT)
    def on_decision(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user, team = body["user"]["id"], body["team"]["id"]
        approve = view["callback_id"] == ids.CALLBACK_APPROVE
        request_id = view.get("private_metadata") or ""
        comment = _comment(view)
        # Fresh membership: someone removed from the approver group since clicking can't decide.
        if not services.policy.may_approve(user, team, fresh=True):
            ack(
                response_action="errors",
                errors={
                    ids.BLOCK_COMMENT: "You are not (or no longer) "
                    "an approver, so this was not recorded."
                },
            )
            services.background(
                services.workflow.refuse,
                "approval.denied",
                user,
                team,
                "not_an_approver",
                request_id=request_id[:32],
            )
            return
        problem = comment_problem(comment)
        if problem:
            ack(response_action="errors", errors={ids.BLOCK_COMMENT: problem})
            return
        result = services.workflow.decide(request_id, user, approve, comment)
        if result.outcome is Outcome.SELF_APPROVAL:
            ack(
                response_action="errors",
                errors={
                    ids.BLOCK_COMMENT: "You requested this change: "
                    "another approver has to decide it."
                },
            )
        elif result.outcome is Outcome.NOT_FOUND or result.request is None:
            ack(response_action="errors", errors={ids.BLOCK_COMMENT: "No such request."})
        elif result.outcome in (Outcome.LOST_RACE, Outcome.EXPIRED):
            ack(
                response_action="update",
                view=blocks.info_modal(
                    "Already decided",
                    f"Request `{result.request.id}` was "
                    f"{describe_state(result.request)}. Nothing more to do.",
                ),
            )
            services.background(services.after_decision, result)
        else:
            ack()
            services.background(services.after_decision, result)


def _remote_errors(
    services: Services, form: RequestForm, kind: Kind
) -> tuple[dict[str, str], Hook | None, str]:
    """Checks that need Auth0, within the ack deadline (past it they run again on apply): the
    errors, the hook as Auth0 describes it when it answered in time, and the audit outcome."""
    hook_id = form.hook_id or ""
    remote: RemoteCheck = services.check_remote(hook_id)
    if isinstance(remote.error, HookNotFound):
        services.catalog.invalidate()
        message = "That hook no longer exists in Auth0. Pick another."
        return {ids.BLOCK_HOOK: message}, None, "unknown_hook"
    if remote.error is not None:
        message = f"Auth0 refused to read this hook: {remote.error.message}"
        return {ids.BLOCK_HOOK: message}, None, remote.error.reason
    errors: dict[str, str] = {}
    outcome = "invalid_input"
    if remote.names is not None:
        exists = form.secret_name in remote.names
        if kind is Kind.ADD and exists:
            errors[ids.BLOCK_SECRET_NAME] = (
                "This hook already has a secret with that name. "
                "Use `/hook-secret update` to rotate it."
            )
            outcome = "name_exists"
        elif kind is Kind.ADD and len(remote.names) >= MAX_SECRETS_PER_HOOK:
            errors[ids.BLOCK_HOOK] = "This hook already has 20 secrets, Auth0's maximum."
            outcome = "hook_full"
        elif kind is not Kind.ADD and not exists:
            errors[ids.BLOCK_SECRET_NAME] = (
                "This hook has no secret with that name. Use `/hook-secret add` to create it."
            )
            outcome = "name_missing"
    pending = services.workflow.store.open_request_for(hook_id, form.secret_name)
    if pending is not None:
        errors[ids.BLOCK_SECRET_NAME] = _still_open(pending.id, pending.requester)
        outcome = "request_open"
    return errors, remote.hook, outcome


def _still_open(request_id: str, requester: str) -> str:
    # Field errors are plain text: a <@U…> mention would show raw, so name no one.
    return (
        f"Request {request_id} for this secret is still open; wait for it to be decided "
        "(see the approval channel)."
    )


def _refuse_input(
    services: Services,
    ack: Ack,
    user: str,
    team: str,
    form: RequestForm,
    errors: dict[str, str],
    outcome: str,
) -> None:
    """Answer field errors and audit the refusal (after the ack); nothing is stored."""
    ack(response_action="errors", errors=errors)
    # A name that failed its checks may be anything, a pasted value included: not recorded.
    name_checked = ids.BLOCK_SECRET_NAME not in errors or outcome in NAME_WAS_VALID
    valid = NAME.match(form.secret_name) and len(form.secret_name) <= NAME_MAX
    name = form.secret_name if name_checked and valid else None
    services.background(
        services.workflow.refuse,
        "request.refused",
        user,
        team,
        outcome,
        hook_id=form.hook_id if form.hook_id and HOOK_ID.match(form.hook_id) else None,
        secret_name=name,
        fields=sorted(errors),
    )


def _hook_name(form: RequestForm) -> str:
    label = form.hook_label or form.hook_id or ""
    return label.rsplit(" (", 1)[0] if " (" in label else label


def _origin_channel(view: dict[str, Any], user: str) -> str:
    try:
        channel = json.loads(view.get("private_metadata") or "{}").get("channel")
    except json.JSONDecodeError:
        channel = None
    return channel if isinstance(channel, str) and channel else user


def _comment(view: dict[str, Any]) -> str | None:
    field = view.get("state", {}).get("values", {}).get(ids.BLOCK_COMMENT, {})
    value = (field.get(ids.BLOCK_COMMENT) or {}).get("value")
    return value.strip()[:1000] if isinstance(value, str) and value.strip() else None
