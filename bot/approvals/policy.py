"""Who may request and who may approve: Slack user ids and user groups, resolved by id only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.approvals.rules import Rule, Target
from bot.db.models import SecretRequest
from bot.logs import get_logger
from bot.targets.base import TargetKind

log = get_logger(__name__)


@dataclass(frozen=True)
class Principals:
    """A list from HOOK_SECRET_REQUESTERS or HOOK_SECRET_APPROVERS, split by kind."""

    users: frozenset[str]
    groups: tuple[str, ...]

    @classmethod
    def parse(cls, ids: Sequence[str]) -> Principals:
        """Split ``U…``/``W…`` user ids from ``S…`` user group ids."""
        return cls(
            users=frozenset(i for i in ids if not i.startswith("S")),
            groups=tuple(i for i in ids if i.startswith("S")),
        )

    def describe(self) -> str:
        """Mentions of everyone on the list, for messages that say who can grant access."""
        parts = [f"<!subteam^{g}>" for g in self.groups] + [f"<@{u}>" for u in sorted(self.users)]
        return ", ".join(parts) or "nobody (the list is empty)"


class Directory:
    """Resolves user group membership through ``usergroups.users.list``, cached briefly."""

    def __init__(
        self,
        client: WebClient,
        team_id: str,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._team_id = team_id
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    def members(self, group_id: str, *, fresh: bool = False) -> frozenset[str]:
        """User ids in the group (``fresh``: skip the cache); an unreadable group counts as
        empty (fail closed)."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(group_id)
        if cached and not fresh and now - cached[0] < self._ttl:
            return cached[1]
        try:
            response = self._client.usergroups_users_list(usergroup=group_id, team_id=self._team_id)
            users = frozenset(response.get("users") or [])
        except SlackApiError as error:  # fail closed; only answers are cached
            log.warning("user group unreadable", group=group_id, error=error.response.get("error"))
            return frozenset()
        except (SlackClientError, OSError) as error:  # slow or unreachable: the same
            log.warning("user group lookup failed", group=group_id, error=type(error).__name__)
            return frozenset()
        with self._lock:
            self._cache[group_id] = (now, users)
        return users

    def forget(self) -> None:
        """Drop cached memberships (after a group changes, or in tests)."""
        with self._lock:
            self._cache.clear()


class Policy:
    """Answers "may this user request this target?" and "may this user approve it?" for one
    workspace, by the first rule in the policy's order that matches the target (CONTRACT §6)."""

    def __init__(
        self,
        rules: Sequence[Rule],
        directory: Directory,
        team_id: str,
        tenants: Collection[str] | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.team_id = team_id
        self._directory = directory
        # The tenants the bot serves (None: any): a rule for ``*`` covers only these, so a
        # request of a tenant removed from the file is decided by no rule (it expires, or
        # fails at its apply) rather than by a rule that happens to match every name.
        self.tenants = frozenset(tenants) if tenants is not None else None

    def rule_for(self, tenant: str, kind: str, name: str) -> Rule | None:
        """The rule that decides the target, or None when no rule covers it (or the bot does
        not serve its tenant)."""
        if self.tenants is not None and tenant not in self.tenants:
            return None
        target = Target(tenant, TargetKind(kind), name)
        return next((rule for rule in self.rules if rule.matches(target)), None)

    def name_decides(self, tenant: str, kind: str) -> bool:
        """Whether a target's name can change which rule (if any) decides a target of this
        tenant and kind: false only when the first rule for them covers every name."""
        other = "hook:" if kind == TargetKind.ACTION else "action:"
        for rule in self.rules:
            globs = [g for g in rule.targets if not g.startswith(other)]
            if rule.tenant not in ("*", tenant) or not globs:
                continue  # never matches a target of this tenant and kind
            return not any(glob in ("*", f"{kind}:*") for glob in globs)
        return True

    def rule_of(self, request: SecretRequest) -> Rule | None:
        """The rule that decides ``request``'s target now."""
        return self.rule_for(request.tenant, request.target_kind, request.target_name)

    @property
    def requesters(self) -> Principals:
        """Everyone any rule lets request (for messages that say whom to ask)."""
        return Principals.parse(list(dict.fromkeys(i for r in self.rules for i in r.requesters)))

    def may_request(
        self, user_id: str, team_id: str, rule: Rule | None = None, *, fresh: bool = False
    ) -> bool:
        """Whether ``user_id`` of ``team_id`` may request under ``rule`` (None: under some
        rule), directly or by group (``fresh``: ask Slack again, as an approval re-checks
        the requester)."""
        rules = self.rules if rule is None else (rule,)
        return any(
            self._allowed(Principals.parse(r.requesters), user_id, team_id, fresh=fresh)
            for r in rules
        )

    def may_approve(
        self, user_id: str, team_id: str, rule: Rule | None = None, *, fresh: bool = False
    ) -> bool:
        """Whether ``user_id`` may approve or reject under ``rule`` (None: under some rule):
        listed in its ``approvers`` or in one of its quorum terms (``fresh``: ask Slack again,
        for the decision itself)."""
        rules = self.rules if rule is None else (rule,)
        return any(
            self._allowed(Principals.parse(ids), user_id, team_id, fresh=fresh)
            for r in rules
            for ids in _approver_lists(r)
        )

    def in_term(self, user_id: str, team_id: str, rule: Rule, index: int, *, fresh: bool) -> bool:
        """Whether ``user_id`` is in term ``index`` of ``rule``'s approvals."""
        principals = Principals.parse(rule.terms[index].principals)
        return self._allowed(principals, user_id, team_id, fresh=fresh)

    def _allowed(
        self, principals: Principals, user_id: str, team_id: str, *, fresh: bool = False
    ) -> bool:
        if team_id != self.team_id:
            return False
        if user_id in principals.users:
            return True
        return any(user_id in self._directory.members(g, fresh=fresh) for g in principals.groups)


def _approver_lists(rule: Rule) -> list[tuple[str, ...]]:
    """Who may decide under ``rule``: its approvers and every quorum term's list."""
    return [rule.approvers, *(term.principals for term in rule.terms)]
