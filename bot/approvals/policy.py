"""Who may request and who may approve: Slack user ids and user groups, resolved by id only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.logs import get_logger

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
    """Answers "may this user request?" and "may this user approve?" for one workspace."""

    def __init__(
        self, requesters: Principals, approvers: Principals, directory: Directory, team_id: str
    ) -> None:
        self.requesters = requesters
        self.approvers = approvers
        self.team_id = team_id
        self._directory = directory

    def may_request(self, user_id: str, team_id: str, *, fresh: bool = False) -> bool:
        """Whether ``user_id`` of ``team_id`` is listed as a requester, directly or by group
        (``fresh``: ask Slack again, as an approval re-checks the requester)."""
        return self._allowed(self.requesters, user_id, team_id, fresh=fresh)

    def may_approve(self, user_id: str, team_id: str, *, fresh: bool = False) -> bool:
        """Whether ``user_id`` of ``team_id`` is listed as an approver, directly or by group
        (``fresh``: ask Slack again, for the decision itself)."""
        return self._allowed(self.approvers, user_id, team_id, fresh=fresh)

    def _allowed(
        self, principals: Principals, user_id: str, team_id: str, *, fresh: bool = False
    ) -> bool:
        if team_id != self.team_id:
            return False
        if user_id in principals.users:
            return True
        return any(user_id in self._directory.members(g, fresh=fresh) for g in principals.groups)
