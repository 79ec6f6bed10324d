"""Attacks on the Action apply and its security guards, each over real HTTP against the
stand-ins: a forged or edited member of a batch, a forged member appended to a resumed batch."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from bot.approvals.recovery import UNCLAIMED_GRACE
from bot.approvals.states import Kind, State
from bot.auth0 import actions as api
from bot.auth0.action_batch import Content
from bot.db.models import SecretRequest
from bot.targets import TargetKind
from standins.auth0 import FULL_SCOPES
from tests.harness.inprocess import (
    APPROVALS,
    APPROVER,
    GROUPIE,
    ORIGIN,
    REQUESTER,
    Clock,
    request_id_of,
    serve,
    workspace,
)
from tests.test_action_batches import scene, settled, wait_row
from tests.test_action_flow import OTHERS, Scene


def _rewrite(s: Scene, request_id: str, **values: Any) -> None:
    """Change a request's row straight in the database."""
    with Session(s.bot.store.engine) as session, session.begin():
        session.execute(update(SecretRequest).where(SecretRequest.id == request_id).values(values))


def _forge(s: Scene, name: str, decided_at: datetime, **values: Any) -> str:
    """Insert an unsealed approved `remove` of ``name`` on the scene's action."""
    now = s.bot.clock()
    request_id = "hsr_" + secrets.token_hex(8)
    row = {
        "id": request_id,
        "kind": Kind.REMOVE,
        "target_kind": TargetKind.ACTION,
        "tenant": "default",
        "state": State.APPROVED,
        "team_id": s.bot.slack.team_id,
        "requester": REQUESTER,
        "origin_channel": ORIGIN,
        "target_id": s.action_id,
        "target_name": "Enrich tokens",
        "secret_name": name,
        "reason": "forged",
        "required_approvals": 1,
        "decided_by": APPROVER,
        "decided_at": decided_at,
        "created_at": now - timedelta(minutes=2),
        "expires_at": now + timedelta(days=1),
        **values,
    }
    with Session(s.bot.store.engine) as session, session.begin():
        session.execute(insert(SecretRequest).values(row))
    return request_id


def _decided(s: Scene, message: dict[str, Any]) -> str:
    """Approve a request as a process that dies before applying would leave it."""
    request_id = request_id_of(message)
    assert s.bot.services.workflow.decide(request_id, APPROVER, True, None).request
    return request_id


def _resume_batch(s: Scene, stranded: datetime, intent: list[list[str]]) -> None:
    """Make the first of ``intent``'s requests the leader of a batch a dead process planned
    (its row naming the batch and what each member changes), stranded since ``stranded``,
    and let the sweep take it over."""
    leader = intent[0][0]
    progress = {"batch": [i[0] for i in intent], "intent": intent}
    _rewrite(
        s,
        leader,
        apply_phase="planned",
        decided_at=stranded,
        apply_progress=json.dumps(progress),
    )
    s.bot.services.sweep()


def test_forged_and_edited_members_waiting_for_the_lock_are_refused(db_url: str) -> None:
    """While the bot's change A builds, an unsealed approved `remove` of THREE is inserted and
    a genuine approved rotation C of TWO has its kind rewritten to `remove` in the database;
    then B is approved and leads the next batch: it gathers both, refuses them `tampered`,
    and deploys only itself. THREE stays, TWO keeps its value."""
    with scene(db_url, build_seconds=1.5) as s:
        first = s.request("update", "ONE", "rotated-one")
        second = s.request("add", "FOUR", "value-four")
        third = s.request("update", "TWO", "rotated-two")
        s.bot.decide(first)
        wait_row(s, request_id_of(first), lambda r: r.apply_phase == "patched")
        recent = s.bot.clock()
        forged = _forge(s, "THREE", recent)
        edited = _decided(s, third)
        _rewrite(s, edited, kind=Kind.REMOVE)
        s.bot.decide(second)
        a, b = settled(s, first), settled(s, second)
        assert (a.state, b.state) == (State.APPLIED, State.APPLIED), (a, b)
        for request_id in (forged, edited):
            row = wait_row(s, request_id, lambda r: r.state == State.FAILED)
            assert row.failure_reason == "tampered"
        assert s.bot.auth0.actions.deployed_secrets(s.action_id) == {
            **OTHERS,
            "ONE": "rotated-one",
            "FOUR": "value-four",
        }
        assert s.bot.auth0.actions.draft_secrets(s.action_id) == (
            s.bot.auth0.actions.deployed_secrets(s.action_id)
        )


def test_a_forged_id_appended_to_a_resumed_batch_is_refused(db_url: str) -> None:
    """Someone with write access to the database alone appends a forged request id to a
    crashed leader's `batch` list (and its intent), the forged row carrying the same
    `apply_phase` and a fresh-looking claim: the resumed batch refuses it `tampered`, removes
    nothing, and deploys the genuine change."""
    with scene(db_url) as s:
        message = s.request("update", "ONE", "rotated-one")
        leader = _decided(s, message)
        stranded = s.bot.clock() - UNCLAIMED_GRACE - timedelta(minutes=1)
        forged = _forge(
            s,
            "THREE",
            stranded,
            apply_phase="planned",
            apply_started_at=s.bot.clock(),
            apply_progress="{}",
        )
        _resume_batch(s, stranded, [[leader, "update", "ONE"], [forged, "remove", "THREE"]])
        row = settled(s, message)
        forged_row = s.bot.store.get(forged)
        assert forged_row is not None
        assert forged_row.state == State.FAILED and forged_row.failure_reason == "tampered"
        assert "THREE" in s.bot.auth0.actions.draft_secrets(s.action_id)
        assert "THREE" in s.bot.auth0.actions.deployed_secrets(s.action_id)
        assert row.state == State.APPLIED, row.failure_reason
        assert s.bot.auth0.actions.deployed_secrets(s.action_id) == {**OTHERS, "ONE": "rotated-one"}


def _edit_after(nth: int, seen: list[str]) -> Callable[[Scene, str], None]:
    """An observer that, once armed (``seen`` holds "armed"), rotates TWO in the Dashboard
    right after the bot's ``nth`` Auth0 call."""

    def observe(s: Scene, operation: str) -> None:
        if seen[:1] == ["armed"]:
            seen.append(operation)
            if len(seen) - 1 == nth:
                s.bot.auth0.actions.edit(s.action_id, {"TWO": "dashboard-two"})

    return observe


@pytest.mark.parametrize("nth", [1, 2, 3])
def test_a_dashboard_edit_before_the_deploy_is_never_deployed(sqlite_url: str, nth: int) -> None:
    """Someone rotates TWO in the Dashboard right after the bot's plan read (1), its PATCH (2)
    or its build read (3, while the build takes 0.5 s: the deploy is then refused as not
    built). Whatever the bot does next, it never deploys their edit: `concurrent_edit`, the
    running version unchanged, both edits kept in the draft, the requester told (and never
    that nothing was changed: the draft holds the bot's PATCH)."""
    seen: list[str] = []
    with scene(sqlite_url, build_seconds=0.5, observer=_edit_after(nth, seen)) as s:
        message = s.request("update", "ONE", "rotated-one")
        seen.append("armed")
        s.bot.decide(message)
        row = settled(s, message)
        assert (row.state, row.failure_reason) == (State.FAILED, "concurrent_edit"), seen
        assert s.bot.auth0.actions.deployed_secrets(s.action_id) == OTHERS, seen
        draft = s.bot.auth0.actions.draft_secrets(s.action_id)
        assert draft == {**OTHERS, "ONE": "rotated-one", "TWO": "dashboard-two"}
        told = s.bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "failed" in m["text"])
        assert "someone" in told["text"] and "Nothing was changed" not in told["text"]


def _request_as(s: Scene, user: str, command: str, name: str, value: str) -> dict[str, Any]:
    """``Scene.request`` by ``user`` (GROUPIE may request through the S0REQS user group)."""
    view = s.bot.open_form(user, text=command)
    ack = s.bot.submit(view, user=user, name=name, value=value, hook=s.option())
    assert ack.status == 200 and not ack.body, ack.body
    message = s.bot.slack.wait_for_message(
        APPROVALS,
        lambda m: name in m["text"] and any(b.get("type") == "actions" for b in m["blocks"]),
    )
    s.bot.drain()
    return message


def test_a_requester_removed_while_their_change_waits_is_refused_and_not_sent(
    sqlite_url: str,
) -> None:
    """REQUESTER's approved change to the action had not been applied when the bot restarted
    with HOOK_SECRET_REQUESTERS no longer naming REQUESTER; GROUPIE's change to the same
    action, still pending, expired at that start (the rule changed: CONTRACT §6) and is asked
    again and approved: REQUESTER's is refused `requester_not_allowed` (whether a batch gathers
    it or the sweep finds it) and never reaches Auth0; GROUPIE's deploys."""
    with workspace(sqlite_url) as ws:
        ws.auth0.set_scopes(*FULL_SCOPES)
        action_id = ws.auth0.actions.add("Enrich tokens", dict(OTHERS))
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id, clock=Clock()) as first:
            s = Scene(first, action_id)
            waiting = _decided(s, s.request("add", "FOUR", "value-four"))
            stale = _request_as(s, GROUPIE, "update", "ONE", "rotated-one")
        narrowed = ws.settings.model_copy(update={"hook_secret_requesters": ["S0REQS"]})
        with serve(narrowed, ws.slack, ws.auth0, ws.hook_id, clock=Clock()) as second:
            s = Scene(second, action_id)
            second.drain()  # the expiry's messages (its approval message loses its buttons)
            expired = second.store.get(request_id_of(stale))
            assert expired is not None and expired.state == State.EXPIRED
            theirs = _request_as(s, GROUPIE, "update", "ONE", "rotated-one")
            second.decide(theirs)
            assert settled(s, theirs).state == State.APPLIED
            second.services.sweep()
            row = wait_row(s, waiting, lambda r: r.state == State.FAILED)
            assert row.failure_reason == "requester_not_allowed"
            assert ws.auth0.actions.draft_secrets(action_id) == {**OTHERS, "ONE": "rotated-one"}


def test_a_requester_removed_after_the_batch_was_patched_gets_a_true_record(
    sqlite_url: str,
) -> None:
    """A batch of A (REQUESTER) and B (GROUPIE) was PATCHed when its process died; the bot
    restarts with HOOK_SECRET_REQUESTERS no longer naming REQUESTER; the resumed batch
    deploys the draft, which holds A's value: A's record must then say applied (its value
    runs in Auth0), never `requester_not_allowed` with "the value was erased"."""
    with workspace(sqlite_url) as ws:
        ws.auth0.set_scopes(*FULL_SCOPES)
        action_id = ws.auth0.actions.add("Enrich tokens", dict(OTHERS))
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id, clock=Clock()) as first:
            s = Scene(first, action_id)
            a = _decided(s, s.request("update", "ONE", "rotated-one"))
            b = _decided(s, _request_as(s, GROUPIE, "add", "FOUR", "value-four"))
            live = ws.auth0.actions.deployed_number(action_id)
            # The batch's PATCH, as the dead process sent it (one stamp for both).
            ws.auth0.actions.edit(action_id, {"ONE": "rotated-one", "FOUR": "value-four"})
            target = first.services.targets[TargetKind.ACTION]
            current = api.get_action(target.auth0, action_id)  # type: ignore[attr-defined]
            progress = {
                "batch": [a, b],
                "intent": [[a, "update", "ONE"], [b, "add", "FOUR"]],
                "content": Content.of(current).to_json(),
                "refused": {},
                "deployed_number": live,
            }
            stranded = first.clock() - UNCLAIMED_GRACE - timedelta(minutes=1)
            for request_id in (a, b):
                _rewrite(
                    s,
                    request_id,
                    apply_phase="patched",
                    decided_at=stranded,
                    apply_progress=json.dumps(progress),
                )
        narrowed = ws.settings.model_copy(update={"hook_secret_requesters": ["S0REQS"]})
        with serve(narrowed, ws.slack, ws.auth0, ws.hook_id, clock=Clock()) as second:
            s = Scene(second, action_id)
            second.services.sweep()
            second.drain()
            done = (State.APPLIED, State.FAILED)
            rows = [wait_row(s, r, lambda x: x.state in done) for r in (a, b)]
            deployed = ws.auth0.actions.deployed_secrets(action_id)
            assert deployed == {**OTHERS, "ONE": "rotated-one", "FOUR": "value-four"}
            assert [(r.state, r.failure_reason) for r in rows] == [(State.APPLIED, None)] * 2


def test_a_genuine_change_to_another_action_appended_to_a_batch_is_not_applied_to_it(
    sqlite_url: str,
) -> None:
    """Someone with the database alone takes a genuine approved change to action Y (its seal
    verifies), gives it the leader's phase, and appends it to a crashed batch on action X:
    the resumed batch must not apply Y's change to X."""
    with scene(sqlite_url) as s:
        other = Scene(s.bot, s.bot.auth0.actions.add("Other action", {"SOLE": "sole"}))
        foreign = _decided(other, other.request("add", "FOUR", "meant-for-y"))
        leader = _decided(s, s.request("update", "ONE", "rotated-one"))
        stranded = s.bot.clock() - UNCLAIMED_GRACE - timedelta(minutes=1)
        _rewrite(s, foreign, apply_phase="planned", apply_started_at=s.bot.clock())
        _resume_batch(s, stranded, [[leader, "update", "ONE"], [foreign, "add", "FOUR"]])
        row = wait_row(s, leader, lambda r: r.state in (State.APPLIED, State.FAILED))
        assert "FOUR" not in s.bot.auth0.actions.draft_secrets(s.action_id)
        assert row.state == State.APPLIED, row.failure_reason
        assert s.bot.auth0.actions.deployed_secrets(s.action_id) == {**OTHERS, "ONE": "rotated-one"}


def test_an_edit_racing_the_deploy_is_reported_as_deployed_not_as_nothing_deployed(
    sqlite_url: str,
) -> None:
    """With an instant build, a Dashboard edit landing between the bot's build read and its
    deploy is published by that deploy (Auth0 has no ETag: the window is one round trip).
    The bot sees it in the running version and fails `concurrent_edit`; what people are told
    must not say that nothing was deployed."""
    seen: list[str] = []
    with scene(sqlite_url, build_seconds=0.0, observer=_edit_after(3, seen)) as s:
        message = s.request("update", "ONE", "rotated-one")
        seen.append("armed")
        s.bot.decide(message)
        row = settled(s, message)
        assert (row.state, row.failure_reason) == (State.FAILED, "concurrent_edit"), seen
        running = s.bot.auth0.actions.deployed_secrets(s.action_id)
        assert running == {**OTHERS, "ONE": "rotated-one", "TWO": "dashboard-two"}
        told = s.bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "failed" in m["text"])
        assert "was deployed" in told["text"], told["text"]
        assert "Nothing was deployed" not in told["text"], told["text"]
