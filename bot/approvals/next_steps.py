"""The next steps after each transition: the apply an approval starts, and the outbox's delivery."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from bot.approvals.results import Outcome, Result
from bot.approvals.states import State
from bot.approvals.workflow import Workflow
from bot.db.models import SecretRequest
from bot.logs import get_logger
from bot.outbox.worker import Delivery
from bot.serve.background import Background
from bot.targets import TargetKind
from bot.targets.errors import TargetGone
from bot.targets.fleet import Fleet

log = get_logger(__name__)
T = TypeVar("T")


class NextSteps:
    """The one place further work starts after a transition; the messages a transition implies
    were queued in its transaction and ``delivery`` sends them."""

    def __init__(
        self,
        workflow: Workflow,
        delivery: Delivery,
        fleet: Fleet,
        background: Background,
    ) -> None:
        self.workflow = workflow
        self.delivery = delivery
        self.fleet = fleet
        self.background = background

    def submitted(self, request: SecretRequest) -> None:
        """Apply at once when the policy needs no approval (the approval post is queued)."""
        if request.state == State.APPROVED:
            self.apply_later(request.id)

    def decided(self, result: Result) -> None:
        """Apply an approval (a rejection's or expiry's messages are queued already)."""
        if result.request is not None and result.outcome is Outcome.APPROVED:
            self.apply_later(result.request.id)

    def apply_later(self, request_id: str, reconciling: bool = False) -> None:
        """Apply in the appliers' pool, tracked like other background work."""
        self.background.apply(self.apply, request_id, reconciling)

    def apply(self, request_id: str, reconciling: bool = False) -> None:
        """Apply once (the outcome's messages are queued with it)."""
        self.applied(self.workflow.apply(request_id, reconciling=reconciling))

    def applied(self, result: Result) -> None:
        """Drop what was read ahead of the target (Auth0 now knows better, whatever the
        outcome); a target that turned out to be gone leaves the cached list."""
        request = result.request
        if request is None or request.tenant not in self.fleet:
            return
        site = self.fleet[request.tenant]
        if site.prefetch is not None:
            site.prefetch.forget(TargetKind(request.target_kind), request.target_id)
        if isinstance(result.error, TargetGone):
            site.targets[request.target_kind].forget()

    def sweep(self) -> None:
        """Expire overdue requests, finish stranded applies, send what is due (periodically
        and on start)."""
        self.workflow.expire_due()
        for result in self.workflow.reconcile():
            _logged(self.applied, result)
        _logged(self.delivery.deliver_due, 50)


def _logged(step: Callable[[T], object], item: T) -> None:
    """One step of a sweep; a failure is logged and the sweep goes on."""
    try:
        step(item)
    except Exception:
        log.exception("sweep step failed")
