"""What listeners may ask of the bot: one small interface over policy, workflow and targets."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import TimeoutError
from dataclasses import dataclass
from typing import Any, ParamSpec

from slack_bolt import Respond

from bot.approvals.next_steps import NextSteps
from bot.approvals.policy import Policy
from bot.approvals.results import Result
from bot.approvals.rules import Rule
from bot.approvals.states import Kind
from bot.approvals.submitting import AlreadyOpen, Draft
from bot.approvals.workflow import Workflow
from bot.db.models import SecretRequest
from bot.limits import Provenance
from bot.logs import get_logger
from bot.serve.background import Background
from bot.slack import answers, ids, outage
from bot.slack.choices import Choices
from bot.slack.modals import Modals
from bot.slack.validation import RequestForm
from bot.targets import Described, Offer, Target, TargetKind, TargetRef, Targets
from bot.targets.catalog import HookCatalog
from bot.targets.errors import TargetError, TargetGone
from bot.targets.fleet import Fleet
from bot.targets.prefetch import Prefetch

P = ParamSpec("P")
log = get_logger(__name__)
# Checks that need Auth0 before a view submission's ack must finish well inside Slack's 3 s.
ACK_DEADLINE = 1.5


@dataclass(frozen=True)
class RemoteCheck:
    """What Auth0 said about the chosen target, or that it did not answer in time."""

    hook: Described | None
    names: list[str] | None
    error: TargetError | None = None


@dataclass(frozen=True)
class Checked:
    """A submission's checks against Auth0 and open requests: field errors, the hook as
    Auth0 describes it (when it answered in time), and the audit outcome of a refusal."""

    errors: dict[str, str]
    hook: Described | None
    outcome: str


@dataclass(frozen=True)
class Shown:
    """A target's secrets as ``list`` shows them, never values."""

    names: list[str]
    origin: dict[str, Provenance]
    cap: int
    stamps: dict[str, str]
    undeployed: bool


@dataclass
class Services:
    """Everything listeners need, built once by ``create_app``."""

    workflow: Workflow
    policy: Policy
    next_steps: NextSteps
    fleet: Fleet
    background: Background
    modals: Modals
    team_id: str
    require_reason: bool
    choices: Choices

    @property
    def targets(self) -> Targets:
        """The first tenant's targets (the only tenant without a policy file)."""
        return self.fleet.first.targets

    @property
    def catalog(self) -> HookCatalog:
        """The first tenant's hook catalog."""
        catalog: HookCatalog = self.fleet.first.catalog
        return catalog

    @property
    def prefetch(self) -> Prefetch[Described]:
        """The first tenant's read-ahead."""
        prefetch: Prefetch[Described] = self.fleet.first.prefetch
        return prefetch

    def prefetch_of(self, tenant: str) -> Prefetch[Described] | None:
        """A tenant's read-ahead (None for a tenant the bot does not serve)."""
        return self.fleet[tenant].prefetch if tenant in self.fleet else None

    def later(self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Run slow work after the ack; failures are logged with their traceback."""
        self.background.run(fn, *args, **kwargs)

    def later_for(
        self, respond: Respond, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """``later``, for a person waiting on the answer: if the database is down by then
        (it passed the check before the ack), they are told nothing was recorded, not left
        in silence."""

        def run() -> None:
            try:
                fn(*args, **kwargs)
            except Exception as error:
                if not outage.is_outage(error):
                    raise
                log.error("the database is unavailable", error=type(error).__name__)
                respond(
                    text=f":warning: {outage.NOT_RECORDED}",
                    response_type="ephemeral",
                    replace_original=False,
                )

        self.background.run(run)

    def refuse(self, event: str, user: str, team: str, outcome: str, **detail: Any) -> None:
        """Audit a refusal or denial that changes nothing."""
        self.workflow.refusals.refuse(event, user, team, outcome, **detail)

    def refuse_later(self, event: str, user: str, team: str, outcome: str, **detail: Any) -> None:
        """Audit a refusal or denial after the ack."""
        self.later(self.refuse, event, user, team, outcome, **detail)

    def deny(self, request_id: str, user: str, team: str, outcome: str) -> None:
        """Audit someone not allowed to decide ``request_id`` (an unknown id as given)."""
        self.workflow.refusals.deny(request_id, user, team, outcome)

    def deny_later(self, request_id: str, user: str, team: str, outcome: str) -> None:
        """``deny``, after the ack."""
        self.later(self.deny, request_id, user, team, outcome)

    def may_list(self, user: str, team: str) -> bool:
        """Requesters and approvers may see names and provenance."""
        return self.policy.may_request(user, team) or self.policy.may_approve(user, team)

    def offers(self, query: str, deadline: float, user: str | None = None) -> list[Offer]:
        """What the picker offers ``user`` for ``query`` (``bot.slack.choices``)."""
        return self.choices.offers(query, deadline, user)

    def rule_for_submission(
        self, ref: TargetRef, described: Described | None, label_name: str
    ) -> tuple[Rule | None, str | None]:
        """The rule that decides a submitted target, or why none (``bot.slack.choices``)."""
        return self.choices.rule_for_submission(ref, described, label_name)

    def known_target(self, ref: TargetRef) -> Described | None:
        """The target the tenant's list holds for ``ref``'s id (``bot.slack.choices``)."""
        return self.choices.known_target(ref)

    def check_submission(self, form: RequestForm, kind: Kind, viewer: str = "") -> Checked:
        """Checks that need Auth0, against names read ahead when fresh, else within the ack
        deadline (either way they run again on apply)."""
        ref = TargetRef.parse(form.target or "") or TargetRef(TargetKind.HOOK, "")
        if ref.tenant not in self.fleet:
            return Checked({ids.BLOCK_HOOK: answers.UNKNOWN_TARGET}, None, f"unknown_{ref.kind}")
        target = self.fleet.target(ref.tenant, ref.kind)
        remote = self.check_remote(ref)
        if isinstance(remote.error, TargetGone):
            target.forget()
            gone = answers.ACTION_GONE if ref.kind is TargetKind.ACTION else answers.HOOK_GONE
            return Checked({ids.BLOCK_HOOK: gone}, None, f"unknown_{ref.kind}")
        if remote.error is not None:
            message = f"Auth0 refused to read this {ref.kind}: {remote.error.message}"
            return Checked({ids.BLOCK_HOOK: message}, None, remote.error.reason)
        errors, outcome = _name_errors(form.secret_name, kind, remote.names, target)
        # A form that passes is checked for an open request where it is recorded (``submit``
        # raises ``AlreadyOpen``): read here only to say so beside the other errors.
        pending = (
            self.workflow.open_request(ref.id, form.secret_name, ref.tenant) if errors else None
        )
        if pending is not None:
            errors[ids.BLOCK_SECRET_NAME] = answers.still_open(pending.id)
            outcome = "request_open"
        if errors and viewer:  # the modal stays open: keep what it shows fresh
            self.fleet[ref.tenant].prefetch.watch(ref.kind, ref.id, viewer)
        return Checked(errors, remote.hook, outcome)

    def check_remote(self, ref: TargetRef) -> RemoteCheck:
        """The target and its secret names: read ahead when fresh, else if Auth0 answers within
        the ack deadline (an old modal, or one whose target was never read)."""
        prefetch = self.fleet[ref.tenant].prefetch
        snapshot = prefetch.fresh(ref.kind, ref.id)
        if snapshot is None:
            try:
                snapshot = prefetch.read(ref.kind, ref.id).result(ACK_DEADLINE)
            except TimeoutError:
                return RemoteCheck(None, None)
            except TargetError as error:
                return RemoteCheck(None, None, error)
        return RemoteCheck(snapshot.described, list(snapshot.names))

    def watch_target(self, option_value: str, viewer: str) -> None:
        """Modal ``viewer`` shows the target an option names: read ahead what its submission's
        checks need (option values not naming a target are ignored)."""
        ref = TargetRef.parse(option_value)
        if ref is not None and ref.tenant in self.fleet:
            self.fleet[ref.tenant].prefetch.watch(ref.kind, ref.id, viewer)

    def form_closed(self, viewer: str) -> None:
        """Modal ``viewer`` was cancelled: stop keeping what it showed fresh."""
        for site in self.fleet:
            site.prefetch.unwatch(viewer)

    def submit(self, draft: Draft, viewer: str = "") -> SecretRequest:
        """Record a request (raises ``AlreadyOpen``); call ``submitted`` once the ack is sent."""
        try:
            request = self.workflow.submit(draft)
        except AlreadyOpen:
            if viewer:  # the modal stays open with the error: keep what it shows fresh
                self.fleet[draft.tenant].prefetch.watch(draft.target_kind, draft.target_id, viewer)
            raise
        self.form_closed(viewer)  # the modal closes with this ack
        return request

    def submitted(self, request: SecretRequest) -> None:
        """Start what follows a submission, after the ack."""
        self.later(self.next_steps.submitted, request)

    def decide(self, request_id: str, user: str, approve: bool, comment: str | None) -> Result:
        """Decide a request; call ``decided`` once the ack is sent."""
        return self.workflow.decide(request_id, user, approve, comment)

    def decided(self, result: Result) -> None:
        """Start what follows a decision, after the ack."""
        self.later(self.next_steps.decided, result)

    def pending(self, request_id: str) -> SecretRequest | None:
        """The request, expired first (people are told by the expiry's outbox messages)."""
        return self.workflow.touch(request_id)[0]

    def stale_copy(self, request: SecretRequest, channel: str | None, ts: str | None) -> None:
        """A decided request's approval message was clicked: if it is a duplicate the bot lost
        track of (a post cut off by a crash), replace its buttons too."""
        if channel and ts:
            self.workflow.stale_copy(request, channel, ts)

    def shown_secrets(self, target: Described) -> Shown:
        """What ``list`` shows of a target: Auth0's inventory and the audit trail's provenance."""
        kind = self.fleet.target(target.ref.tenant, target.kind)
        found = kind.inventory(target.id)
        return Shown(
            found.names,
            self.workflow.provenance(target.id, target.ref.tenant),
            kind.max_secrets,
            found.stamps,
            found.undeployed,
        )

    def sweep(self) -> None:
        """Expire overdue requests and finish stranded applies (run periodically and on start)."""
        self.next_steps.sweep()


def _name_errors(
    name: str, kind: Kind, names: list[str] | None, target: Target
) -> tuple[dict[str, str], str]:
    """What the target's current names say about the request (nothing when Auth0 was slow)."""
    if names is None:
        return {}, "invalid_input"
    exists = name in names
    if kind is Kind.ADD and exists:
        return {ids.BLOCK_SECRET_NAME: answers.name_exists(target.kind)}, "name_exists"
    if kind is Kind.ADD and len(names) >= target.max_secrets:
        return {ids.BLOCK_HOOK: answers.full(target.kind)}, f"{target.kind}_full"
    if kind is not Kind.ADD and not exists:
        return {ids.BLOCK_SECRET_NAME: answers.name_missing(target.kind)}, "name_missing"
    return {}, "invalid_input"
