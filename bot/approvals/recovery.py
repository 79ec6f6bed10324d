"""How a crashed apply is finished, and one whose outcome Auth0 left unknown.

An apply claims its request and renews the claim every heartbeat (``apply.py``). When its
process dies, the claim goes stale: after ``APPLY_LEASE`` (or ``UNCLAIMED_GRACE`` for an
approval nobody claimed) the periodic sweep finds the request ``stranded`` and applies it again
with ``reconciling`` set. That apply reads Auth0 back first (``landed``; an action resumes from
the phase its row recorded, and the first member of a batch to get the action's lock resumes
the whole batch: ``batching.py``), so a change is sent at most once. When Auth0 answers nothing
(``TargetUnavailable``), the request is ``held`` open with its value and read back by the same
sweep; after ``SETTLE_WITHIN`` it is recorded as failed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.approvals.messages import Teller
from bot.approvals.results import Outcome, Result
from bot.approvals.states import State
from bot.db.models import SecretRequest
from bot.db.store import Store
from bot.logs import get_logger
from bot.targets import Change, Target
from bot.targets.errors import TargetUnavailable

log = get_logger(__name__)

# A running apply renews its claim every heartbeat; one not renewed for APPLY_LEASE died with
# its process (with a sweep every 10 s, a crashed apply is taken over within 30 s).
APPLY_LEASE = timedelta(seconds=20)
# The winner of an approval claims the apply within milliseconds; unclaimed after this, it died.
UNCLAIMED_GRACE = timedelta(seconds=15)
# An outcome Auth0 left unknown is read back for this long before it is recorded as failed.
SETTLE_WITHIN = timedelta(hours=1)


def stranded(store: Store, lease: timedelta = APPLY_LEASE) -> list[str]:
    """The approved requests whose apply died (or was never claimed): the sweep applies them,
    judged on the database's clock."""
    return list(store.stranded(UNCLAIMED_GRACE, lease))


def landed(target: Target, change: Change, reconciling: bool) -> bool:
    """Whether an earlier attempt of this change already reached Auth0 (read back only after a
    crash or an unknown outcome: a first attempt sends at once)."""
    return reconciling and target.landed(change)


class Unknowns:
    """Requests whose outcome Auth0 left unknown: held open (with the value, to re-send) until
    read back."""

    def __init__(self, store: Store, tell: Teller) -> None:
        self.store = store
        self.tell = tell

    def settled(self, request: SecretRequest, now: datetime) -> bool:
        """Whether the read-back time is over: the outcome is recorded as failed."""
        return now - (request.unknown_since or now) > SETTLE_WITHIN

    def hold(
        self, request: SecretRequest, claimed_at: datetime, error: TargetUnavailable
    ) -> Result:
        """Keep the request open, say once that it is being checked, let the sweep read back."""
        now = self.tell.now()
        with self.store.transaction() as tx:
            held = tx.transition(
                request.id,
                [State.APPROVED],
                State.APPROVED,
                claimed_at=claimed_at,
                apply_started_at=None,
                unknown_since=request.unknown_since or now,
            )
            if held is not None and request.unknown_since is None:
                self.tell(tx, "checking", held)
        log.warning("auth0 left the outcome unknown: reading back", request_id=request.id)
        return Result(Outcome.CHECKING, held or self.store.get(request.id), error)
