"""``Principals`` and ``Policy``: who may request and who may approve, by id and by group."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.approvals.policy import Directory, Policy, Principals
from bot.approvals.quorum import Term
from bot.approvals.rules import Rule

TEAM = "T0TEAM"


class FixedDirectory(Directory):
    """A user group directory with fixed members that records what it was asked."""

    def __init__(self, groups: dict[str, set[str]]) -> None:
        # Never called: members() below answers instead of Slack.
        super().__init__(WebClient(token="xoxb-unused", base_url="http://127.0.0.1:9/"), TEAM)
        self.groups = groups
        self.asked: list[tuple[str, bool]] = []

    def members(self, group_id: str, *, fresh: bool = False) -> frozenset[str]:
        self.asked.append((group_id, fresh))
        return frozenset(self.groups.get(group_id, set()))


def policy(directory: Directory | None = None) -> Policy:
    """The variables' one rule: requesters, one approval from the approvers."""
    approvers = ("W0APP", "S0APPS")
    rule = Rule(
        "default", "*", ("*",), ("U0REQ", "S0REQS"), approvers, "C0APP", (Term(approvers, 1),)
    )
    return Policy(
        [rule],
        directory or FixedDirectory({"S0REQS": {"U0MEMBER"}, "S0APPS": {"U0BOSS"}}),
        TEAM,
    )


def test_principals_split_users_from_groups() -> None:
    """U…/W… are users, S… user groups (in the order given)."""
    parsed = Principals.parse(["U1", "S2", "W3", "S1"])
    assert parsed.users == frozenset({"U1", "W3"})
    assert parsed.groups == ("S2", "S1")


def test_describe_mentions_groups_then_users() -> None:
    """Who can grant access, as Slack mentions; an empty list says so."""
    assert Principals.parse(["U2", "S1", "U1"]).describe() == "<!subteam^S1>, <@U1>, <@U2>"
    assert Principals.parse([]).describe() == "nobody (the list is empty)"


def test_listed_users_and_group_members_may_request() -> None:
    """Direct ids and members of a listed group may request; others may not."""
    rules = policy()
    assert rules.may_request("U0REQ", TEAM)
    assert rules.may_request("U0MEMBER", TEAM)
    assert not rules.may_request("U0OUT", TEAM)
    assert not rules.may_request("U0BOSS", TEAM)  # an approver is not thereby a requester


def test_approvers_are_separate_from_requesters() -> None:
    """Approvers come from their own list, users and groups alike."""
    rules = policy()
    assert rules.may_approve("W0APP", TEAM) and rules.may_approve("U0BOSS", TEAM)
    assert not rules.may_approve("U0REQ", TEAM)


def test_another_team_is_refused_without_asking_slack() -> None:
    """A listed id from another workspace is refused, before any group lookup."""
    directory = FixedDirectory({"S0APPS": {"U0BOSS"}})
    rules = policy(directory)
    assert not rules.may_request("U0REQ", "T0OTHER")
    assert not rules.may_approve("U0BOSS", "T0OTHER")
    assert directory.asked == []


def test_direct_ids_need_no_lookup_and_fresh_reaches_the_directory() -> None:
    """A listed user is answered without a lookup; ``fresh`` asks the directory afresh."""
    directory = FixedDirectory({"S0APPS": {"U0BOSS"}})
    rules = policy(directory)
    assert rules.may_approve("W0APP", TEAM)
    assert directory.asked == []
    assert rules.may_approve("U0BOSS", TEAM, fresh=True)
    assert directory.asked == [("S0APPS", True)]
