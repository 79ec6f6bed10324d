"""Counting approvals: each one a sealed row, the quorum met exactly once (CONTRACT §6).

An approval is recorded in one transaction that first locks the request's row
(``Tx.hold_pending``): approvals of one request, on any replica, are counted one after another,
each seeing the ones before it. Each adds a row (one per person), ``approval.added`` with
``approvals`` so far and ``required`` in all, and either the message's progress or, once the
quorum is met, the move to approved with ``request.approved`` and its ``approvers``: that move
is a compare-and-set, so a quorum is met once and applied once.

People are matched to the rule's terms (``bot.approvals.quorum``); an approval that fills no
seat (every term this person is in is full already) is refused and changes nothing. Rows whose
seal does not verify (written outside the bot) do not count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.approvals.events import request_event
from bot.approvals.messages import Teller
from bot.approvals.quorum import Progress, progress
from bot.approvals.results import ApplyError, Outcome, Result
from bot.approvals.rulebook import Rulebook
from bot.approvals.rules import Rule
from bot.approvals.seals import Guard
from bot.approvals.states import State
from bot.db.models import Approval, SecretRequest
from bot.db.store import Store
from bot.db.tx import ApprovedAlready, Tx
from bot.logs import get_logger

log = get_logger(__name__)
# Records, in the transaction holding the row, a pending request as failed (``Workflow``).
Fail = Callable[[Tx, SecretRequest, str, ApplyError, datetime], Result]


@dataclass(frozen=True)
class Tally:
    """A request's approvals against its rule: who counts for which term."""

    rule: Rule
    progress: Progress
    approvers: tuple[str, ...]  # every verified approval, in the order given

    @property
    def counted(self) -> tuple[str, ...]:
        """The approvers matched to a seat, in the order they approved."""
        seated = {person for people in self.progress.filled for person in people}
        return tuple(a for a in self.approvers if a in seated)


class Eligibility:
    """Whether a person is in a rule's term, asked of the policy once per person and term for
    one approval (``fresh`` for the person approving now)."""

    def __init__(self, rules: Rulebook, rule: Rule, team_id: str, fresh_for: str) -> None:
        self._rules, self._rule, self._team = rules, rule, team_id
        self._fresh_for = fresh_for
        self._known: dict[tuple[str, int], bool] = {}

    def __call__(self, user: str, index: int) -> bool:
        key = (user, index)
        if key not in self._known:
            fresh = user == self._fresh_for
            self._known[key] = self._rules.in_term(user, self._team, self._rule, index, fresh=fresh)
        return self._known[key]


class Approving:
    """Adds one person's approval to a pending request."""

    def __init__(
        self,
        store: Store,
        rules: Rulebook,
        guard: Guard,
        tell: Teller,
        now: Callable[[], datetime],
        fail: Fail,
    ) -> None:
        self.store = store
        self.rules = rules
        self.guard = guard
        self.tell = tell
        self.now = now
        self.fail = fail

    def tally(self, request: SecretRequest, rule: Rule) -> Tally:
        """The request's approvals as last counted, for messages: each approver in the term
        the matching seated them in when the last approval was recorded. Asks Slack nothing
        (messages are built inside write transactions)."""
        rows = self.store.approvals_of(request.id)
        approvers = self._verified(request, rows)
        seats = {row.approver: row.term for row in rows if row.approver in approvers}
        filled = tuple(
            tuple(a for a in approvers if seats.get(a) == index) for index in range(len(rule.terms))
        )
        return Tally(rule, Progress(required=rule.required, filled=filled), approvers)

    def would_count(self, request: SecretRequest, rule: Rule, actor: str) -> Outcome | None:
        """Why ``actor``'s approval would not count now (already given, or no seat left for
        them), or None when it would: what a click is told before the modal opens."""
        eligible = Eligibility(self.rules, rule, request.team_id, actor)
        return self._precheck(request, rule, actor, eligible)

    def approve(
        self, request: SecretRequest, rule: Rule, actor: str, comment: str | None
    ) -> Result:
        """Record ``actor``'s approval under ``rule``: counted, the quorum met (approved), or
        refused (given already, fills no seat, no longer pending)."""
        # Which terms ``actor`` is in, asked of Slack afresh (a group left since the click
        # fills no seat); the others' from the cache.
        eligible = Eligibility(self.rules, rule, request.team_id, actor)
        refused = self._precheck(request, rule, actor, eligible)
        if refused is not None:  # unless the quorum was met meanwhile: then say so
            current = self.store.get(request.id)
            if current is None or current.state != State.PENDING:
                return Result(Outcome.LOST_RACE, current)
            return Result(refused, current)
        now = self.now()
        try:
            with self.store.transaction() as tx:
                held = tx.hold_pending(request.id)
                result = (
                    None
                    if held is None
                    else self._add(tx, held, rule, actor, comment, now, eligible)
                )
        except ApprovedAlready:  # the same person's other click, committed meanwhile
            return Result(Outcome.APPROVED_ALREADY, self.store.get(request.id))
        # None: decided meanwhile; read (once what decided it is committed) how it ended.
        return result or Result(Outcome.LOST_RACE, self.store.get(request.id))

    def _add(
        self,
        tx: Tx,
        held: SecretRequest,
        rule: Rule,
        actor: str,
        comment: str | None,
        now: datetime,
        eligible: Callable[[str, int], bool],
    ) -> Result:
        """In the transaction holding the request's row: count ``actor``'s approval."""
        # The row as locked, not as screened before: what the approval row and the decision
        # are sealed over. Changed since (by a database trigger on this very lock, say), it
        # fails here rather than being sealed as approved.
        broken = self.guard.broken(held)
        if broken is not None:
            return self.fail(tx, held, actor, broken, now)
        approvers = self._verified(held, tx.approvals(held.id))
        refused, after = _verdict(rule, approvers, actor, eligible, held.requester)
        if refused is not None:
            return Result(refused, held)
        tally = Tally(rule, after, (*approvers, actor))
        self._record(tx, held, tally, actor, comment, now)
        if not after.met:
            self.tell(tx, "progress", held, tally)
            return Result(Outcome.COUNTED, held)
        return self._met(tx, held, tally, actor, comment, now)

    def _record(
        self,
        tx: Tx,
        held: SecretRequest,
        tally: Tally,
        actor: str,
        comment: str | None,
        now: datetime,
    ) -> None:
        """Write ``actor``'s sealed approval row, its ``approval.added`` record, and the term
        each approver now fills (for messages)."""
        seal = self.guard.sealer.seal_approval(held, actor)
        tx.add_approval(
            Approval(request_id=held.id, approver=actor, comment=comment, created_at=now, seal=seal)
        )
        extra = {"comment": comment} if comment else {}
        counted = tally.progress
        tx.audit(
            request_event(
                "approval.added",
                held,
                actor,
                "approved",
                approvals=counted.counted,
                required=counted.required,
                **extra,
            )
        )
        seated = {person: term for term, people in enumerate(counted.filled) for person in people}
        tx.seat_approvals(held.id, {person: seated.get(person) for person in tally.approvers})

    def _precheck(
        self,
        request: SecretRequest,
        rule: Rule,
        actor: str,
        eligible: Callable[[str, int], bool],
    ) -> Outcome | None:
        """Refuse outside the transaction what surely would not count (the lookups of
        group membership happen here, not while the row is locked)."""
        approvers = self._verified(request, self.store.approvals_of(request.id))
        return _verdict(rule, approvers, actor, eligible, request.requester)[0]

    def _met(
        self,
        tx: Tx,
        held: SecretRequest,
        tally: Tally,
        actor: str,
        comment: str | None,
        now: datetime,
    ) -> Result:
        """The quorum is met: move the request to approved (once), with its approvers."""
        values: dict[str, Any] = {
            "decided_by": actor,
            "decided_at": now,
            "decision_comment": comment,
        }
        seal = self.guard.seal(held, state=State.APPROVED, **values)
        decided = tx.transition(
            held.id, [State.PENDING], State.APPROVED, unexpired=True, seal=seal, **values
        )
        if decided is None:  # cannot happen while the row is held; said rather than assumed
            return Result(Outcome.LOST_RACE, held)
        extra = {"comment": comment} if comment else {}
        tx.audit(
            request_event(
                "request.approved",
                decided,
                actor,
                "approved",
                approvers=list(tally.counted),
                **extra,
            )
        )
        # The buttons go now, not once applied (the notifier leaves a message that shows no
        # progress, one approval from the variables' list, as it always read).
        self.tell(tx, "quorum_met", decided, tally)
        return Result(Outcome.APPROVED, decided)

    def _verified(self, request: SecretRequest, rows: list[Approval]) -> tuple[str, ...]:
        """The approvers whose rows the bot sealed (others are logged and ignored)."""
        good: list[str] = []
        for row in rows:
            if self.guard.sealer.verify_approval(request, row.approver, row.seal):
                good.append(row.approver)
            else:
                log.error(
                    "ignored an approval whose seal does not verify",
                    request_id=request.id,
                    approver=row.approver,
                )
        return tuple(dict.fromkeys(good))


def _verdict(
    rule: Rule,
    approvers: tuple[str, ...],
    actor: str,
    eligible: Callable[[str, int], bool],
    requester: str,
) -> tuple[Outcome | None, Progress]:
    """Whether ``actor``'s approval would count on top of ``approvers`` (None) or why not
    (given already, fills no seat), and the matching it would make."""
    after = progress(rule.terms, [*approvers, actor], eligible, requester)
    if actor in approvers:
        return Outcome.APPROVED_ALREADY, after
    before = progress(rule.terms, approvers, eligible, requester)
    return (None if after.counted > before.counted else Outcome.NOT_COUNTED), after
