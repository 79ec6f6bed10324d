"""What follows each transition: the apply an approval starts and every message a change implies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from bot.auth0.errors import ActionNotFound, HookNotFound
from bot.background import Background
from bot.logs import get_logger
from bot.models import SecretRequest, State
from bot.notify import Notifier
from bot.prefetch import Prefetch
from bot.targets import TargetKind, Targets
from bot.workflow import Outcome, Result, Workflow

log = get_logger(__name__)
T = TypeVar("T")
# Younger requests may still be posting their approval message from the submit itself.
REPOST_AFTER = timedelta(minutes=1)


class Followups:
    """The one place that turns a transition into Slack messages and further work."""

    def __init__(
        self,
        workflow: Workflow,
        notifier: Notifier,
        targets: Targets,
        background: Background,
        prefetch: Prefetch[Any],
    ) -> None:
        self.workflow = workflow
        self.notifier = notifier
        self.targets = targets
        self.background = background
        self.prefetch = prefetch

    def submitted(self, request: SecretRequest) -> None:
        """Ask for approval, or apply at once when the policy needs none."""
        if request.state == State.APPROVED:
            self.apply_later(request.id)
        else:
            self.notifier.request_waiting(request)

    def decided(self, result: Result) -> None:
        """Apply an approval, or tell people about a rejection or expiry."""
        request = result.request
        if request is None:
            return
        if result.outcome is Outcome.APPROVED:
            self.apply_later(request.id)
        elif result.outcome is Outcome.REJECTED:
            self.notifier.rejected(request)
        elif result.outcome is Outcome.EXPIRED:
            self.notifier.expired(request)

    def expired(self, request: SecretRequest) -> None:
        """Tell people a request expired (found overdue when someone looked at it)."""
        self.notifier.expired(request)

    def apply_later(self, request_id: str, reconciling: bool = False) -> None:
        """Apply in the appliers' pool, tracked like other background work."""
        self.background.apply(self.apply, request_id, reconciling)

    def apply(self, request_id: str, reconciling: bool = False) -> None:
        """Apply once and tell everyone the outcome."""
        self.applied(self.workflow.apply(request_id, reconciling=reconciling))

    def applied(self, result: Result) -> None:
        """Tell people what an apply did."""
        if result.request is None:
            return
        # Whatever the outcome, Auth0 now knows better than names read before the apply.
        self.prefetch.forget(TargetKind(result.request.target_kind), result.request.hook_id)
        if result.outcome is Outcome.APPLIED:
            self.notifier.applied(result.request)
        elif result.outcome is Outcome.FAILED:
            if isinstance(result.error, HookNotFound | ActionNotFound):
                self.targets[result.request.target_kind].forget()
            self.notifier.failed(result.request, result.error)

    def sweep(self) -> None:
        """Expire overdue requests and finish stranded applies (run periodically and on start)."""
        for request in self.workflow.expire_due():
            _logged(self.notifier.expired, request)
        # Posting failed at submit (the bot was not in the approval channel yet): try again.
        for request in self.workflow.unposted(REPOST_AFTER):
            _logged(self.notifier.post_approval, request)
        for result in self.workflow.reconcile():
            _logged(self.applied, result)


def _logged(step: Callable[[T], object], item: T) -> None:
    """One step of a sweep; a failure is logged and the sweep goes on."""
    try:
        step(item)
    except Exception:
        log.exception("sweep step failed")
