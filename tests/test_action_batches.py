"""Changes to one action through the whole flow over real HTTP, when they meet each other or a
Dashboard edit: the bot deploys only what it PATCHed, changes queue behind the bot's own, the
waiting ones go together, and an unreadable secret list is never PATCHed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bot.approvals.batching import Batches
from bot.approvals.states import State
from bot.db.models import SecretRequest
from bot.targets import ActionTarget, TargetKind
from standins.auth0 import FULL_SCOPES
from tests.harness.inprocess import Clock, request_id_of, serve, workspace
from tests.harness.people import APPROVALS, APPROVER, ORIGIN, REQUESTER
from tests.test_action_flow import OTHERS, Scene, mentioning
from tests.waiting import wait_until


@contextmanager
def scene(
    db_url: str,
    build_seconds: float = 0.0,
    observer: Callable[[Scene, str], None] | None = None,
) -> Iterator[Scene]:
    """A bot whose tenant holds one deployed action with three secrets; ``observer`` sees
    every Auth0 operation the bot makes, as it is answered."""
    with workspace(db_url) as ws:
        ws.auth0.set_scopes(*FULL_SCOPES)
        ws.auth0.actions.build_seconds = build_seconds
        action_id = ws.auth0.actions.add("Enrich tokens", dict(OTHERS))
        scenes: list[Scene] = []

        def observe(operation: str, status: int | str, elapsed: float) -> None:
            if observer is not None and scenes:
                observer(scenes[0], operation)

        options = {"observer": observe}
        with serve(
            ws.settings, ws.slack, ws.auth0, ws.hook_id, clock=Clock(), auth0_options=options
        ) as bot:
            scenes.append(Scene(bot, action_id))
            yield scenes[0]


def wait_row(s: Scene, request_id: str, ok: Callable[[SecretRequest], bool]) -> SecretRequest:
    """Wait until the request's row satisfies ``ok``; the row."""

    def reached() -> SecretRequest | None:
        row = s.bot.store.get(request_id)
        return row if row is not None and ok(row) else None

    return wait_until(
        reached, 30, every=0.02, what=lambda: f"request {request_id}: {s.bot.store.get(request_id)}"
    )


def settled(s: Scene, message: dict[str, Any]) -> SecretRequest:
    """The request once its apply is over."""
    return wait_row(s, request_id_of(message), lambda r: r.state in (State.APPLIED, State.FAILED))


def applied_version(s: Scene, request_id: str) -> Any:
    """The ``action_version`` of the request's ``secret.*`` audit record."""
    (record,) = [
        r
        for r in s.bot.audit()
        if r["request_id"] == request_id and r["event"].startswith("secret.")
    ]
    return record["action_version"]


@pytest.mark.parametrize("build_moves_updated_at", [False, True])
def test_a_dashboard_edit_between_the_patch_and_the_deploy_is_not_deployed(
    db_url: str, build_moves_updated_at: bool
) -> None:
    """Someone rotates TWO in the Dashboard just after the bot's PATCH: before deploying, the
    bot reads the draft again, sees content that is not its PATCH's, and deploys nothing:
    `concurrent_edit`, and the requester and the approver are told plainly that the change is
    in the draft, not deployed, because someone else edited it (whether a finished build moves
    the action's `updated_at` or not)."""
    edited: list[int] = []

    def dashboard(s: Scene, operation: str) -> None:
        if operation == "patch_action" and not edited:
            edited.append(1)
            s.bot.auth0.actions.edit(s.action_id, {"TWO": "dashboard-two"})

    with scene(db_url, build_seconds=0.5, observer=dashboard) as s:
        s.bot.auth0.actions.build_moves_updated_at = build_moves_updated_at
        message = s.request("update", "ONE", "rotated-one")
        s.bot.decide(message)
        row = settled(s, message)
        assert row.state == State.FAILED and row.failure_reason == "concurrent_edit"
        assert len(s.calls("PATCH", "")) == 1 and s.calls("POST", "/deploy") == []
        draft = s.bot.auth0.actions.draft_secrets(s.action_id)
        assert draft == {**OTHERS, "ONE": "rotated-one", "TWO": "dashboard-two"}
        assert s.bot.auth0.actions.deployed_secrets(s.action_id) == OTHERS
        assert s.bot.audit()[-1]["outcome"] == "concurrent_edit"
        told = s.bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "failed" in m["text"])
        for words in ("someone else edited the action's draft", "in the draft but not deployed"):
            assert words in told["text"]
        assert any("someone else edited" in m["text"] for m in s.bot.slack.messages(APPROVER))


def test_a_build_that_moves_updated_at_is_not_mistaken_for_an_edit(sqlite_url: str) -> None:
    """The bot compares the draft's content, not the action's own `updated_at`: a tenant
    whose finished builds move it still gets its change deployed, in five Auth0 calls."""
    with scene(sqlite_url, build_seconds=0.5) as s:
        s.bot.auth0.actions.build_moves_updated_at = True
        message = s.request("update", "ONE", "rotated-one")
        calls_before = len(s.bot.auth0.requests)
        s.bot.decide(message)
        row = settled(s, message)
        assert row.state == State.APPLIED, row.failure_reason
        assert s.bot.auth0.actions.deployed_secrets(s.action_id) == {**OTHERS, "ONE": "rotated-one"}
        on_action = [
            r
            for r in s.bot.auth0.requests[calls_before:]
            if r.path.startswith(f"/api/v2/actions/actions/{s.action_id}")
        ]
        assert len(on_action) <= 5, [(r.method, r.path) for r in on_action]


def test_a_change_approved_during_anothers_build_deploys_after_it(db_url: str) -> None:
    """B is approved while A (the bot's own change to the same action) builds: B waits for
    A, is planned from the draft A deployed, and deploys after it; nothing else is lost."""
    with scene(db_url, build_seconds=2.0) as s:
        first = s.request("update", "ONE", "rotated-one")
        second = s.request("update", "TWO", "rotated-two")
        s.bot.decide(first)
        wait_row(s, request_id_of(first), lambda r: r.apply_phase == "patched")
        s.bot.decide(second)
        a, b = settled(s, first), settled(s, second)
        assert (a.state, b.state) == (State.APPLIED, State.APPLIED), (a, b)
        assert len(s.calls("PATCH", "")) == 2 and len(s.calls("POST", "/deploy")) == 2
        assert s.bot.auth0.actions.deployed_secrets(s.action_id) == {
            **OTHERS,
            "ONE": "rotated-one",
            "TWO": "rotated-two",
        }
        assert (applied_version(s, a.id), applied_version(s, b.id)) == (2, 3)


def test_waiting_changes_go_in_one_patch_and_one_deploy_and_a_refused_one_fails_alone(
    db_url: str,
) -> None:
    """Three changes approved while the bot's first change builds wait together: one PATCH,
    one deploy, the same `action_version` in each one's `secret.*` record, a confirmation
    each. One of them adds a name someone created meanwhile in the Dashboard: it alone fails
    `conflict` before the PATCH, and is told that nothing was changed by it."""
    with scene(db_url, build_seconds=2.0) as s:
        first = s.request("update", "ONE", "rotated-one")
        waiting = [
            s.request("update", "TWO", "rotated-two"),
            s.request("add", "FOUR", "value-four"),
            s.request("add", "FIVE", "value-five"),
        ]
        s.bot.auth0.actions.edit(s.action_id, {"FIVE": "dashboard-five"})
        s.bot.auth0.actions.deploy_draft(s.action_id)
        s.bot.decide(first)
        wait_row(s, request_id_of(first), lambda r: r.apply_phase == "patched")
        for message in waiting:
            s.bot.decide(message)
        rows = [settled(s, m) for m in [first, *waiting]]
        assert [r.state for r in rows] == [State.APPLIED] * 3 + [State.FAILED], rows
        assert rows[3].failure_reason == "conflict"
        assert len(s.calls("PATCH", "")) == 2 and len(s.calls("POST", "/deploy")) == 2
        assert s.bot.auth0.actions.deployed_secrets(s.action_id) == {
            **OTHERS,
            "ONE": "rotated-one",
            "TWO": "rotated-two",
            "FOUR": "value-four",
            "FIVE": "dashboard-five",
        }
        versions = [applied_version(s, r.id) for r in rows[:3]]
        assert versions == [3, 4, 4] and [r.target_version for r in rows[:3]] == versions
        for name in ("TWO", "FOUR"):
            confirmation = s.bot.slack.wait_for_message(ORIGIN, mentioning(f"`{name}`"))
            assert "version 4" in confirmation["text"]
        refused = s.bot.slack.wait_for_ephemeral(
            REQUESTER, lambda m: "`FIVE`" in m["text"] and "failed" in m["text"]
        )
        assert "Nothing was changed by it." in refused["text"]
        approvals = " ".join(m["text"] for m in s.bot.slack.messages(APPROVALS))
        for row in rows[:3]:
            assert f"Request `{row.id}`: :white_check_mark:" in approvals


def test_changes_approved_while_the_first_waits_for_the_rate_limit_join_its_batch(
    db_url: str,
) -> None:
    """The first change's apply waits for room under the rate limit before it gathers: the
    changes approved during that wait go in its PATCH and its deploy (one of each), and each
    is confirmed with the same version."""
    with scene(db_url, build_seconds=0.5) as s:
        first = s.request("update", "ONE", "rotated-one")
        waiting = [s.request("update", "TWO", "rotated-two"), s.request("add", "FOUR", "four")]
        target = s.bot.services.targets[TargetKind.ACTION]
        assert isinstance(target, ActionTarget)
        paced = target.ready_to_send

        @contextmanager
        def approved_meanwhile() -> Iterator[None]:
            target.ready_to_send = paced  # type: ignore[method-assign]  # once: then as ever
            for message in waiting:
                s.bot.decide(message)
            for message in waiting:
                wait_row(s, request_id_of(message), lambda r: r.state == State.APPROVED)
            with paced():
                yield

        target.ready_to_send = approved_meanwhile  # type: ignore[method-assign]
        s.bot.decide(first)
        rows = [settled(s, m) for m in [first, *waiting]]
        assert [r.state for r in rows] == [State.APPLIED] * 3, rows
        assert len(s.calls("PATCH", "")) == 1 and len(s.calls("POST", "/deploy")) == 1
        assert [applied_version(s, r.id) for r in rows] == [2, 2, 2]
        assert s.bot.auth0.actions.deployed_secrets(s.action_id) == {
            **OTHERS,
            "ONE": "rotated-one",
            "TWO": "rotated-two",
            "FOUR": "four",
        }


@pytest.mark.parametrize("shape", ["missing", "null", "names"])
def test_an_unreadable_secret_list_is_never_patched(sqlite_url: str, shape: str) -> None:
    """Auth0 answers the action with `secrets` missing, null or a list of bare strings: that
    is not "no secrets", so nothing is planned from it and nothing is PATCHed."""
    with scene(sqlite_url) as s:
        message = s.request("update", "ONE", "rotated-one")
        s.bot.auth0.actions.secrets_shape = shape
        s.bot.decide(message)
        row = settled(s, message)
        assert row.state == State.FAILED and row.failure_reason == "auth0_unavailable"
        assert s.calls("PATCH", "") == [] and s.calls("POST", "/deploy") == []
        assert s.bot.auth0.actions.draft_secrets(s.action_id) == OTHERS
        told = s.bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "failed" in m["text"])
        assert "cannot read" in told["text"]


def test_a_member_whose_own_apply_wins_the_lock_before_its_leader_finishes_it_is_not_replanned(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leader releases the action's lock, then records its members applied one by one. A
    member's own apply, waiting for the lock with the same claim time as the leader (the
    tests' pinned clock; in production two claims in one group-commit transaction share
    PostgreSQL's ``now()``), gets it in between: it must go on from the phase the row
    records (deployed), not from the row its claim read (nothing started) and plan the
    change again (`conflict`: the secret is already there)."""
    finish_one = Batches._finish_one

    def slow_finish(self: Batches, member: SecretRequest, *args: Any) -> Any:
        time.sleep(0.3)  # the window between the lock's release and each member's outcome
        return finish_one(self, member, *args)

    monkeypatch.setattr(Batches, "_finish_one", slow_finish)
    with scene(db_url, build_seconds=1.0) as s:
        first = s.request("update", "ONE", "rotated-one")
        waiting = [s.request("add", f"NEW_{n}", f"value-{n}") for n in range(3)]
        s.bot.decide(first)
        wait_row(s, request_id_of(first), lambda r: r.apply_phase == "patched")
        for message in waiting:
            s.bot.decide(message)
        rows = [settled(s, m) for m in [first, *waiting]]
        assert [r.state for r in rows] == [State.APPLIED] * 4, [r.failure_reason for r in rows]
        assert s.bot.auth0.actions.deployed_secrets(s.action_id) == {
            **OTHERS,
            "ONE": "rotated-one",
            **{f"NEW_{n}": f"value-{n}" for n in range(3)},
        }
        assert len(s.calls("PATCH", "")) == 2 and len(s.calls("POST", "/deploy")) == 2
