"""Which rule decides a request, and whether a rule still is the one that decided it.

A request keeps the name and digest of its rule (CONTRACT §6). ``Rulebook`` is what the state
machine asks of the policy (``bot.approvals.policy.Policy`` implements it); ``AnyApprover`` is
the one rule of a state machine run without a policy (its unit tests): every approver counts.
"""

from __future__ import annotations

from typing import Protocol

from bot.approvals.quorum import Term
from bot.approvals.rules import Rule
from bot.db.models import SecretRequest

DEFAULT_RULE = "default"


class Rulebook(Protocol):
    """The rules requests are decided by."""

    def rule_for(self, tenant: str, kind: str, name: str) -> Rule | None:
        """The rule that decides a target, or None when none covers it."""

    def rule_of(self, request: SecretRequest) -> Rule | None:
        """The rule that decides ``request``'s target now."""

    def may_approve(
        self, user_id: str, team_id: str, rule: Rule | None = None, *, fresh: bool = False
    ) -> bool:
        """Whether the user may approve or reject under ``rule``."""

    def in_term(self, user_id: str, team_id: str, rule: Rule, index: int, *, fresh: bool) -> bool:
        """Whether the user is in term ``index`` of ``rule``."""


def still_deciding(request: SecretRequest, rule: Rule | None) -> bool:
    """Whether ``rule`` (the one matching the request's target now) is the rule that decided
    it, unchanged. A row from before rules were kept names none: the variables' one rule."""
    if rule is None:
        return False
    if request.rule_digest is None:
        return rule.name == DEFAULT_RULE and (request.rule_name in (None, DEFAULT_RULE))
    return (request.rule_name, request.rule_digest) == (rule.name, rule.digest())


class AnyApprover:
    """One rule over every target: ``required`` approvals (0 or more) by anyone but the
    requester."""

    def __init__(self, required: int) -> None:
        terms = (Term(("*",), required),) if required else ()
        self.rule = Rule(DEFAULT_RULE, "*", ("*",), (), (), None, terms)

    def rule_for(self, tenant: str, kind: str, name: str) -> Rule | None:
        """The one rule."""
        return self.rule

    def rule_of(self, request: SecretRequest) -> Rule | None:
        """The one rule."""
        return self.rule

    def may_approve(
        self, user_id: str, team_id: str, rule: Rule | None = None, *, fresh: bool = False
    ) -> bool:
        """Anyone."""
        return True

    def in_term(self, user_id: str, team_id: str, rule: Rule, index: int, *, fresh: bool) -> bool:
        """Everyone is in every term."""
        return True
