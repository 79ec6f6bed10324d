"""Two ``run`` processes sharing one PostgreSQL behave as one bot."""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.db.encryption import generate_key
from bot.slack import ids
from standins.auth0 import Auth0Sandbox
from standins.slack import Ack, SlackDriver, SlackStandIn
from tests.harness.process import (
    APPROVALS,
    APPROVER,
    BOT_TOKEN,
    ORIGIN,
    REQUESTER,
    SIGNING_SECRET,
    add_people,
    bot_env,
    confirmations,
    free_port,
    open_approval,
    pick_hook,
    running_many,
    secret_posts,
    stop_all,
    submit_request,
)


@pytest.fixture
def shared_database() -> Iterator[str]:
    """A PostgreSQL database of its own on TEST_DATABASE_URL's server, dropped afterwards."""
    pg_url = os.environ.get("TEST_DATABASE_URL")
    if not pg_url:
        pytest.skip("TEST_DATABASE_URL is not set: replica tests need PostgreSQL (CI sets it)")
    name = f"hsb_replicas_{secrets.token_hex(4)}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_duplicate_approval_on_another_replica_applies_once(
    shared_database: str, tmp_path: Path
) -> None:
    """Approval submitted to replica A and, at once, to replica B: one Auth0 POST, one message."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        hook_id = auth0.add_hook("Client Credentials Exchange")
        # Replicas share the database and the encryption key; each has its own port.
        env = bot_env(slack, auth0, shared_database, HOOK_SECRET_ENCRYPTION_KEY=generate_key())
        env_b = {**env, "PORT": str(free_port())}
        with running_many([(env, tmp_path / "a"), (env_b, tmp_path / "b")]) as replicas:
            replica_a, replica_b = replicas
            driver_a = SlackDriver(slack, replica_a.events_url, SIGNING_SECRET)
            driver_b = SlackDriver(slack, replica_b.events_url, SIGNING_SECRET)
            message = submit_request(slack, driver_a, hook_id, name="SHARED_KEY")
            view = open_approval(slack, driver_a, message)
            acks: dict[str, Ack] = {}
            barrier = threading.Barrier(2)

            def submit(label: str, driver: SlackDriver) -> None:
                barrier.wait()
                acks[label] = driver.view_submission(APPROVER, view, {ids.BLOCK_COMMENT: None})

            threads = [
                threading.Thread(target=submit, args=("a", driver_a)),
                threading.Thread(target=submit, args=("b", driver_b)),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(15)
            assert {label: ack.status for label, ack in acks.items()} == {"a": 200, "b": 200}
            # One replica decided; the other found it already decided and said so in the modal.
            answers = sorted(ack.payload().get("response_action", "") for ack in acks.values())
            assert answers == ["", "update"]
            slack.wait_for_message(ORIGIN, lambda m: "SHARED_KEY" in m.get("text", ""))
            driver_a.close()
            driver_b.close()  # no idle keep-alive connections left to linger on at shutdown
            assert stop_all(replica_a, replica_b) == [0, 0]
        assert [p.status for p in secret_posts(auth0)] == [201]
        assert len(confirmations(slack, "SHARED_KEY")) == 1
        decided = [
            r["event"]
            for r in replica_a.audit() + replica_b.audit()
            if r["event"].startswith(("secret.", "request.approved", "request.failed"))
        ]
        assert sorted(decided) == ["request.approved", "secret.added"]


def test_one_secret_submitted_to_two_replicas_at_once_opens_one_request(
    shared_database: str, tmp_path: Path
) -> None:
    """Two forms for one secret, submitted to replica A and, at once, to replica B: the
    database keeps one request, posted for approval once; the other form stays open, naming
    the request that holds the secret, and nothing of it is stored or posted."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        hook_id = auth0.add_hook("Client Credentials Exchange")
        env = bot_env(slack, auth0, shared_database, HOOK_SECRET_ENCRYPTION_KEY=generate_key())
        env_b = {**env, "PORT": str(free_port())}
        with running_many([(env, tmp_path / "a"), (env_b, tmp_path / "b")]) as replicas:
            drivers = [SlackDriver(slack, r.events_url, SIGNING_SECRET) for r in replicas]
            forms: list[tuple[SlackDriver, dict[str, Any]]] = []
            for driver in drivers:
                shown = forms[-1][1] if forms else None
                assert driver.slash_command(REQUESTER, "add", channel_id=ORIGIN).status == 200
                view = slack.wait_for_view(REQUESTER, callback_id=ids.CALLBACK_ADD, after=shown)
                values = {
                    ids.BLOCK_HOOK: pick_hook(driver, view, hook_id),
                    ids.BLOCK_SECRET_NAME: "RACED_KEY",
                    ids.BLOCK_SECRET_VALUE: "raced-value-0123",
                    ids.BLOCK_REASON: "vendor rotated the key",
                }
                forms.append((driver, {"view": view, "values": values}))
            acks: list[Ack] = []
            barrier = threading.Barrier(2)

            def submit(driver: SlackDriver, form: dict[str, Any]) -> None:
                barrier.wait()
                acks.append(driver.view_submission(REQUESTER, form["view"], form["values"]))

            threads = [threading.Thread(target=submit, args=form) for form in forms]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(15)
            assert [ack.status for ack in acks] == [200, 200]
            kept = [ack for ack in acks if not ack.body]
            refused = [ack.payload() for ack in acks if ack.body]
            assert len(kept) == 1 and len(refused) == 1
            assert refused[0]["response_action"] == "errors"
            message = slack.wait_for_message(APPROVALS, lambda m: "RACED_KEY" in m.get("text", ""))
            for driver in drivers:
                driver.close()
            assert stop_all(*replicas) == [0, 0]
        trail = replicas[0].audit() + replicas[1].audit()
        [submitted] = [r for r in trail if r["event"] == "request.submitted"]
        assert submitted["request_id"] in message["text"] or any(
            submitted["request_id"] in json.dumps(b) for b in message.get("blocks", [])
        )
        error = refused[0]["errors"][ids.BLOCK_SECRET_NAME]
        assert submitted["request_id"] in error
        assert [r["outcome"] for r in trail if r["event"] == "request.refused"] == ["request_open"]
        assert len(slack.messages(APPROVALS)) == 1
