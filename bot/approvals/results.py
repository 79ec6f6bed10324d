"""What a decision or an apply came to: its outcome, the request afterwards, and why it failed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.db.models import SecretRequest
from bot.targets.errors import TargetError

UNDECRYPTABLE = (
    "no configured encryption key decrypts the stored value (was a key removed from "
    "HOOK_SECRET_ENCRYPTION_KEY?)"
)


class ApplyError(Exception):
    """Applying failed inside the bot, before anything was sent to Auth0."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# Why an apply failed: the target refused (or could not answer), or the bot itself failed.
Failure = TargetError | ApplyError


class Outcome(StrEnum):
    """How a decision or an apply ended, from the caller's point of view."""

    APPROVED = "approved"
    REJECTED = "rejected"
    APPLIED = "applied"
    FAILED = "failed"
    CHECKING = "checking"  # Auth0 left the outcome unknown: the sweep reads it back
    LOST_RACE = "lost_race"  # somebody else decided or applied first
    EXPIRED = "expired"
    NOT_FOUND = "not_found"
    SELF_APPROVAL = "self_approval"
    COUNTED = "counted"  # one approval more, the quorum not met yet
    APPROVED_ALREADY = "approved_already"  # this person's approval is in already
    NOT_COUNTED = "not_counted"  # every seat this person could fill is filled
    NOT_AN_APPROVER = "not_an_approver"  # not allowed to decide under the current rule
    POLICY_CHANGED = "policy_changed"  # the rule that decided the request is gone or changed


@dataclass(frozen=True)
class Result:
    """An outcome and the request as it stands afterwards."""

    outcome: Outcome
    request: SecretRequest | None
    error: Failure | None = None
