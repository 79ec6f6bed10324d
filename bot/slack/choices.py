"""What a person may pick: the targets each tenant offers under the policy's rules, and the
rule a submitted target falls under (CONTRACT §6)."""

from __future__ import annotations

import time
from contextlib import suppress

from bot.approvals.policy import Policy
from bot.approvals.rules import Rule
from bot.slack import answers
from bot.targets import Described, Offer, Target, TargetRef
from bot.targets.errors import TargetError
from bot.targets.fleet import Fleet


class Choices:
    """The picker's offers and a submission's rule, for one workspace."""

    def __init__(self, fleet: Fleet, policy: Policy, team_id: str) -> None:
        self.fleet = fleet
        self.policy = policy
        self.team_id = team_id

    def offers(self, query: str, deadline: float, user: str | None = None) -> list[Offer]:
        """What each tenant's kinds of target offer for ``query``, tenants in the policy's
        order: only targets a rule covers and, given ``user``, that they may request (a kind
        that can't say is left out; when none can, the hooks' error is raised)."""
        found: list[Offer] = []
        lowered = query.strip().lower()
        # A tenant where this person may request nothing is not shown.
        sites = [s for s in self.fleet if user is None or self._requests_in(user, s.name)]
        # One deadline for the whole answer: with several tenants every list starts loading
        # at once, and a slow tenant's wait is not added to the next one's (Slack drops a late
        # answer whole). One tenant's lists share its pacing: loaded in turn, as before.
        end = time.monotonic() + deadline
        for site in sites if len(sites) > 1 else ():
            for target in site.targets:
                with suppress(TargetError):  # said below, within the deadline
                    target.offer(0.0)
        for site in sites:
            for target in site.targets:
                offer = self._offer(target, max(0.0, end - time.monotonic()))
                matching = [
                    t
                    for t in offer.targets
                    if (lowered in t.name.lower() or lowered in t.id) and self._offered(t, user)
                ]
                matching.sort(key=lambda t: t.name.lower())
                found.append(Offer(offer.kind, matching, offer.missing, site.name))
        return found

    def _requests_in(self, user: str, tenant: str) -> bool:
        """Whether some rule of ``tenant`` lets ``user`` request."""
        rules = [r for r in self.policy.rules if r.tenant in ("*", tenant)]
        return any(self.policy.may_request(user, self.team_id, rule) for rule in rules)

    def _offer(self, target: Target, deadline: float) -> Offer:
        """What one kind of one tenant offers; with several tenants, one that can't answer
        says why in its group instead of hiding the others."""
        if len(self.fleet) == 1:
            return target.offer(deadline)
        try:
            return target.offer(deadline)
        except TargetError as error:
            return Offer(target.kind, [], error.message)

    def _offered(self, target: Described, user: str | None) -> bool:
        """Whether the picker offers ``target`` (to ``user``): a rule covers it, and they are
        among its requesters."""
        rule = self.policy.rule_for(target.ref.tenant, target.kind, target.name)
        if rule is None:
            return False
        return user is None or self.policy.may_request(user, self.team_id, rule)

    def rule_for_submission(
        self, ref: TargetRef, described: Described | None, label_name: str
    ) -> tuple[Rule | None, str | None]:
        """The rule that decides a submitted target, and why there is none: the target's name
        as Auth0 gave it (read ahead or cached). Only without a policy file, where one rule
        covers every name, may the form's label stand in (a client could have changed it; with
        a file, a later rule change would judge the request by that name)."""
        if ref.tenant not in self.fleet:
            return None, answers.UNKNOWN_TARGET
        known = described or self.known_target(ref)
        name = known.name if known is not None else None
        if name is None and (self.fleet.named or self.policy.name_decides(ref.tenant, ref.kind)):
            return None, answers.RULE_UNKNOWN
        rule = self.policy.rule_for(ref.tenant, ref.kind, name or label_name)
        return rule, None if rule is not None else answers.NO_RULE

    def known_target(self, ref: TargetRef) -> Described | None:
        """The target with exactly ``ref``'s id as the tenant's last list read holds it (no
        Auth0 call: this runs before the ack), or None: what a submission's rule and record go
        by when Auth0 did not describe it within the ack deadline, rather than the
        client-supplied label."""
        if ref.tenant not in self.fleet:
            return None
        return self.fleet.target(ref.tenant, ref.kind).known(ref.id)
