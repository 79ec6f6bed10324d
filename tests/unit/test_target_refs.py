"""Target references, the picker's option groups and the command's action keys, as pure code."""

from __future__ import annotations

import threading

from bot.slack.blocks import pickers
from bot.slack.validation import parse_command
from bot.targets import Described, Offer, TargetKind, TargetLocks, TargetRef
from standins.slack import validate_options_response
from tests.waiting import wait_until

ACTION_ID = "0e5b3c1a-9c3e-4f3e-8a57-3b1f9f2f0a11"


def test_a_reference_round_trips_through_its_option_value_and_carries_its_tenant() -> None:
    """Hook ids stay bare, actions are action:{id}; anything else names nothing."""
    action = TargetRef(TargetKind.ACTION, ACTION_ID)
    assert action.key == f"action:{ACTION_ID}" and action.tenant == "default"
    assert TargetRef.parse(action.key) == action
    assert TargetRef.parse("01-hook") == TargetRef(TargetKind.HOOK, "01-hook")
    for bad in ("", "action:", "action:../x", "a b", "!unavailable"):
        assert TargetRef.parse(bad) is None


def test_the_command_accepts_an_action_key_but_still_refuses_name_colon_value() -> None:
    """`add action:{id} NAME` opens the form; `NAME:value` anywhere is still refused."""
    parsed = parse_command(f"add action:{ACTION_ID} API_KEY")
    assert (parsed.action, parsed.hook, parsed.name) == ("add", f"action:{ACTION_ID}", "API_KEY")
    assert parse_command(f"list action:{ACTION_ID}").hook == f"action:{ACTION_ID}"
    assert parse_command("add hook API_KEY:s3cret").action == "value_refused"
    assert parse_command("add action:x:y API_KEY").action == "value_refused"
    assert parse_command(f"add hook action:{ACTION_ID}").action == "value_refused"


def _described(kind: TargetKind, n: int) -> Described:
    return Described(TargetRef(kind, f"id-{n}"), f"{kind} {n}", "post-login")


def test_options_are_grouped_when_actions_are_offered_and_say_why_hooks_are_missing() -> None:
    """Actions and Hooks groups; a tenant without hooks shows why in the Hooks group; with no
    actions the answer stays the plain hook list."""
    actions = Offer(TargetKind.ACTION, [_described(TargetKind.ACTION, 1)])
    hooks = Offer(TargetKind.HOOK, [_described(TargetKind.HOOK, 2)])
    both = pickers.target_options([hooks, actions])
    assert validate_options_response(both) == []
    assert [g["label"]["text"] for g in both["option_groups"]] == ["Actions", "Hooks"]
    assert both["option_groups"][0]["options"][0]["value"] == "action:id-1"
    retired = pickers.target_options([Offer(TargetKind.HOOK, [], "Hooks are retired"), actions])
    (_, hook_group) = retired["option_groups"]
    assert "Hooks are retired" in hook_group["options"][0]["text"]["text"]
    assert hook_group["options"][0]["value"] == "!unavailable"
    no_actions = pickers.target_options([hooks, Offer(TargetKind.ACTION, [], "no scope")])
    assert no_actions == {"options": [pickers.hook_option(hooks.targets[0]).to_dict()]}


def test_the_process_lock_serialises_changes_to_one_target_only() -> None:
    """Two holders of one key never overlap; another key is not held up."""
    locks, inside, overlaps, tried = TargetLocks(), [0], [0], [0]
    counting = threading.Lock()

    def hold(key: str) -> None:
        with counting:
            tried[0] += 1
        with locks.hold(key):
            inside[0] += 1
            overlaps[0] = max(overlaps[0], inside[0])
            # Stay until every holder has tried to enter: a lock that let two in would show.
            wait_until(lambda: tried[0] == 4, 5, every=0.005, what="every holder's try")
            inside[0] -= 1

    threads = [threading.Thread(target=hold, args=("default:a",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    with locks.hold("default:b"):  # free while "a" is busy
        pass
    for thread in threads:
        thread.join()
    assert overlaps == [1]
