"""The app factory: the only place a Bolt ``App`` is built."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from slack_bolt import App, BoltContext, BoltResponse
from slack_sdk import WebClient

from bot.approvals.next_steps import NextSteps
from bot.approvals.policy import Directory, Policy
from bot.approvals.workflow import Workflow
from bot.auth0.actions import Waits
from bot.auth0.transport import Auth0Transport
from bot.db.encryption import Vault
from bot.db.models import SecretRequest
from bot.db.store import Store
from bot.logs import get_logger
from bot.outbox.notify import Notifier
from bot.outbox.worker import Delivery
from bot.serve.background import Background
from bot.settings import PolicySettings, Settings
from bot.settings.policy_file import policy_of
from bot.slack import ids, outage
from bot.slack.choices import Choices
from bot.slack.listeners import register_all
from bot.slack.modals import Modals
from bot.slack.replies import DirectReply, clicked_channel
from bot.slack.services import Services
from bot.slack.web_client import short_lived
from bot.targets import ActionTarget, HookTarget, TargetLocks, Targets
from bot.targets.catalog import HookCatalog
from bot.targets.fleet import Fleet, Site
from bot.targets.prefetch import Prefetch, target_reader
from bot.targets.tenants import Tenant

log = get_logger(__name__)
# What an app is built from: the variables' one tenant and rule, or a policy file's.
AppSettings = Settings | PolicySettings
# Seconds a user group lookup may take before an ack; it fails closed past that.
LOOKUP_TIMEOUT = 2
FOREIGN_TEAM = "This app serves another Slack workspace; nothing was done."


@dataclass
class Deps:
    """What the app talks to; tests hand in clients pointed at local stand-ins."""

    slack: WebClient
    # One client, or one per tenant of the policy file (by name).
    auth0: Auth0Transport | Mapping[str, Auth0Transport]
    store: Store
    vault: Vault
    team_id: str
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # How an action's build and deploy are polled (tests and the demo wait less).
    action_waits: Waits | None = None
    # Told of each Slack message that could not be delivered (method, Slack's error): metrics.
    on_undelivered: Callable[[str, str], None] | None = None
    # Told "hit" or "miss" each time a submission looks for read-ahead names: metrics.
    on_prefetch: Callable[[str], None] | None = None
    # Told the outcome of each request refused at approval or apply (seals.py): metrics.
    on_refused: Callable[[str], None] | None = None


def create_app(settings: AppSettings, deps: Deps) -> tuple[App, Services]:
    """Build the Bolt app and the services behind its listeners."""
    services = _services(settings, deps)
    app = App(
        client=deps.slack,
        signing_secret=(
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else None
        ),
        token_verification_enabled=False,
        # Ack in the request path: no 10 ms polling for ack(); slow work goes to our pools.
        process_before_response=True,
        logger=logging.getLogger("slack_bolt"),
        request_verification_enabled=not settings.socket_mode,
    )
    app.use(_bind_context)
    app.use(_team_guard(services))
    app.use(_reply_without_url)
    app.use(_provide(services))
    register_all(app)
    app.error(_on_error)
    return app, services


def _services(settings: AppSettings, deps: Deps) -> Services:
    file = policy_of(settings)
    directory = Directory(_lookup_client(deps.slack), deps.team_id)
    served = [tenant.name for tenant in file.tenants]
    policy = Policy(file.rules, directory, deps.team_id, tenants=served)
    background = Background()
    fleet = _fleet(file.tenants, deps, background)
    workflow = Workflow(
        deps.store,
        deps.vault,
        fleet,
        ttl=timedelta(seconds=settings.hook_secret_request_ttl),
        required_approvals=1,
        now=deps.now,
        rules=policy,
    )
    _guard(workflow, policy, deps)  # seals.py: the requester is checked again
    notifier = Notifier(rules=policy, tally=workflow.approving.tally)
    workflow.messages = notifier
    delivery = _delivery(deps, notifier, background)
    return Services(
        workflow=workflow,
        policy=policy,
        next_steps=NextSteps(workflow, delivery, fleet, background),
        fleet=fleet,
        background=background,
        modals=Modals(deps.slack),
        team_id=deps.team_id,
        choices=Choices(fleet, policy, deps.team_id),
        # The form asks for a reason unless some rule is self-service; a rule that needs
        # approvals refuses a submission without one (``Services.rule_for_submission``).
        require_reason=all(rule.required > 0 for rule in file.rules),
    )


def _fleet(tenants: Sequence[Tenant], deps: Deps, background: Background) -> Fleet:
    """Each tenant's targets, catalogs, read-ahead and per-action locks, over its own client."""
    sites = {}
    for tenant in tenants:
        auth0 = deps.auth0 if not isinstance(deps.auth0, Mapping) else deps.auth0[tenant.name]
        catalog = HookCatalog(auth0)
        locks = TargetLocks(deps.store.engine)
        actions = ActionTarget(auth0, locks, deps.action_waits, tenant=tenant.name)
        targets = Targets(HookTarget(auth0, catalog, tenant.name), actions)
        # Reads share the lookups pool: the ack waits on them only on a miss, and then bounded.
        prefetch = Prefetch(target_reader(targets), background.lookups, on_lookup=deps.on_prefetch)
        sites[tenant.name] = Site(tenant.name, targets, catalog, prefetch)
    return Fleet(sites)


def _guard(workflow: Workflow, policy: Policy, deps: Deps) -> None:
    """Let approvals and applies check the requester again (under the rule that decides the
    request now), and count their refusals."""

    def may_request(request: SecretRequest, fresh: bool) -> bool:
        rule = policy.rule_of(request)
        return rule is not None and policy.may_request(
            request.requester, request.team_id, rule, fresh=fresh
        )

    workflow.guard.may_request = may_request
    if deps.on_refused is not None:
        workflow.guard.on_refused = deps.on_refused


def _delivery(deps: Deps, notifier: Notifier, background: Background) -> Delivery:
    """The outbox worker, started: it renders approval posts with ``notifier`` and yields to
    requests in flight."""
    delivery = Delivery(
        deps.slack, deps.store, deps.now, approval=notifier.approval, on_dead=deps.on_undelivered
    )
    delivery.pause = background.requests.quiet_by
    delivery.start()
    return delivery


def _provide(services: Services) -> Callable[..., None]:
    """Listeners are plain functions: Bolt passes them ``services`` from the context."""

    def provide(context: BoltContext, next: Callable[[], None]) -> None:
        context["services"] = services
        next()

    return provide


def _bind_context(context: BoltContext, body: dict[str, Any], next: Callable[[], None]) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        slack_user=context.user_id,
        team_id=context.team_id,
        slack_kind=body.get("type") or ("slash_command" if "command" in body else None),
    )
    next()


def _team_guard(services: Services) -> Callable[..., BoltResponse | None]:
    """Refuse, before any listener runs, every payload whose team is not pinned to the bot's
    own workspace: another team, no team at all, or an org-wide install (issue 23.8)."""

    def guard(
        context: BoltContext, body: dict[str, Any], next: Callable[[], None]
    ) -> BoltResponse | None:
        named = _body_teams(body) - {None, ""}
        if not _pinned(body, context, services.team_id):
            enterprise = {"enterprise_id": context.enterprise_id} if context.enterprise_id else {}
            services.refuse_later(
                _denial_event(body),
                context.user_id or "unknown",
                ",".join(sorted(t for t in named if t)),
                "foreign_team",
                **enterprise,
            )
            return BoltResponse(status=200, body=FOREIGN_TEAM)
        next()
        return None

    return guard


def _pinned(body: dict[str, Any], context: BoltContext, team_id: str) -> bool:
    """Whether the payload names its own team, names no other, and is no org-wide install
    (``team: null``, the team only in ``user.team_id``). Bolt fills ``context.team_id`` with
    the bot's own team when the payload has none, so the payload itself is read."""
    if body.get("is_enterprise_install") in (True, "true"):
        return False
    own = body.get("team_id") if "command" in body else body.get("team")
    own = own.get("id") if isinstance(own, dict) else own
    named = (_body_teams(body) | _view_teams(body)) - {None, ""}
    return own == team_id and named == {team_id} and context.team_id in (None, team_id)


def _reply_without_url(
    context: BoltContext, body: dict[str, Any], next: Callable[[], None]
) -> None:
    """Without a ``response_url`` (a click in a modal or on the Home tab), ``respond`` answers
    through the Web API instead of raising."""
    if not context.response_url and context.user_id:
        context["respond"] = DirectReply(context.client, context.user_id, clicked_channel(body))
    next()


def _lookup_client(client: WebClient) -> WebClient:
    """A copy of the Slack client for membership checks made before an ack: a short timeout
    and no rate-limit retries, which would sleep out a limit past Slack's 3 s."""
    return short_lived(client, LOOKUP_TIMEOUT)


def _denial_event(body: dict[str, Any]) -> str:
    """Approve/Reject clicks and decision modals are approval attempts; the rest requests."""
    actions = body.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    action = first.get("action_id") if isinstance(first, dict) else None
    callback = _inner(body, "view", "callback_id")
    deciding = action in (ids.ACTION_APPROVE, ids.ACTION_REJECT) or (
        callback in (ids.CALLBACK_APPROVE, ids.CALLBACK_REJECT)
    )
    return "approval.denied" if deciding else "request.denied"


def _body_teams(body: dict[str, Any]) -> set[Any]:
    """Every team a payload names (the audit records them): its own, its user's (a guest's
    differs)."""
    team = body.get("team")
    return {
        body.get("team_id"),
        team if isinstance(team, str) else _inner(body, "team", "id"),
        _inner(body, "user", "team_id"),
    }


def _view_teams(body: dict[str, Any]) -> set[Any]:
    """The teams a payload's view names (Bolt reads ``app_installed_team_id`` first)."""
    return {_inner(body, "view", "team_id"), _inner(body, "view", "app_installed_team_id")}


def _inner(body: dict[str, Any], outer: str, key: str) -> Any:
    holder = body.get(outer)
    return holder.get(key) if isinstance(holder, dict) else None


def _on_error(error: Exception, body: dict[str, Any], logger: logging.Logger) -> BoltResponse:
    if outage.is_outage(error):
        log.error("the database is unavailable", error=type(error).__name__)
        return outage.answer(body)
    log.error(
        "unhandled error in a listener",
        exc_info=error,
        kind=body.get("type") or body.get("command"),
    )
    return BoltResponse(
        status=200,
        body="Something went wrong on our side; nothing was changed. "
        "The error is in the bot's logs.",
    )
