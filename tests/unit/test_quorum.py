"""Quorum matching: people to terms by a maximum matching, never greedily."""

from __future__ import annotations

from collections.abc import Callable

from bot.approvals.quorum import Term, attainable, progress

SECURITY = Term(("S0SECURITY",), 1)
LEADS = Term(("U0LEAD1", "U0LEAD2"), 1)
MEMBERS = {"S0SECURITY": {"U0SEC1", "U0SEC2", "U0LEAD1"}}


def eligible_in(terms: list[Term]) -> Callable[[str, int], bool]:
    def eligible(user: str, index: int) -> bool:
        listed = terms[index].principals
        return user in listed or any(user in MEMBERS.get(g, set()) for g in listed)

    return eligible


def test_a_person_in_two_terms_approving_first_does_not_block_the_quorum() -> None:
    """U0LEAD1 is in security (by group) and a lead: approving first, then a security
    member approving, meets the quorum with the lead moved to the leads' seat."""
    terms = [SECURITY, LEADS]
    first = progress(terms, ["U0LEAD1"], eligible_in(terms), requester="U0REQ")
    assert (first.counted, first.required, first.met) == (1, 2, False)
    both = progress(terms, ["U0LEAD1", "U0SEC1"], eligible_in(terms), requester="U0REQ")
    assert both.met
    assert both.filled == (("U0SEC1",), ("U0LEAD1",))


def test_two_people_who_fit_only_one_term_fill_it_once() -> None:
    """Two security members meet only the security term: 1 of 2, not met."""
    terms = [SECURITY, LEADS]
    result = progress(terms, ["U0SEC1", "U0SEC2"], eligible_in(terms), requester="U0REQ")
    assert (result.counted, result.met) == (1, False)


def test_the_requester_and_repeated_approvals_never_count() -> None:
    """N distinct approvers: the requester's own and a second click count for nothing."""
    terms = [Term(("S0SECURITY",), 2)]
    result = progress(
        terms, ["U0SEC1", "U0SEC1", "U0LEAD1"], eligible_in(terms), requester="U0LEAD1"
    )
    assert (result.counted, result.met) == (1, False)
    result = progress(terms, ["U0SEC1", "U0SEC2"], eligible_in(terms), requester="U0LEAD1")
    assert result.met and result.filled == (("U0SEC1", "U0SEC2"),)


def test_someone_in_no_term_counts_for_nothing() -> None:
    """An approval from outside every list fills no seat."""
    terms = [LEADS]
    result = progress(terms, ["U0OUTSIDER"], eligible_in(terms), requester="U0REQ")
    assert (result.counted, result.met) == (0, False)


def test_no_terms_is_met_at_once() -> None:
    """``approvals = 0``: self-service, met without anyone."""
    assert progress([], [], eligible_in([]), requester="U0REQ").met


def test_attainable_needs_enough_distinct_people() -> None:
    """``check``'s question: can the listed people meet the quorum at all?"""
    terms = [SECURITY, LEADS]
    assert attainable(terms, {"U0LEAD1": {0, 1}, "U0SEC1": {0}})
    assert not attainable(terms, {"U0LEAD1": {0, 1}})
    assert not attainable([Term(("U0A", "U0B"), 3)], {"U0A": {0}, "U0B": {0}})
