"""Action changes through real ``hook-secret-bot run`` processes: SIGKILL between the PATCH and
the deploy, and two replicas changing one action at the same moment."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.approvals.states import State
from bot.db.models import SecretRequest
from bot.db.store import Store
from bot.slack import ids
from standins.auth0 import FULL_SCOPES, Auth0Sandbox
from standins.slack import SlackDriver, SlackStandIn
from tests.harness.inprocess import request_id_of
from tests.harness.process import (
    APPROVALS,
    APPROVER,
    BOT_TOKEN,
    FAST_RECOVERY,
    ORIGIN,
    REQUESTER,
    SIGNING_SECRET,
    BotProcess,
    add_people,
    bot_env,
    free_port,
    open_approval,
    running,
    running_many,
)
from tests.waiting import wait_until

OTHERS = {"ONE": "value-one", "TWO": "value-two", "THREE": "value-three"}


@dataclass
class Tenant:
    """The stand-ins and one deployed action with three secrets."""

    slack: SlackStandIn
    auth0: Auth0Sandbox
    action_id: str

    def calls(self, method: str, suffix: str = "") -> int:
        """How many ``method`` requests reached the action's path ending in ``suffix``."""
        path = f"/api/v2/actions/actions/{self.action_id}{suffix}"
        return sum(1 for r in self.auth0.requests if r.method == method and r.path == path)


@contextmanager
def tenant() -> Iterator[Tenant]:
    """Slack and an Auth0 tenant granting the action scopes, holding one action."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox(scopes=FULL_SCOPES) as auth0:
        add_people(slack)
        slack.add_channel(ORIGIN, "general")
        auth0.add_hook("Client Credentials Exchange")
        yield Tenant(slack, auth0, auth0.actions.add("Enrich tokens", dict(OTHERS)))


def request_change(
    t: Tenant, driver: SlackDriver, name: str, value: str, command: str = "update"
) -> dict[str, Any]:
    """``/hook-secret update`` (or ``command``), pick the action from its option group,
    submit; the approval message."""
    mark = t.slack.mark()
    assert driver.slash_command(REQUESTER, command, channel_id=ORIGIN).status == 200
    t.slack.wait_for("views.open", after=mark)
    callback = ids.CALLBACK_UPDATE if command == "update" else ids.CALLBACK_ADD
    view = t.slack.wait_for_view(REQUESTER, callback_id=callback)
    ack = driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
    assert ack.status == 200 and not ack.problems, ack.body
    groups = {g["label"]["text"]: g["options"] for g in ack.payload()["option_groups"]}
    (option,) = groups["Actions"]
    assert option["value"] == f"action:{t.action_id}"
    values = {
        ids.BLOCK_HOOK: {"selected_option": option},
        ids.BLOCK_SECRET_NAME: name,
        ids.BLOCK_SECRET_VALUE: value,
        ids.BLOCK_REASON: "vendor rotated the key",
    }
    submitted = driver.view_submission(REQUESTER, view, values)
    assert submitted.status == 200 and not submitted.body, submitted.body
    return t.slack.wait_for_message(
        APPROVALS, lambda m: name in m.get("text", "") and _has_buttons(m)
    )


def _has_buttons(message: dict[str, Any]) -> bool:
    return any(b.get("type") == "actions" for b in message.get("blocks", []))


def wait_row(store: Store, request_id: str, ok: Any, timeout: float = 60.0) -> SecretRequest:
    """Poll the request's row until ``ok(row)``."""

    def there() -> SecretRequest | None:
        row = store.get(request_id)
        return row if row is not None and ok(row) else None

    return wait_until(
        there, timeout, every=0.02, what=lambda: f"request {request_id}: {store.get(request_id)}"
    )


def approve(t: Tenant, driver: SlackDriver, message: dict[str, Any]) -> None:
    """The approver approves the request."""
    view = open_approval(t.slack, driver, message)
    ack = driver.view_submission(APPROVER, view, {ids.BLOCK_COMMENT: None})
    assert ack.status == 200 and not ack.body, ack.body


def audit_verify(env: dict[str, str], workdir: Path) -> int:
    """``hook-secret-bot audit verify``'s exit status."""
    workdir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "verify"],
        env=env,
        cwd=workdir,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode


def test_sigkill_between_patch_and_deploy_resumes_with_one_deploy_and_no_second_patch(
    db_url: str, tmp_path: Path
) -> None:
    """The bot is killed while the patched draft builds; once its apply lease has passed, the
    restarted bot reads the recorded phase, deploys once, never PATCHes again, and records
    ``secret.updated`` with the deployed ``action_version``; the audit chain verifies."""
    with tenant() as t:
        t.auth0.actions.build_seconds = 3.0  # the window to kill the bot in
        env = bot_env(t.slack, t.auth0, db_url, **FAST_RECOVERY)
        store = Store(db_url)
        try:
            with running(env, tmp_path / "first") as first:
                driver = SlackDriver(t.slack, first.events_url, SIGNING_SECRET)
                message = request_change(t, driver, "ONE", "rotated-one")
                request_id = request_id_of(message)
                approve(t, driver, message)
                wait_row(store, request_id, lambda r: r.apply_phase == "patched")
                kill_tree(first.proc.pid)
                first.proc.wait(10)
            assert t.calls("PATCH") == 1 and t.calls("POST", "/deploy") == 0
            with running(env, tmp_path / "second") as second:
                # Recovered within a minute of the kill: the dead apply's lease (20 s; 2 s with
                # FAST_RECOVERY) runs out and the next sweep (every 10 s; 0.5 s) resumes it.
                row = wait_row(store, request_id, _settled, timeout=60.0)
                assert row.state == State.APPLIED, row.failure_reason
                _wait_audited(second, "secret.updated")
            assert t.calls("PATCH") == 1 and t.calls("POST", "/deploy") == 1
            deployed = t.auth0.actions.deployed_number(t.action_id)
            (applied,) = [r for r in second.audit() if r["event"] == "secret.updated"]
            assert applied["action_version"] == deployed and applied["hook_id"] is None
            assert applied["action_id"] == t.action_id and applied["target"] == "action"
            assert t.auth0.actions.deployed_secrets(t.action_id) == {**OTHERS, "ONE": "rotated-one"}
            assert audit_verify(env, tmp_path / "verify") == 0
        finally:
            store.close()


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every process under it, as a crashed host takes them all (the
    gunicorn worker applying the change would otherwise outlive its master)."""
    victims = [pid]
    for parent in victims:  # grows while walking: children, then theirs
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):  # a thread that ended since the listing
                victims.extend(int(child) for child in (task / "children").read_text().split())
    for victim in reversed(victims):
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


def _settled(row: SecretRequest) -> bool:
    return row.state not in (State.PENDING, State.APPROVED)


def _wait_audited(bot: BotProcess, event: str, timeout: float = 20.0) -> None:
    wait_until(
        lambda: any(r["event"] == event for r in bot.audit()),
        timeout,
        what=lambda: bot.output()[-3000:],
    )


def test_two_replicas_change_one_action_at_once_and_both_are_deployed(
    db_url: str, tmp_path: Path
) -> None:
    """Two approved changes to different secrets of one action, approved at the same moment on
    two replicas sharing PostgreSQL: the per-action advisory lock serialises them (the second
    joins the first's batch when it waits in time: one PATCH and one deploy for both), both are
    deployed, and no other secret is lost."""
    if db_url.startswith("sqlite"):
        pytest.skip("replicas share PostgreSQL; on SQLite there is one process")
    with tenant() as t:
        env = bot_env(t.slack, t.auth0, db_url)
        env_b = {**env, "PORT": str(free_port())}
        store = Store(db_url)
        try:
            specs = [(env, tmp_path / "a"), (env_b, tmp_path / "b")]
            with running_many(specs, ready=False) as (a, b):
                for replica in (a, b):  # two cold starts at once on a shared CI machine
                    replica.wait_ready(timeout=120)
                driver_a = SlackDriver(t.slack, a.events_url, SIGNING_SECRET)
                driver_b = SlackDriver(t.slack, b.events_url, SIGNING_SECRET)
                first = request_change(t, driver_a, "ONE", "rotated-one")
                second = request_change(t, driver_b, "TWO", "rotated-two")
                views = [
                    open_approval(t.slack, driver_a, first),
                    open_approval(t.slack, driver_b, second),
                ]
                barrier = threading.Barrier(2)

                def decide(driver: SlackDriver, view: dict[str, Any]) -> None:
                    barrier.wait()
                    driver.view_submission(APPROVER, view, {ids.BLOCK_COMMENT: None})

                threads = [
                    threading.Thread(target=decide, args=(driver_a, views[0])),
                    threading.Thread(target=decide, args=(driver_b, views[1])),
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(30)
                for message in (first, second):
                    row = wait_row(store, request_id_of(message), _settled)
                    assert row.state == State.APPLIED, row.failure_reason
            patches = t.calls("PATCH")
            assert 1 <= patches <= 2 and t.calls("POST", "/deploy") == patches
            assert t.auth0.actions.deployed_secrets(t.action_id) == {
                "ONE": "rotated-one",
                "TWO": "rotated-two",
                "THREE": "value-three",
            }
        finally:
            store.close()


def test_sigkill_between_the_patch_and_the_deploy_of_a_batch_resumes_it_once(
    db_url: str, tmp_path: Path
) -> None:
    """A's change builds while B's and C's are approved: they wait and go together as one
    batch. The bot is killed while that batch's PATCHed draft builds; after its lease the
    restarted bot resumes the batch from the phase both rows recorded: one deploy, no second
    PATCH, both applied with the same ``action_version``; the audit chain verifies."""
    with tenant() as t:
        t.auth0.actions.build_seconds = 3.0
        env = bot_env(t.slack, t.auth0, db_url)
        store = Store(db_url)
        try:
            with running(env, tmp_path / "first") as first:
                driver = SlackDriver(t.slack, first.events_url, SIGNING_SECRET)
                a = request_change(t, driver, "ONE", "rotated-one")
                b = request_change(t, driver, "TWO", "rotated-two")
                c = request_change(t, driver, "FOUR", "value-four", command="add")
                approve(t, driver, a)
                wait_row(store, request_id_of(a), lambda r: r.apply_phase == "patched")
                approve(t, driver, b)
                approve(t, driver, c)
                for message in (b, c):
                    wait_row(store, request_id_of(message), lambda r: r.apply_phase == "patched")
                kill_tree(first.proc.pid)
                first.proc.wait(10)
            assert t.calls("PATCH") == 2 and t.calls("POST", "/deploy") == 1
            with running(env, tmp_path / "second") as second:
                rows = [
                    wait_row(store, request_id_of(m), _settled, timeout=90.0) for m in (a, b, c)
                ]
                assert [r.state for r in rows] == [State.APPLIED] * 3, rows
                _wait_audited(second, "secret.added")
            assert t.calls("PATCH") == 2 and t.calls("POST", "/deploy") == 2
            deployed = t.auth0.actions.deployed_number(t.action_id)
            versions = {
                r["request_id"]: r["action_version"]
                for r in second.audit()
                if r["event"].startswith("secret.")
            }
            assert versions == {rows[1].id: deployed, rows[2].id: deployed}
            assert t.auth0.actions.deployed_secrets(t.action_id) == {
                **OTHERS,
                "ONE": "rotated-one",
                "TWO": "rotated-two",
                "FOUR": "value-four",
            }
            assert audit_verify(env, tmp_path / "verify") == 0
        finally:
            store.close()


def test_ten_changes_to_one_action_through_two_replicas_take_at_most_three_deploys(
    db_url: str, tmp_path: Path
) -> None:
    """Ten approved additions to one action, requested and approved on two replicas sharing
    PostgreSQL at once: all ten are deployed, the other secrets are kept, and the waiting
    changes go together (at most three PATCHes and three deploys)."""
    if db_url.startswith("sqlite"):
        pytest.skip("replicas share PostgreSQL; on SQLite there is one process")
    with tenant() as t:
        env = bot_env(t.slack, t.auth0, db_url)
        env_b = {**env, "PORT": str(free_port())}
        store = Store(db_url)
        try:
            specs = [(env, tmp_path / "a"), (env_b, tmp_path / "b")]
            with running_many(specs, ready=False) as (a, b):
                for replica in (a, b):
                    replica.wait_ready(timeout=120)
                drivers = [
                    SlackDriver(t.slack, replica.events_url, SIGNING_SECRET) for replica in (a, b)
                ]
                names = [f"NEW_{n}" for n in range(10)]
                messages = [
                    request_change(t, drivers[n % 2], name, f"value-{n}", command="add")
                    for n, name in enumerate(names)
                ]
                views = [open_approval(t.slack, drivers[n % 2], m) for n, m in enumerate(messages)]
                barrier = threading.Barrier(len(views))

                def decide(n: int) -> None:
                    barrier.wait()
                    drivers[n % 2].view_submission(APPROVER, views[n], {ids.BLOCK_COMMENT: None})

                threads = [threading.Thread(target=decide, args=(n,)) for n in range(10)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(30)
                rows = [wait_row(store, request_id_of(m), _settled, timeout=90) for m in messages]
                if [r.state for r in rows] != [State.APPLIED] * 10:  # both bots' story, shown
                    for replica in (a, b):  # by pytest with the failure
                        print(replica.output())
                assert [r.state for r in rows] == [State.APPLIED] * 10, [
                    r.failure_reason for r in rows
                ]
            assert t.calls("POST", "/deploy") <= 3 and t.calls("PATCH") <= 3
            assert t.auth0.actions.deployed_secrets(t.action_id) == {
                **OTHERS,
                **{name: f"value-{n}" for n, name in enumerate(names)},
            }
        finally:
            store.close()
