"""``decision_ack``: how a decision's outcome is answered, and whether follow-ups run."""

from __future__ import annotations

import pytest

from bot.approvals.results import Outcome, Result
from bot.approvals.states import State
from bot.db.models import SecretRequest
from bot.slack import answers, ids
from tests.unit.factories import REQUEST_ID, secret_request


def request(state: State = State.PENDING, decided_by: str | None = None) -> SecretRequest:
    return secret_request(state=state, decided_by=decided_by)


def comment_error(result: Result) -> str:
    answer = answers.decision_ack(result)
    assert answer.ack["response_action"] == "errors"
    assert not answer.follow_up
    error: str = answer.ack["errors"][ids.BLOCK_COMMENT]
    return error


@pytest.mark.parametrize("outcome", [Outcome.APPROVED, Outcome.REJECTED])
def test_a_won_decision_closes_the_modal_and_follows_up(outcome: Outcome) -> None:
    """Approved or rejected: an empty ack closes the modal; the apply or notice follows."""
    answer = answers.decision_ack(Result(outcome, request(State.APPROVED, "U0APP")))
    assert answer.ack == {}
    assert answer.follow_up


def test_self_approval_is_a_field_error_without_follow_up() -> None:
    """The requester deciding their own request gets an error under the comment."""
    assert comment_error(Result(Outcome.SELF_APPROVAL, request())) == answers.SELF_DECISION


@pytest.mark.parametrize("subject", [None, request()])
def test_unknown_request_is_a_field_error(subject: SecretRequest | None) -> None:
    """No such request (or none returned) is said under the comment."""
    outcome = Outcome.NOT_FOUND if subject is not None else Outcome.APPROVED
    assert comment_error(Result(outcome, subject)) == answers.NO_SUCH_REQUEST


def test_a_lost_race_shows_who_decided_and_still_follows_up() -> None:
    """Someone else decided first: the modal says so; follow-ups run (they do nothing twice)."""
    answer = answers.decision_ack(Result(Outcome.LOST_RACE, request(State.REJECTED, "U0APP2")))
    assert answer.ack["response_action"] == "update"
    view = answer.ack["view"]
    assert view["title"]["text"] == "Already decided"
    text = view["blocks"][0]["text"]["text"]
    assert "already rejected by <@U0APP2>" in text and REQUEST_ID in text
    assert answer.follow_up


def test_expiry_found_by_the_decision_is_shown_and_announced() -> None:
    """A request that expired when decided: the modal says so and the expiry is announced."""
    answer = answers.decision_ack(Result(Outcome.EXPIRED, request(State.EXPIRED)))
    assert "expired before anyone decided" in answer.ack["view"]["blocks"][0]["text"]["text"]
    assert answer.follow_up
