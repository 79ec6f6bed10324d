"""View submissions: the request form and the approval/rejection modals."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App

from bot.approvals.states import Kind
from bot.approvals.submitting import AlreadyOpen, Draft
from bot.limits import COMMENT_MAX, valid_name
from bot.slack import answers, ids
from bot.slack.services import Services
from bot.slack.validation import RequestForm, comment_problem, form_errors, parse_form
from bot.targets import Described, TargetKind, TargetRef

# Refusals where the secret name passed its own checks (the error is about the hook's state).
NAME_WAS_VALID = ("name_exists", "name_missing", "request_open")
NOT_UNICODE = (
    "This contains characters that are not valid text (a broken emoji or a stray half of a "
    "character pair). Please type or paste it again."
)
_NO_TARGET = TargetRef(TargetKind.HOOK, "")
KINDS = {
    ids.CALLBACK_ADD: Kind.ADD,
    ids.CALLBACK_UPDATE: Kind.UPDATE,
    ids.CALLBACK_REMOVE: Kind.REMOVE,
}


def register(app: App) -> None:
    """Attach the view submission listeners."""
    for callback in ids.REQUEST_CALLBACKS:
        app.view(callback)(on_request)
    app.view(ids.CALLBACK_APPROVE)(on_decision)
    app.view(ids.CALLBACK_REJECT)(on_decision)


@dataclass(frozen=True)
class Verdict:
    """What a request form's checks found: field errors (none: it may be recorded), the
    target as Auth0 named it, the audit outcome of a refusal, and the rule that refused it."""

    errors: dict[str, str]
    hook: Described | None
    outcome: str
    rule: str | None = None


def on_request(ack: Ack, body: dict[str, Any], view: dict[str, Any], services: Services) -> None:
    """Check the form (Auth0 too, within the ack deadline), record it, then ack."""
    user, team = body["user"]["id"], services.team_id  # the team guard pinned it
    kind, form = KINDS[view["callback_id"]], parse_form(view)
    if not services.policy.may_request(user, team):
        ack(**answers.errors(ids.BLOCK_SECRET_NAME, answers.NOT_A_REQUESTER))
        services.refuse_later("request.denied", user, team, "not_a_requester")
        return
    verdict = _checks(services, user, team, kind, form, view)
    if verdict.outcome == "not_a_requester":  # of this target's rule
        ack(response_action="errors", errors=verdict.errors)
        where = _where(form) | {"rule": verdict.rule}
        services.refuse_later("request.denied", user, team, verdict.outcome, **where)
    elif verdict.errors:
        _refuse_input(services, ack, user, team, form, verdict.errors, verdict.outcome)
    else:
        _record(services, ack, _draft(kind, team, user, view, form, verdict.hook), form, view)


def _checks(
    services: Services, user: str, team: str, kind: Kind, form: RequestForm, view: dict[str, Any]
) -> Verdict:
    """The form's own checks, then Auth0's and the open requests', then the target's rule."""
    errors = _not_unicode(view) or form_errors(form, kind, services.require_reason)
    if errors:
        outcome = "invalid_name" if ids.BLOCK_SECRET_NAME in errors else "invalid_input"
        return Verdict(errors, None, outcome)
    checked = services.check_submission(form, kind, viewer=view.get("id") or "")
    hook = checked.hook
    if hook is None and not checked.errors:  # Auth0 was slow: the tenant's list names the id;
        # the rule is matched on that name and it is recorded, never the client's label.
        hook = services.known_target(TargetRef.parse(form.target or "") or _NO_TARGET)
    # The rule's verdict comes first: a target someone may not request says nothing more.
    ruled = _rule_errors(services, user, team, form, hook)
    if ruled is not None:
        return Verdict(ruled[0], hook, ruled[1], ruled[2])
    return Verdict(checked.errors, hook, checked.outcome)


def _record(
    services: Services, ack: Ack, draft: Draft, form: RequestForm, view: dict[str, Any]
) -> None:
    """Record the request and ack; a twin submitted at the same moment wins instead."""
    try:
        request = services.submit(draft, view.get("id") or "")
    except AlreadyOpen as clash:
        errors = {ids.BLOCK_SECRET_NAME: answers.still_open(clash.request_id)}
        _refuse_input(services, ack, draft.requester, draft.team_id, form, errors, "request_open")
        return
    ack()
    services.submitted(request)


def on_decision(ack: Ack, body: dict[str, Any], view: dict[str, Any], services: Services) -> None:
    """Record an approval or rejection; the ack says how it ended."""
    user, team = body["user"]["id"], services.team_id  # the team guard pinned it
    request_id = view.get("private_metadata") or ""
    comment = _comment(view)
    # Someone no rule lets decide anything is turned away here; ``decide`` then asks Slack
    # afresh whether they may decide this request under its rule (removed from the group
    # since clicking: they can't).
    if not services.policy.may_approve(user, team):
        ack(**answers.errors(ids.BLOCK_COMMENT, answers.NOT_AN_APPROVER))
        services.deny_later(request_id[:32], user, team, "not_an_approver")
        return
    problem = _not_unicode(view).get(ids.BLOCK_COMMENT) or comment_problem(comment)
    if problem:
        ack(**answers.errors(ids.BLOCK_COMMENT, problem))
        return
    approve = view["callback_id"] == ids.CALLBACK_APPROVE
    result = services.decide(request_id, user, approve, comment)
    answer = answers.decision_ack(result)
    ack(**answer.ack)
    if answer.follow_up:
        services.decided(result)


# Why no rule could be found for a submitted target, as its refusal's audit outcome.
NO_RULE_OUTCOMES = {
    answers.NO_RULE: "no_rule",
    answers.UNKNOWN_TARGET: "unknown_target",
    answers.RULE_UNKNOWN: "auth0_unavailable",  # Auth0 did not name the target in time
}


def _rule_errors(
    services: Services, user: str, team: str, form: RequestForm, hook: Described | None
) -> tuple[dict[str, str], str, str | None] | None:
    """Why the rule that decides the chosen target refuses this submission, if it does (the
    field errors, the audit outcome, the rule's name): no rule covers it, the user is not
    among its requesters, or it needs a reason."""
    ref = TargetRef.parse(form.target or "")
    if ref is None:
        return None  # the form's own checks said so already
    rule, why = services.rule_for_submission(ref, hook, _target_name(form))
    if rule is None:
        why = why or answers.NO_RULE
        return {ids.BLOCK_HOOK: why}, NO_RULE_OUTCOMES.get(why, "no_rule"), None
    if not services.policy.may_request(user, team, rule):
        return {ids.BLOCK_HOOK: answers.NO_REQUESTER_HERE}, "not_a_requester", rule.name
    if rule.required > 0 and not form.reason.strip():
        return {ids.BLOCK_REASON: answers.REASON_NEEDED}, "invalid_input", rule.name
    return None


def _where(form: RequestForm) -> dict[str, str]:
    """The target a refused form named, as its audit record carries it."""
    ref = TargetRef.parse(form.target or "")
    if ref is None:
        return {}
    return {f"{ref.kind}_id": ref.id, "target": str(ref.kind), "tenant": ref.tenant}


def _draft(
    kind: Kind,
    team: str,
    user: str,
    view: dict[str, Any],
    form: RequestForm,
    hook: Described | None,
) -> Draft:
    ref = TargetRef.parse(form.target or "") or TargetRef(TargetKind.HOOK, "")
    return Draft(
        kind=kind,
        team_id=team,
        requester=user,
        origin_channel=_origin_channel(view, user),
        target_id=ref.id,
        target_kind=ref.kind,
        tenant=ref.tenant,
        # Auth0's name for the id; the option label is client-supplied.
        target_name=hook.name if hook else _target_name(form),
        secret_name=form.secret_name,
        value=form.value if kind is not Kind.REMOVE else None,
        reason=form.reason,
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
    name = form.secret_name if name_checked and valid_name(form.secret_name) else None
    services.refuse_later(
        "request.refused",
        user,
        team,
        outcome,
        secret_name=name,
        fields=sorted(errors),
        **_where(form),
    )


def _not_unicode(view: dict[str, Any]) -> dict[str, str]:
    """A field error for each input holding text that is not valid Unicode (a lone surrogate,
    valid JSON from Slack): refused before anything stores, encrypts or logs it."""
    values = (view.get("state") or {}).get("values") or {}
    errors = {
        str(block): NOT_UNICODE
        for block, fields in values.items()
        if not _is_unicode(fields) and _is_unicode(block)
    }
    # An error Slack can show only on an input block of the form: the name when none fits.
    return errors or ({ids.BLOCK_SECRET_NAME: NOT_UNICODE} if not _is_unicode(values) else {})


def _is_unicode(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, TypeError, ValueError):
        return False
    return True


def _target_name(form: RequestForm) -> str:
    label = form.target_label or form.target or ""
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
    return value.strip()[:COMMENT_MAX] if isinstance(value, str) and value.strip() else None
