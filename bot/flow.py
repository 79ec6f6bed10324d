"""What listeners may ask of the bot: one small interface over policy, workflow and targets."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import TimeoutError
from dataclasses import dataclass
from typing import Any, ParamSpec

from bot import answers, ids
from bot.auth0.client import Hook
from bot.auth0.errors import Auth0Error, HookNotFound
from bot.background import Background
from bot.catalog import HookCatalog
from bot.domain import MAX_SECRETS_PER_HOOK, Provenance
from bot.followups import Followups
from bot.models import Kind, SecretRequest
from bot.policy import Policy
from bot.slack_ui import Modals
from bot.targets import Targets
from bot.validation import RequestForm
from bot.workflow import Draft, Result, Workflow

P = ParamSpec("P")
# Checks that need Auth0 before a view submission's ack must finish well inside Slack's 3 s.
ACK_DEADLINE = 1.5


@dataclass(frozen=True)
class RemoteCheck:
    """What Auth0 said about the chosen hook, or that it did not answer in time."""

    hook: Hook | None
    names: list[str] | None
    error: Auth0Error | None = None


@dataclass(frozen=True)
class Checked:
    """A submission's checks against Auth0 and open requests: field errors, the hook as
    Auth0 describes it (when it answered in time), and the audit outcome of a refusal."""

    errors: dict[str, str]
    hook: Hook | None
    outcome: str


@dataclass
class Services:
    """Everything listeners need, built once by ``create_app``."""

    workflow: Workflow
    policy: Policy
    followups: Followups
    targets: Targets
    catalog: HookCatalog
    background: Background
    modals: Modals
    team_id: str
    require_reason: bool

    def later(self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Run slow work after the ack; failures are logged with their traceback."""
        self.background.run(fn, *args, **kwargs)

    def refuse(self, event: str, user: str, team: str, outcome: str, **detail: Any) -> None:
        """Audit a refusal or denial that changes nothing."""
        self.workflow.refuse(event, user, team, outcome, **detail)

    def refuse_later(self, event: str, user: str, team: str, outcome: str, **detail: Any) -> None:
        """Audit a refusal or denial after the ack."""
        self.later(self.refuse, event, user, team, outcome, **detail)

    def may_list(self, user: str, team: str) -> bool:
        """Requesters and approvers may see names and provenance."""
        return self.policy.may_request(user, team) or self.policy.may_approve(user, team)

    def check_submission(self, form: RequestForm, kind: Kind) -> Checked:
        """Checks that need Auth0, within the ack deadline (past it they run again on apply)."""
        hook_id = form.hook_id or ""
        remote = self.check_remote(hook_id)
        if isinstance(remote.error, HookNotFound):
            self.targets.hooks.forget()
            return Checked({ids.BLOCK_HOOK: answers.HOOK_GONE}, None, "unknown_hook")
        if remote.error is not None:
            message = f"Auth0 refused to read this hook: {remote.error.message}"
            return Checked({ids.BLOCK_HOOK: message}, None, remote.error.reason)
        errors, outcome = _name_errors(form.secret_name, kind, remote.names)
        pending = self.workflow.open_request(hook_id, form.secret_name)
        if pending is not None:
            errors[ids.BLOCK_SECRET_NAME] = answers.still_open(pending.id)
            outcome = "request_open"
        return Checked(errors, remote.hook, outcome)

    def check_remote(self, hook_id: str) -> RemoteCheck:
        """The hook and its secret names, if Auth0 answers within the ack deadline."""
        future = self.background.lookup(self._read_hook, hook_id)
        try:
            hook, names = future.result(timeout=ACK_DEADLINE)
        except TimeoutError:
            return RemoteCheck(None, None)
        except Auth0Error as error:
            return RemoteCheck(None, None, error)
        return RemoteCheck(hook, names)

    def _read_hook(self, hook_id: str) -> tuple[Hook, list[str]]:
        # The names call answers 404 for a deleted hook; the hook itself usually comes from
        # the list the picker just loaded, saving a call against Auth0's rate limit.
        target = self.targets.hooks
        names = target.secret_names(hook_id)
        return target.describe(hook_id), names

    def submit(self, draft: Draft) -> SecretRequest:
        """Record a request (raises ``AlreadyOpen``); call ``submitted`` once the ack is sent."""
        return self.workflow.submit(draft)

    def submitted(self, request: SecretRequest) -> None:
        """Start what follows a submission, after the ack."""
        self.later(self.followups.submitted, request)

    def decide(self, request_id: str, user: str, approve: bool, comment: str | None) -> Result:
        """Decide a request; call ``decided`` once the ack is sent."""
        return self.workflow.decide(request_id, user, approve, comment)

    def decided(self, result: Result) -> None:
        """Start what follows a decision, after the ack."""
        self.later(self.followups.decided, result)

    def pending(self, request_id: str) -> SecretRequest | None:
        """The request, expired first (people are told by the expiry's outbox messages)."""
        return self.workflow.touch(request_id)[0]

    def stale_copy(self, request: SecretRequest, channel: str | None, ts: str | None) -> None:
        """A decided request's approval message was clicked: if it is a duplicate the bot lost
        track of (a post cut off by a crash), replace its buttons too."""
        if channel and ts:
            self.workflow.stale_copy(request, channel, ts)

    def secrets(self, hook_id: str) -> tuple[list[str], dict[str, Provenance]]:
        """A hook's secret names (from Auth0) and who set each through the bot."""
        return self.targets.hooks.secret_names(hook_id), self.workflow.provenance(hook_id)

    def sweep(self) -> None:
        """Expire overdue requests and finish stranded applies (run periodically and on start)."""
        self.followups.sweep()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until background work, and the messages due now, have finished (including
        work and messages they queued in turn)."""
        deadline = time.monotonic() + timeout
        delivery = self.followups.delivery
        while time.monotonic() < deadline:
            if not self.background.wait_idle(max(0.0, deadline - time.monotonic())):
                return False
            if delivery.idle() and self.background.idle():
                return True
            time.sleep(0.01)
        return False

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Let queued work and due messages finish (within ``timeout``), then stop; False if
        cut off (undelivered messages stay queued for the next start)."""
        finished = self.wait_idle(timeout)
        self.background.shutdown(timeout if finished else 0)
        self.followups.delivery.stop()
        self.catalog.close()
        return finished


def _name_errors(name: str, kind: Kind, names: list[str] | None) -> tuple[dict[str, str], str]:
    """What the hook's current names say about the request (nothing when Auth0 was slow)."""
    if names is None:
        return {}, "invalid_input"
    exists = name in names
    if kind is Kind.ADD and exists:
        return {ids.BLOCK_SECRET_NAME: answers.NAME_EXISTS}, "name_exists"
    if kind is Kind.ADD and len(names) >= MAX_SECRETS_PER_HOOK:
        return {ids.BLOCK_HOOK: answers.HOOK_FULL}, "hook_full"
    if kind is not Kind.ADD and not exists:
        return {ids.BLOCK_SECRET_NAME: answers.NAME_MISSING}, "name_missing"
    return {}, "invalid_input"
