"""Sealed decisions end to end: a row the bot did not write is never applied, over real HTTP."""

from __future__ import annotations

import io
import secrets
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from pydantic import SecretStr
from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from bot import db
from bot.approvals.recovery import UNCLAIMED_GRACE
from bot.approvals.seals import BROKEN, UNSEALED
from bot.approvals.states import Kind, State
from bot.db.audit import AuditSink
from bot.db.encryption import generate_key
from bot.db.models import SecretRequest
from bot.db.store import Store
from bot.targets import TargetKind
from tests.harness.inprocess import Bot, request_id_of, running_bot, serve, workspace
from tests.harness.people import (
    APPROVALS,
    APPROVER,
    APPROVER2,
    GROUPIE,
    ORIGIN,
    REQUESTER,
    secret_posts,
)


def _approved_remove(team_id: str, hook_id: str, now: datetime) -> dict[str, Any]:
    """An approved request to remove the hook's secret, as if an approver had decided it a
    minute ago and its apply died (the row's attributes, no seal)."""
    return {
        "id": "hsr_" + secrets.token_hex(8),  # as the bot names them
        "kind": Kind.REMOVE,
        "target_kind": TargetKind.HOOK,
        "tenant": "default",
        "state": State.APPROVED,
        "team_id": team_id,
        "requester": REQUESTER,
        "origin_channel": ORIGIN,
        "target_id": hook_id,
        "target_name": "Client Credentials Exchange",
        "secret_name": "EXISTING",
        "reason": "forged",
        "required_approvals": 1,
        "decided_by": APPROVER,
        "decided_at": now - UNCLAIMED_GRACE - timedelta(minutes=1),
        "created_at": now - timedelta(minutes=2),
        "expires_at": now + timedelta(days=1),
    }


def _forge_approved_remove(bot: Bot, seal: str | None) -> str:
    """What someone with write access to the database alone can do: insert an approved request
    to remove the hook's secret (no encryption key needed)."""
    row = _approved_remove(bot.slack.team_id, bot.hook_id, bot.clock())
    with Session(bot.store.engine) as session, session.begin():
        session.execute(insert(SecretRequest).values({**row, "seal": seal}))
    return str(row["id"])


def _rewrite(bot: Bot, request_id: str, **values: Any) -> None:
    """Change a request's row straight in the database."""
    with Session(bot.store.engine) as session, session.begin():
        session.execute(update(SecretRequest).where(SecretRequest.id == request_id).values(values))


def sqlite_file(url: str) -> Path | None:
    """The file of a sqlite:/// URL (None for PostgreSQL)."""
    return Path(url.split("///", 1)[1]) if url.startswith("sqlite") else None


def _stranded_since(bot: Bot) -> datetime:
    """A decision time that leaves an approval nobody claimed stranded, by any clock (as a
    process that died between deciding and applying would leave it)."""
    return bot.clock() - UNCLAIMED_GRACE - timedelta(minutes=1)


def _assert_refused(bot: Bot, request_id: str, outcome: str, actor: str) -> dict[str, Any]:
    """The request failed with ``outcome``, value erased, audited, and both people told."""
    bot.drain()
    row = bot.store.get(request_id)
    assert row is not None and row.state == State.FAILED
    assert row.failure_reason == outcome and row.value_ciphertext is None
    failed = [r for r in bot.audit() if r["request_id"] == request_id][-1]
    assert failed["event"] == "request.failed" and failed["outcome"] == outcome
    assert failed["actor"] == actor
    bot.slack.wait_for_ephemeral(row.requester, lambda m: request_id in m["text"])
    if actor != row.requester:
        assert any(request_id in m["text"] for m in bot.slack.messages(actor))
    return failed


@pytest.mark.parametrize("seal", [None, "v1:" + "0" * 64], ids=["unsealed", "bad_seal"])
def test_forged_approved_remove_is_refused_without_any_auth0_call(
    db_url: str, seal: str | None
) -> None:
    """An approved `remove` row inserted straight into the database (no encryption key needed)
    reaches the sweep that finishes stranded applies, and is refused: no Auth0 call at all,
    the secret stays, `request.failed` with outcome `tampered` is audited."""
    with running_bot(db_url) as bot:
        request_id = _forge_approved_remove(bot, seal)
        bot.drain()
        before = len(bot.auth0.requests)
        bot.services.sweep()  # what every replica runs periodically and on start
        failed = _assert_refused(bot, request_id, "tampered", APPROVER)
        assert bot.auth0.requests[before:] == []
        assert bot.auth0.secrets(bot.hook_id) == {"EXISTING": "old"}
        assert failed["message"] == (UNSEALED if seal is None else BROKEN)
        assert "secret.removed" not in bot.events()


def test_approver_rewritten_in_the_database_is_refused(db_url: str) -> None:
    """A genuine approval whose approver is then rewritten in the database (before its apply
    ran) is refused at the apply: nothing is sent to Auth0."""
    with running_bot(db_url) as bot:
        message = bot.request_approval(value="rewritten-approver")
        request_id = request_id_of(message)
        # Decided as a process that dies before applying would leave it.
        assert bot.services.workflow.decide(request_id, APPROVER, True, None).request
        _rewrite(bot, request_id, decided_by=APPROVER2, decided_at=_stranded_since(bot))
        before = len(bot.auth0.requests)
        bot.services.sweep()
        failed = _assert_refused(bot, request_id, "tampered", APPROVER2)
        assert failed["message"] == BROKEN
        assert bot.auth0.requests[before:] == []
        assert "API_KEY" not in bot.auth0.secrets(bot.hook_id)


def test_pending_row_rewritten_in_the_database_is_refused_at_the_click(sqlite_url: str) -> None:
    """A pending request whose target secret is rewritten in the database is refused when an
    approver clicks Approve (no decision modal), before any approval can bless it."""
    with running_bot(sqlite_url) as bot:
        message = bot.request_approval(value="rewritten-name")
        request_id = request_id_of(message)
        _rewrite(bot, request_id, secret_name="EXISTING", kind=Kind.UPDATE)
        mark = bot.slack.mark()
        assert bot.click(message).status == 200
        _assert_refused(bot, request_id, "tampered", APPROVER)
        assert not [c for c in bot.slack.calls[mark:] if c.method == "views.open"]
        assert secret_posts(bot.auth0) == []
        assert bot.auth0.secrets(bot.hook_id) == {"EXISTING": "old"}
        updated = bot.slack.messages(APPROVALS)[0]
        assert not any(b.get("type") == "actions" for b in updated["blocks"])


def test_genuine_approval_applies_and_self_service_too(sqlite_url: str) -> None:
    """Seals don't get in the way of the bot's own rows: an approval applies, and so does a
    request confirmed by its requester when no approval is required."""
    with running_bot(sqlite_url) as bot:
        message = bot.request_approval(value="genuine")
        assert not bot.decide(message).body
        bot.drain()
        assert bot.auth0.secrets(bot.hook_id)["API_KEY"] == "genuine"
        assert bot.events()[-1] == "secret.added"
    with running_bot(
        sqlite_url.replace("bot.db", "self.db"), hook_secret_required_approvals=0
    ) as bot:
        ack = bot.submit(bot.open_form(), value="self-service")
        assert ack.status == 200 and not ack.body
        bot.drain()
        assert bot.auth0.secrets(bot.hook_id)["API_KEY"] == "self-service"
        assert bot.events()[-1] == "secret.added"


def test_open_request_still_applies_after_key_rotation(db_url: str) -> None:
    """A request submitted (sealed) under the old key is approved and applied after the key is
    rotated (new key first, old one kept to decrypt and verify)."""
    with workspace(db_url) as ws:
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as first:
            message = first.request_approval(value="across-rotation")
            first.drain()
        old = ws.settings.encryption_keys[0]
        rotated = ws.settings.model_copy(
            update={"hook_secret_encryption_key": SecretStr(f"{generate_key()},{old}")}
        )
        with serve(rotated, ws.slack, ws.auth0, ws.hook_id) as second:
            ack = second.decide(message)
            assert ack.status == 200 and not ack.body
            second.drain()
            assert ws.auth0.secrets(ws.hook_id)["API_KEY"] == "across-rotation"
            assert second.events() == ["approval.added", "request.approved", "secret.added"]


def test_requester_removed_from_their_group_is_refused_at_approval(sqlite_url: str) -> None:
    """A requester listed through a user group who leaves it after submitting: the approval
    (the modal's submission asks Slack again) fails the request, `requester_not_allowed`,
    value erased, requester and approver told, nothing sent to Auth0."""
    with running_bot(sqlite_url) as bot:
        ack = bot.submit(bot.open_form(GROUPIE), user=GROUPIE, value="from-a-leaver")
        assert ack.status == 200 and not ack.body
        message = bot.slack.wait_for_message(
            APPROVALS, lambda m: any(b.get("type") == "actions" for b in m.get("blocks", []))
        )
        bot.drain()
        bot.slack.set_group_members("S0REQS", [])
        ack = bot.decide(message)
        assert ack.status == 200 and not ack.body
        _assert_refused(bot, request_id_of(message), "requester_not_allowed", APPROVER)
        assert secret_posts(bot.auth0) == []
        assert "request.approved" not in bot.events()


def test_requester_dropped_from_the_settings_expires_the_request_at_start(
    sqlite_url: str,
) -> None:
    """A restart with HOOK_SECRET_REQUESTERS no longer naming the requester changes the rule
    that decided their request (CONTRACT §6): it expires at start (``policy_changed``), its
    value erased and the requester told; an Approve click then opens no modal."""
    with workspace(sqlite_url) as ws:
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as first:
            message = first.request_approval(value="from-a-leaver")
        narrowed = ws.settings.model_copy(update={"hook_secret_requesters": ["S0REQS"]})
        with serve(narrowed, ws.slack, ws.auth0, ws.hook_id) as second:
            second.drain()
            row = second.store.get(request_id_of(message))
            assert row is not None and row.state == State.EXPIRED
            assert row.value_ciphertext is None
            expired = [r for r in second.audit() if r["event"] == "request.expired"]
            assert [r["outcome"] for r in expired] == ["policy_changed"]
            ws.slack.wait_for_ephemeral(REQUESTER, lambda m: "policy's rule" in m["text"])
            mark = ws.slack.mark()
            assert second.click(message).status == 200
            second.drain()
            assert not [c for c in ws.slack.calls[mark:] if c.method == "views.open"]
            assert secret_posts(ws.auth0) == []


def test_requester_dropped_before_the_apply_is_refused_at_the_apply(sqlite_url: str) -> None:
    """An approved request whose apply had not run when the requester was dropped (a crash,
    then a restart with new settings) is refused by the apply that finishes it."""
    with workspace(sqlite_url) as ws:
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as first:
            message = first.request_approval(value="from-a-leaver")
            request_id = request_id_of(message)
            assert first.services.workflow.decide(request_id, APPROVER, True, None).request
        narrowed = ws.settings.model_copy(update={"hook_secret_requesters": ["S0REQS"]})
        with serve(narrowed, ws.slack, ws.auth0, ws.hook_id) as second:
            _rewrite(second, request_id, decided_at=_stranded_since(second))
            second.services.sweep()
            _assert_refused(second, request_id, "requester_not_allowed", APPROVER)
            assert secret_posts(ws.auth0) == []


def test_an_open_request_from_before_seals_is_refused_after_the_upgrade(db_url: str) -> None:
    """An approved request recorded by the previous version (schema 0006, no seal) survives the
    upgrade to 0008_seals, and is refused when its apply runs, saying why: no Auth0 call."""
    with workspace(db_url) as ws:
        older = Store(ws.settings.database_url, AuditSink(io.StringIO()))
        path = sqlite_file(ws.settings.database_url)
        if path is not None:
            sqlite3.connect(path).close()
        config = Config()
        config.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
        with older.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0006")
        row = _approved_remove(ws.slack.team_id, ws.hook_id, datetime.now(UTC))
        with Session(older.engine) as session, session.begin():
            session.execute(insert(SecretRequest).values(row))  # the columns 0006 has
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id, store=older) as bot:
            before = len(ws.auth0.requests)
            bot.services.sweep()
            failed = _assert_refused(bot, str(row["id"]), "tampered", APPROVER)
            assert failed["message"] == UNSEALED and "submit it again" in UNSEALED
            assert ws.auth0.requests[before:] == []
        older.close()


def test_a_finished_removal_replayed_from_a_saved_row_is_refused(sqlite_url: str) -> None:
    """Someone who can read and write the database saves an approved `remove` row (seal
    included) before its apply, lets it apply, and writes the saved row back once the secret
    was added again: every sealed fact matches, but the request already finished (its outcome
    is in the audit trail), so the replay is refused and nothing is removed."""
    with workspace(sqlite_url) as ws, serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as bot:
        view = bot.open_form(text="remove")
        ack = bot.submit(view, name="EXISTING", value=None)
        assert ack.status == 200 and not ack.body, ack.body
        message = bot.slack.wait_for_message(
            APPROVALS, lambda m: "EXISTING" in m["text"] and "blocks" in m
        )
        bot.drain()
        request_id = request_id_of(message)
        assert bot.services.workflow.decide(request_id, APPROVER, True, None).request
        with Session(bot.store.engine) as session:
            row = session.get(SecretRequest, request_id)
            assert row is not None
            saved = {
                c.key: getattr(row, c.key)
                for c in SecretRequest.__mapper__.column_attrs
                if c.key != "id"
            }
        _rewrite(bot, request_id, decided_at=_stranded_since(bot))
        bot.services.sweep()
        bot.drain()
        assert "EXISTING" not in ws.auth0.secrets(ws.hook_id)
        ws.auth0.set_secrets(ws.hook_id, {"EXISTING": "added-again"})
        before = len(ws.auth0.requests)
        _rewrite(bot, request_id, **(saved | {"decided_at": _stranded_since(bot)}))
        bot.services.sweep()
        bot.drain()
        assert ws.auth0.secrets(ws.hook_id) == {"EXISTING": "added-again"}
        assert not [r for r in ws.auth0.requests[before:] if r.method == "DELETE"]
        row_now = bot.store.get(request_id)
        assert row_now is not None and row_now.state == State.FAILED
        assert row_now.failure_reason == "tampered"
