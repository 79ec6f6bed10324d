"""Counting approvals against a rule on a real database: N distinct people, a quorum, each
approval a sealed row; rows the bot did not seal do not count (``bot.approvals.approving``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from bot.approvals.quorum import Term
from bot.approvals.results import Outcome
from bot.approvals.rules import Rule
from bot.approvals.states import State
from bot.db.models import Approval
from tests.unit.test_workflow import World, draft, world


class Book:
    """A rulebook of one rule whose terms list people by id (no groups)."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def rule_for(self, tenant: str, kind: str, name: str) -> Rule | None:
        return self.rule

    def rule_of(self, request: object) -> Rule | None:
        return self.rule

    def may_approve(
        self, user_id: str, team_id: str, rule: Rule | None = None, *, fresh: bool = False
    ) -> bool:
        return any(user_id in term.principals for term in self.rule.terms)

    def in_term(self, user_id: str, team_id: str, rule: Rule, index: int, *, fresh: bool) -> bool:
        return user_id in rule.terms[index].principals


TWO_OF = Rule(
    "prod",
    "*",
    ("*",),
    ("U0REQ",),
    ("U0A", "U0B", "U0C"),
    "C0",
    (Term(("U0A", "U0B", "U0C", "U0REQ"), 2),),
)
QUORUM = Rule(
    "payments",
    "*",
    ("*",),
    ("U0REQ",),
    (),
    "C0",
    (Term(("U0SEC", "U0SEC2", "U0BOTH"), 1), Term(("U0LEAD", "U0BOTH"), 1)),
)


def _with(w: World, rule: Rule) -> World:
    book = Book(rule)
    w.workflow.rules = book
    w.workflow.approving.rules = book
    return w


@pytest.fixture
def two(sqlite_url: str) -> Iterator[World]:
    for found in world(sqlite_url, approvals=2):
        yield _with(found, TWO_OF)


@pytest.fixture
def quorum(sqlite_url: str) -> Iterator[World]:
    for found in world(sqlite_url, approvals=2):
        yield _with(found, QUORUM)


def test_two_distinct_approvers_the_first_counted_the_second_approves(two: World) -> None:
    request = two.workflow.submit(draft())
    assert request.required_approvals == 2 and request.rule_name == "prod"
    first = two.workflow.decide(request.id, "U0A", True, None)
    assert first.outcome is Outcome.COUNTED
    again = two.workflow.decide(request.id, "U0A", True, None)
    assert again.outcome is Outcome.APPROVED_ALREADY
    second = two.workflow.decide(request.id, "U0B", True, "ok")
    assert second.outcome is Outcome.APPROVED and second.request is not None
    assert second.request.state == State.APPROVED and second.request.decided_by == "U0B"
    late = two.workflow.decide(request.id, "U0C", True, None)
    assert late.outcome is Outcome.LOST_RACE
    added = [
        (r["actor"], r["approvals"], r["required"])
        for r in two.audit()
        if r["event"] == "approval.added"
    ]
    assert added == [("U0A", 1, 2), ("U0B", 2, 2)]
    (approved,) = [r for r in two.audit() if r["event"] == "request.approved"]
    assert approved["approvers"] == ["U0A", "U0B"] and approved["rule"] == "prod"


def test_the_requester_never_counts_even_when_listed(two: World) -> None:
    request = two.workflow.submit(draft())
    assert two.workflow.decide(request.id, "U0REQ", True, None).outcome is Outcome.SELF_APPROVAL
    assert not two.store.approvals_of(request.id)


def test_someone_in_both_terms_approving_first_does_not_block_the_quorum(quorum: World) -> None:
    request = quorum.workflow.submit(draft())
    assert quorum.workflow.decide(request.id, "U0BOTH", True, None).outcome is Outcome.COUNTED
    done = quorum.workflow.decide(request.id, "U0SEC", True, None)
    assert done.outcome is Outcome.APPROVED
    (approved,) = [r for r in quorum.audit() if r["event"] == "request.approved"]
    assert approved["approvers"] == ["U0BOTH", "U0SEC"]


def test_an_approval_filling_no_seat_changes_nothing(quorum: World) -> None:
    request = quorum.workflow.submit(draft())
    assert quorum.workflow.decide(request.id, "U0SEC", True, None).outcome is Outcome.COUNTED
    # U0SEC2 is in security only, whose one seat U0SEC fills: their approval would not count.
    refused = quorum.workflow.decide(request.id, "U0SEC2", True, None)
    assert refused.outcome is Outcome.NOT_COUNTED
    assert [a.approver for a in quorum.store.approvals_of(request.id)] == ["U0SEC"]
    assert [r["event"] for r in quorum.audit()].count("approval.added") == 1
    assert quorum.workflow.decide(request.id, "U0LEAD", True, None).outcome is Outcome.APPROVED


def test_one_rejection_ends_it_after_an_approval(two: World) -> None:
    request = two.workflow.submit(draft())
    assert two.workflow.decide(request.id, "U0A", True, None).outcome is Outcome.COUNTED
    rejected = two.workflow.decide(request.id, "U0B", False, "no")
    assert rejected.outcome is Outcome.REJECTED and rejected.request is not None
    assert rejected.request.value_ciphertext is None


def test_approval_rows_written_outside_the_bot_do_not_count(two: World) -> None:
    """Rows inserted straight into the database (no seal, or another request's seal) are
    ignored: one genuine approval stays one of two."""
    request = two.workflow.submit(draft())
    other = two.workflow.submit(draft(name="OTHER"))
    assert two.workflow.decide(other.id, "U0A", True, None).outcome is Outcome.COUNTED
    (copied,) = two.store.approvals_of(other.id)
    now = datetime.now(UTC)
    with two.store.engine.begin() as connection:
        connection.execute(
            insert(Approval),
            [
                {
                    "request_id": request.id,
                    "approver": "U0A",
                    "created_at": now,
                    "seal": "v1:" + "0" * 64,
                },
                {
                    "request_id": request.id,
                    "approver": "U0C",
                    "created_at": now,
                    "seal": copied.seal,
                },
            ],
        )
    counted = two.workflow.decide(request.id, "U0B", True, None)
    assert counted.outcome is Outcome.COUNTED  # 1 of 2: the forged rows did not count
    row = two.store.get(request.id)
    assert row is not None and row.state == State.PENDING
