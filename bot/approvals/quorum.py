"""Whether a request's approvals meet its rule: people matched to quorum terms, not greedily.

A requirement is a list of terms, each "``count`` distinct people from this list". One person
fills at most one term, and someone listed in two terms fills whichever lets the quorum be
met: that is a maximum bipartite matching of approvers to the terms' seats (Kuhn's augmenting
paths), so the order in which people approve never blocks a quorum that can be met.
``approvals = N`` is one term of N seats; ``approvals = 0`` has no terms and is met at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """``count`` distinct people from ``principals`` (user ids and user group ids)."""

    principals: tuple[str, ...]
    count: int


@dataclass(frozen=True)
class Progress:
    """How far a request's approvals go: who fills which term, and whether all are filled."""

    required: int  # seats in all terms
    filled: tuple[tuple[str, ...], ...]  # per term, the approvers counted for it

    @property
    def counted(self) -> int:
        """Approvals that count toward the requirement."""
        return sum(len(people) for people in self.filled)

    @property
    def met(self) -> bool:
        """Whether every term has all its seats filled."""
        return self.counted == self.required


def progress(
    terms: Sequence[Term],
    approvers: Iterable[str],
    eligible: Callable[[str, int], bool],
    requester: str,
) -> Progress:
    """Match ``approvers`` (in the order they approved) to the seats of ``terms``.

    ``eligible(user, i)`` says whether the user is in term ``i``'s list (directly or by a
    group). The requester and repeated approvals never count."""
    seats = [index for index, term in enumerate(terms) for _ in range(term.count)]
    people = list(dict.fromkeys(a for a in approvers if a != requester))
    can_fill = {p: [s for s, t in enumerate(seats) if eligible(p, t)] for p in people}
    holder: dict[int, str] = {}
    for person in people:
        _augment(person, can_fill, holder, set())
    filled = tuple(
        tuple(p for p in people if any(holder.get(s) == p for s in _seats_of(seats, index)))
        for index in range(len(terms))
    )
    return Progress(required=len(seats), filled=filled)


def _seats_of(seats: list[int], term: int) -> list[int]:
    return [s for s, t in enumerate(seats) if t == term]


def _augment(
    person: str, can_fill: dict[str, list[int]], holder: dict[int, str], seen: set[int]
) -> bool:
    """Kuhn's step: seat ``person``, moving earlier holders to other seats where they can."""
    for seat in can_fill[person]:
        if seat in seen:
            continue
        seen.add(seat)
        current = holder.get(seat)
        if current is None or _augment(current, can_fill, holder, seen):
            holder[seat] = person
            return True
    return False


def attainable(terms: Sequence[Term], candidates: dict[str, set[int]]) -> bool:
    """Whether the people in ``candidates`` (user → the terms they are in) could meet the
    quorum at all: for ``check``, with every group resolved to its members."""
    people = sorted(candidates)
    return progress(terms, people, lambda p, i: i in candidates[p], "").met
