"""Database outages on a real ``hook-secret-bot run``: a SQLite file that vanishes and comes
back, a PostgreSQL server that refuses connections; /healthz and what people are told."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url

from bot.db import audit
from bot.db.audit import AuditEvent
from bot.db.store import Store
from bot.slack import ids
from bot.slack.outage import NOT_RECORDED, answer, is_outage
from standins.auth0 import Auth0Sandbox
from standins.slack import SlackDriver, SlackStandIn
from tests.conftest import PG_URL, _schema_sql, private_schema_url
from tests.harness.inprocess import running_bot
from tests.harness.process import (
    APPROVALS,
    APPROVER,
    BOT_TOKEN,
    ORIGIN,
    REQUESTER,
    SIGNING_SECRET,
    BotProcess,
    add_people,
    bot_env,
    pick_hook,
    running,
    submit_request,
)
from tests.waiting import seconds_until, wait_until


def _health(bot: BotProcess) -> int:
    return httpx.get(f"{bot.url}/healthz", timeout=10).status_code


def _wait_health(bot: BotProcess, status: int, timeout: float = 10.0) -> float:
    """Seconds until /healthz answered ``status``."""
    return seconds_until(lambda: _health(bot) == status, timeout, what=f"/healthz {status}")


def _form(slack: SlackStandIn, driver: SlackDriver) -> dict[str, Any]:
    mark = slack.mark()
    ack = driver.slash_command(REQUESTER, "add", channel_id=ORIGIN)
    assert ack.status == 200, ack.text
    slack.wait_for("views.open", after=mark)
    return slack.wait_for_view(REQUESTER, callback_id=ids.CALLBACK_ADD)


def _submit_during_outage(slack: SlackStandIn, driver: SlackDriver, hook_id: str) -> None:
    """A filled request form submitted now is answered "nothing was recorded" in the modal."""
    view = _form(slack, driver)
    values = {
        ids.BLOCK_HOOK: pick_hook(driver, view, hook_id),
        ids.BLOCK_SECRET_NAME: "OUTAGE_KEY",
        ids.BLOCK_SECRET_VALUE: "s3cr3t-during-outage",
        ids.BLOCK_REASON: "during the outage",
    }
    ack = driver.view_submission(REQUESTER, view, values)
    assert ack.status == 200 and not ack.problems, (ack.text, ack.problems)
    assert ack.json()["response_action"] == "errors"
    assert list(ack.json()["errors"].values()) == [NOT_RECORDED]


def _click_during_outage(slack: SlackStandIn, driver: SlackDriver, message: dict[str, Any]) -> None:
    """An approver's click on Approve now is told "nothing was recorded", ephemerally."""
    ack = driver.block_action(APPROVER, ids.ACTION_APPROVE, message=message, channel_id=APPROVALS)
    assert ack.status == 200
    told = slack.wait_for_response(APPROVER, lambda r: NOT_RECORDED in r.text)
    assert told.response_type == "ephemeral" and not told.replace_original


def _approve(slack: SlackStandIn, driver: SlackDriver, message: dict[str, Any]) -> None:
    mark = slack.mark()
    ack = driver.block_action(APPROVER, ids.ACTION_APPROVE, message=message, channel_id=APPROVALS)
    assert ack.status == 200
    slack.wait_for("views.open", after=mark)
    view = slack.wait_for_view(APPROVER, callback_id=ids.CALLBACK_APPROVE)
    done = driver.view_submission(APPROVER, view, {ids.BLOCK_COMMENT: "back"})
    assert (done.status, done.body) == (200, b"")


def _outage_story(
    bot: BotProcess,
    slack: SlackStandIn,
    auth0: Auth0Sandbox,
    hook_id: str,
    go_down: Callable[[], None],
    come_back: Callable[[], None],
) -> None:
    """A request waits for approval; the database goes; people are told; it comes back."""
    with SlackDriver(slack, bot.events_url, SIGNING_SECRET) as driver:
        message = submit_request(slack, driver, hook_id, name="BEFORE_KEY")
        go_down()
        assert _wait_health(bot, 503) < 3.0
        _click_during_outage(slack, driver, message)
        _submit_during_outage(slack, driver, hook_id)
        assert _health(bot) == 503
        come_back()
        _wait_health(bot, 200)
        _approve(slack, driver, message)
        submit_request(slack, driver, hook_id, name="AFTER_KEY")
    wait_until(lambda: "BEFORE_KEY" in auth0.secrets(hook_id), 10, what="BEFORE_KEY applied")
    assert auth0.secrets(hook_id)["BEFORE_KEY"] == "s3cr3t-value-0123"
    names = {r.get("secret_name") for r in bot.audit()}
    assert "OUTAGE_KEY" not in names and {"BEFORE_KEY", "AFTER_KEY"} <= names
    assert "s3cr3t-during-outage" not in bot.output()


def test_a_sqlite_file_that_vanishes_and_returns_is_an_outage_not_a_new_trail(
    tmp_path: Path,
) -> None:
    """While bot.db is renamed away /healthz is 503, no new file appears, a click and a
    submission are told nothing was recorded; once it is back everything works on it."""
    data = tmp_path / "data"
    data.mkdir()  # `run` creates the file, never a missing directory (the same as `check`)
    database = data / "bot.db"
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        hook_id = auth0.add_hook("Client Credentials Exchange")
        env = bot_env(slack, auth0, f"sqlite:///{database}")
        with running(env, tmp_path / "run") as bot:

            def go_down() -> None:
                database.rename(data / "moved.db")

            def come_back() -> None:
                assert not database.exists(), "the bot created a new, empty database"
                (data / "moved.db").rename(database)

            _outage_story(bot, slack, auth0, hook_id, go_down, come_back)
            assert bot.stop() == 0
    store = Store(f"sqlite:///{database}")
    assert store.open_request_for(hook_id, "AFTER_KEY") is not None
    store.close()


def test_a_missing_sqlite_file_is_never_created_by_opening_the_store(tmp_path: Path) -> None:
    """Only migrating (``run`` on start) creates the file; opening, pinging, reading don't."""
    database = tmp_path / "nowhere" / "bot.db"
    store = Store(f"sqlite:///{database}")
    assert store.ping() is False and store.writable() is False
    with pytest.raises(Exception, match="unable to open"):
        store.get("hsr_0")
    assert not database.exists() and not database.parent.exists()
    store.migrate()
    assert database.exists() and store.writable() is True
    store.close()


def test_a_replaced_sqlite_file_is_used_not_the_old_one(tmp_path: Path) -> None:
    """Pooled connections to a file that was replaced are dropped for the file now there."""
    database = tmp_path / "bot.db"
    store = Store(f"sqlite:///{database}")
    store.migrate()
    assert store.writable()
    database.rename(tmp_path / "old.db")
    fresh = Store(f"sqlite:///{database}")
    fresh.migrate()
    fresh.close()
    with store.session() as session:
        file = session.connection().exec_driver_sql("PRAGMA database_list").fetchall()[0][2]
    assert Path(file) == database
    assert store.writable()
    store.close()


def test_writers_sharing_a_transaction_when_the_file_vanishes_are_told_and_store_nothing(
    tmp_path: Path,
) -> None:
    """A group commit's transaction takes in writers after its connection was checked: the
    file renamed away meanwhile fails the commit for every one of them as an outage, and
    neither file (the old one renamed back) holds their records."""
    database = tmp_path / "bot.db"
    store = Store(f"sqlite:///{database}")
    store.migrate()
    inside, leave = threading.Event(), threading.Event()
    errors: dict[str, BaseException] = {}

    def write(who: str, hold: bool) -> None:
        try:
            with store.transaction() as tx:
                tx.audit(AuditEvent("request.denied", actor=who))
                if hold:
                    inside.set()
                    leave.wait(10)
        except Exception as error:  # the test looks at what each writer got
            errors[who] = error

    first = threading.Thread(target=write, args=("U_FIRST", True))
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=write, args=("U_SECOND", False))
    second.start()
    wait_until(store.writers_waiting, 10, every=0.005, what="the second writer queued to join")
    assert store.writers_waiting() == 1
    database.rename(tmp_path / "moved.db")
    leave.set()
    first.join(10)
    second.join(10)
    assert not first.is_alive() and not second.is_alive()
    assert set(errors) == {"U_FIRST", "U_SECOND"}
    assert all(is_outage(error) for error in errors.values()), errors
    (tmp_path / "moved.db").rename(database)
    # The file is back: the same store writes to it at once (the refused commit's connection
    # was dropped, not pooled inside its transaction), and only that write is there.
    store.audit(AuditEvent("request.denied", actor="U_AFTER"))
    with store.session() as session:
        assert [r["actor"] for r in audit.export(session)] == ["U_AFTER"]
    store.close()


# -- PostgreSQL behind a proxy the test can cut ------------------------------------------------


class Proxy:
    """A loopback TCP proxy in front of PostgreSQL: ``stop`` drops every connection and
    refuses new ones (a server gone), ``start`` serves again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            # Closing alone leaves a thread blocked in accept() accepting on Linux.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema of its own on the test PostgreSQL."""
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set: the PostgreSQL outage test is skipped")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _schema_sql(PG_URL, f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        _schema_sql(PG_URL, f"DROP SCHEMA {schema} CASCADE")


def test_a_postgresql_outage_is_told_plainly_and_healthz_follows_it(
    tmp_path: Path, pg_schema: str
) -> None:
    """PostgreSQL refusing connections: /healthz 503, Approve and submit told nothing was
    recorded; once it answers again the waiting request is approved and applied."""
    assert PG_URL is not None
    target = make_url(PG_URL)
    proxy = Proxy((target.host or "127.0.0.1", target.port or 5432))
    proxy.start()
    through_proxy = target.set(host="127.0.0.1", port=proxy.port)
    url = private_schema_url(through_proxy.render_as_string(hide_password=False), pg_schema)
    try:
        with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
            add_people(slack)
            hook_id = auth0.add_hook("Client Credentials Exchange")
            with running(bot_env(slack, auth0, url), tmp_path / "run") as bot:
                _outage_story(bot, slack, auth0, hook_id, proxy.stop, proxy.start)
                assert bot.stop() == 0
    finally:
        proxy.stop()


# -- the outage answers alone ------------------------------------------------------------------


def test_only_database_failures_count_as_an_outage() -> None:
    """A driver error (even wrapped by our code) is an outage; a bug is not."""
    store = Store(f"sqlite:///{Path('/nonexistent') / 'bot.db'}")
    with pytest.raises(Exception, match="unable to open") as failed:
        store.get("hsr_0")
    wrapped = RuntimeError("while submitting")
    wrapped.__cause__ = failed.value
    assert is_outage(failed.value) and is_outage(wrapped)
    assert not is_outage(KeyError("type"))


def test_a_submission_is_answered_under_its_first_field_and_a_command_in_text() -> None:
    """Modal errors go under the first input block; a view without inputs is replaced by a
    notice; a command's ack says it in text."""
    view = {
        "blocks": [
            {"type": "section", "block_id": "intro"},
            {"type": "input", "block_id": ids.BLOCK_COMMENT},
        ]
    }
    answered = answer({"type": "view_submission", "view": view})
    assert json.loads(answered.body) == {
        "response_action": "errors",
        "errors": {ids.BLOCK_COMMENT: NOT_RECORDED},
    }
    notice = json.loads(answer({"type": "view_submission", "view": {"blocks": []}}).body)
    assert notice["response_action"] == "update"
    assert NOT_RECORDED in json.dumps(notice["view"])
    assert NOT_RECORDED in answer({"command": "/hook-secret", "text": "add"}).body


def test_a_database_lost_mid_request_is_answered_like_an_outage(sqlite_url: str) -> None:
    """The file vanishing right after the bot last saw it healthy: the submission that
    fails inside the listener is still told nothing was recorded, and nothing is stored."""
    with running_bot(sqlite_url) as bot:
        assert bot.submit(bot.open_form(), name="FIRST_KEY").status == 200
        view = bot.open_form()
        database = Path(bot.store.url.removeprefix("sqlite:///"))
        database.rename(database.with_suffix(".moved"))
        ack = bot.submit(view, name="LOST_KEY")
        assert ack.status == 200 and not ack.problems
        assert list(ack.json()["errors"].values()) == [NOT_RECORDED]
        assert not database.exists()
        database.with_suffix(".moved").rename(database)
        bot.drain()
        assert "LOST_KEY" not in {r.get("secret_name") for r in bot.audit()}


def test_a_click_whose_background_work_finds_the_database_gone_is_told(
    sqlite_url: str,
) -> None:
    """The file vanishing right after the HTTP layer last saw the database healthy: the click
    passes that check and is acked, its background work then fails on the database, and the
    approver is told ephemerally that nothing was recorded instead of hearing nothing."""
    with running_bot(sqlite_url) as bot:
        message = bot.request_approval(name="CLICK_KEY")
        database = Path(bot.store.url.removeprefix("sqlite:///"))
        assert bot.submit(bot.open_form(), name="WARM_KEY").status == 200  # health seen ok
        database.rename(database.with_suffix(".moved"))
        mark = bot.slack.mark()
        assert bot.click(message).status == 200
        told = bot.slack.wait_for_response(APPROVER, lambda r: NOT_RECORDED in r.text)
        assert told.response_type == "ephemeral" and not told.replace_original
        assert not [c for c in bot.slack.calls[mark:] if c.method == "views.open"]
        database.with_suffix(".moved").rename(database)
        bot.drain()
        assert bot.decide(message).status == 200  # back: the same click now works
