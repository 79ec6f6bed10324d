"""The no-leak guarantee: canary values and credentials surface only where Auth0 needs them."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import pytest
import structlog
from sqlalchemy import MetaData, create_engine, select

from bot.approvals.recovery import SETTLE_WITHIN
from bot.approvals.results import Result
from bot.db.encryption import generate_key
from bot.logs import configure_logging
from bot.slack import ids
from bot.slack.blocks.pickers import hook_option
from bot.targets import TargetKind
from standins.auth0 import DEFAULT_SCOPES, FULL_SCOPES, Auth0Sandbox
from standins.slack import Ack, SlackDriver, SlackStandIn
from tests.harness.inprocess import (
    APPROVALS,
    APPROVER,
    BOT_TOKEN,
    ORIGIN,
    OUTSIDER,
    REQUESTER,
    SIGNING_SECRET,
    Bot,
    running_bot,
)
from tests.harness.people import CLIENT_SECRET

REPO = Path(__file__).resolve().parent.parent
# One random core per run: it survives URL encoding and JSON escaping unchanged, so finding it
# anywhere finds the value in any of those encodings.
CORE = f"CANARY-{secrets.token_hex(6)}"


def canary(label: str) -> str:
    """A distinctive value for one path, with characters that every encoding changes."""
    return f'{CORE}-{label}-v@lue "q" &amp; é+/=%'


@dataclass
class Secret:
    """A string that must not surface, and the forms it could surface in."""

    label: str
    value: str
    needles: list[bytes] = field(init=False)

    def __post_init__(self) -> None:
        forms = {
            self.value,
            json.dumps(self.value)[1:-1],
            json.dumps(self.value, ensure_ascii=False)[1:-1],
            quote(self.value, safe=""),
            quote_plus(self.value, safe=""),
        }
        raw = self.value.encode()
        needles = {f.encode() for f in forms} | {raw.hex().encode()}
        needles |= {base64.b64encode(raw), base64.urlsafe_b64encode(raw)}
        if self.label == "canary":
            needles.add(CORE.encode())
        self.needles = sorted(needles)

    def found_in(self, blob: bytes) -> bool:
        """Whether any form of the secret occurs in ``blob``."""
        return self.context(blob) is not None

    def context(self, blob: bytes) -> str | None:
        """The text around the first form of the secret found in ``blob``, if any."""
        for needle in self.needles:
            at = blob.find(needle)
            if at >= 0:
                return blob[max(0, at - 160) : at + len(needle) + 20].decode(errors="replace")
        return None


def _blob(part: Any) -> bytes:
    if isinstance(part, bytes):
        return part
    if isinstance(part, str):
        return part.encode()
    return json.dumps(part, default=repr, ensure_ascii=False).encode()


def _hits(secrets_: Iterable[Secret], haystacks: Iterable[tuple[str, Any]]) -> list[str]:
    hits = []
    for where, part in haystacks:
        blob = _blob(part)
        for secret in secrets_:
            context = secret.context(blob)
            if context is not None:
                hits.append(f"{secret.label} in {where}: …{context}")
    return hits


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line of the process (Bolt, slack_sdk, httpx, SQLAlchemy, the bot) at DEBUG."""
    root, sql = logging.getLogger(), logging.getLogger("sqlalchemy")
    handlers, level, sql_level = root.handlers[:], root.level, sql.level
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream)
    # SQLAlchemy sets its own loggers to WARNING; at DEBUG they print statements, parameters, rows.
    sql.setLevel(logging.DEBUG)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
    sql.setLevel(sql_level)
    structlog.contextvars.clear_contextvars()


@dataclass
class Recorder:
    """What the bot answered Slack, and the errors its applies ended with."""

    acks: list[Ack] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def attach(self, bot: Bot) -> None:
        """Wrap the driver's raw POST and the workflow's apply to record their results."""
        post_raw, apply = bot.driver.post_raw, bot.services.workflow.apply

        def recording_post(body: bytes, headers: Any) -> Ack:
            ack = post_raw(body, headers)
            self.acks.append(ack)
            return ack

        def recording_apply(request_id: str, *, reconciling: bool = False) -> Result:
            result = apply(request_id, reconciling=reconciling)
            if result.error is not None:
                self.errors.append(result.error)
            return result

        # Wrapped on these instances only, to record what passes; the originals still run.
        bot.driver.post_raw = recording_post  # type: ignore[method-assign]  # see above
        bot.services.workflow.apply = recording_apply  # type: ignore[method-assign]  # see above


def _has_buttons(message: dict[str, Any]) -> bool:
    return any(b.get("type") == "actions" for b in message.get("blocks", []))


def _ask(
    bot: Bot, name: str, value: str | None, *, text: str = "add", hook: str | None = None
) -> dict[str, Any]:
    """Submit a request through the modal and return its approval message."""
    view = bot.open_form(text=text)
    ack = bot.submit(view, name=name, value=value, hook=bot.hook_option(hook) if hook else None)
    assert ack.status == 200 and not ack.body, ack.body
    return bot.slack.wait_for_message(
        APPROVALS, lambda m: f"`{name}`" in m.get("text", "") and _has_buttons(m)
    )


def _approve(bot: Bot, message: dict[str, Any]) -> None:
    ack = bot.decide(message)
    assert ack.status == 200 and not ack.body, ack.body
    bot.drain()


def _run_every_path(bot: Bot) -> None:
    """Drive every path of the flow, each with its own canary."""
    hook = bot.hook_id
    _approve(bot, _ask(bot, "A_OK", canary("applied")))

    ack = bot.decide(_ask(bot, "B_REJ", canary("rejected")), approve=False, comment="no")
    assert ack.status == 200
    bot.drain()

    _ask(bot, "C_EXP", canary("expired"))
    bot.clock.advance(bot.settings.hook_secret_request_ttl + 1)
    bot.services.sweep()
    bot.drain()

    message = _ask(bot, "D_CONFLICT", canary("conflict"))
    bot.auth0.set_secrets(hook, {"D_CONFLICT": "set-by-someone-else"})
    _approve(bot, message)

    message = _ask(bot, "D_CONFLICT_409", canary("conflict-409"))
    bot.auth0.fail_next(1, 409, method="POST")
    _approve(bot, message)

    full = bot.auth0.add_hook("Full Hook")
    bot.services.catalog.invalidate()
    message = _ask(bot, "E_FULL", canary("full"), hook=full)
    bot.auth0.set_secrets(full, {f"FILLER_{i}": "x" for i in range(20)})
    _approve(bot, message)

    message = _ask(bot, "F_GONE", canary("not-found"))
    bot.auth0.fail_next(1, 404, method="POST")
    _approve(bot, message)

    message = _ask(bot, "G_SCOPE", canary("scope"))
    bot.auth0.set_scopes("read:hooks")
    bot.auth0.revoke_tokens()
    _approve(bot, message)
    bot.auth0.set_scopes(*DEFAULT_SCOPES)
    bot.auth0.revoke_tokens()

    message = _ask(bot, "H_DOWN", canary("unavailable"))
    bot.auth0.fail_next(2, 503, method="POST")
    _approve(bot, message)
    # The outcome is unknown: the request stays open while the sweep reads Auth0 back; Auth0
    # still refusing the write past SETTLE_WITHIN, it is recorded as failed.
    bot.drain()
    bot.auth0.fail_next(2, 503, method="POST")
    bot.clock.advance(SETTLE_WITHIN.total_seconds() + 1)
    bot.services.sweep()
    bot.drain()

    # Rate limited: the apply waits out its budget in the background while the paths below
    # (which never POST) run; every later POST is answered 429.
    message = _ask(bot, "I_LIMITED", canary("rate-limited"))
    bot.auth0.fail_next(1000, 429, method="POST")
    assert bot.decide(message).status == 200

    _approve(bot, _ask(bot, "EXISTING", canary("rotated"), text="update"))
    _approve(bot, _ask(bot, "A_OK", None, text="remove"))
    _unauthorized_and_malformed(bot)
    ack = bot.driver.slash_command(REQUESTER, f"list {hook}", channel_id=ORIGIN)
    assert ack.status == 200
    bot.drain()


def _unauthorized_and_malformed(bot: Bot) -> None:
    """Outsiders, self-approval, values in commands, bad signatures and invalid input."""
    driver = bot.driver
    assert driver.slash_command(OUTSIDER, "add", channel_id=ORIGIN).status == 200
    ack = bot.submit(bot.open_form(), user=OUTSIDER, name="J_OUT", value=canary("outsider"))
    assert ack.json()["response_action"] == "errors"

    pending = _ask(bot, "K_PENDING", canary("pending"))
    for user in (OUTSIDER, REQUESTER):
        assert bot.click(pending, user=user).status == 200
    mark = bot.slack.mark()
    assert bot.click(pending).status == 200
    bot.slack.wait_for("views.open", after=mark)
    decision = bot.slack.wait_for_view(APPROVER, callback_id=ids.CALLBACK_APPROVE)
    for user in (OUTSIDER, REQUESTER):
        ack = driver.view_submission(user, decision, {ids.BLOCK_COMMENT: None})
        assert ack.json()["response_action"] == "errors"

    for text in (
        f"add {bot.hook_id} API_KEY={canary('command')}",
        f"update {bot.hook_id} EXISTING {canary('command-args')}",
    ):
        ack = driver.slash_command(REQUESTER, text, channel_id=ORIGIN)
        assert ack.status == 200 and ":warning:" in ack.text

    view = bot.open_form()
    ack = bot.submit(view, name="1 bad name", value=canary("invalid"))
    assert ack.json()["response_action"] == "errors"
    ack = bot.submit(view, name="L_LONG", value=canary("long") + "x" * 5000, validate=False)
    assert ack.json()["response_action"] == "errors"

    fields = driver.slash_command_fields(REQUESTER, f"add hook N={canary('forged-command')}")
    form = urlencode(fields).encode()
    forged = driver.signed_headers(form) | {"X-Slack-Signature": "v0=" + "0" * 64}
    assert driver.post_raw(form, forged).status == 401
    stale = driver.signed_headers(form, timestamp=int(time.time()) - 600)
    assert driver.post_raw(form, stale).status == 401
    submission = {
        "type": "view_submission",
        "team": {"id": bot.slack.team_id},
        "user": {"id": REQUESTER, "team_id": bot.slack.team_id},
        "view": {
            "callback_id": ids.CALLBACK_ADD,
            "state": {"values": {"secret_value": {"secret_value": {"value": canary("forged")}}}},
        },
    }
    body = urlencode({"payload": json.dumps(submission)}).encode()
    bad = driver.signed_headers(body) | {"X-Slack-Signature": "v0=" + "1" * 64}
    assert driver.post_raw(body, bad).status == 401


def _expected_events(bot: Bot) -> None:
    """Every path really ran: its audit event is there."""
    records = bot.audit()
    events = {r["event"] for r in records}
    assert {
        "request.submitted",
        "request.approved",
        "request.rejected",
        "request.expired",
        "secret.added",
        "secret.updated",
        "secret.removed",
        "request.failed",
        "request.denied",
        "request.refused",
        "approval.denied",
    } <= events
    failures = {r["outcome"] for r in records if r["event"] == "request.failed"}
    assert failures == {
        "conflict",
        "hook_full",
        "hook_not_found",
        "insufficient_scope",
        "rate_limited",
        "auth0_unavailable",
    }
    assert bot.auth0.secrets(bot.hook_id)["EXISTING"] == canary("rotated")
    assert "A_OK" not in bot.auth0.secrets(bot.hook_id)


def _captured_everything(logs: str) -> None:
    """The capture saw every library's DEBUG lines, and no path ended in an unhandled error."""
    records = [json.loads(line) for line in logs.splitlines()]
    loggers = {str(r.get("logger", "")).split(".")[0] for r in records}
    assert {"slack_bolt", "slack_sdk", "httpx", "httpcore", "sqlalchemy", "bot"} <= loggers
    assert "debug" in {r["level"] for r in records}
    assert [r for r in records if r["level"] in ("error", "critical")] == []


def _slack_haystacks(bot: Bot) -> Iterator[tuple[str, Any]]:
    """Everything the bot sent Slack: Web API calls (but their token header), response URLs."""
    yield from _slack_haystacks_of(bot.slack)


def _slack_haystacks_of(slack: SlackStandIn) -> Iterator[tuple[str, Any]]:
    for n, call in enumerate(slack.calls):
        headers = {k: v for k, v in call.headers.items() if k.lower() != "authorization"}
        yield f"slack call {n} {call.method}", [call.args, headers, call.response]
        yield f"slack call {n} {call.method} body", call.body
    for n, post in enumerate(slack.responses(include_rejected=True)):
        yield f"response_url post {n}", post.payload
    yield "slack ephemerals", slack.ephemerals()
    yield "slack views", slack.open_views
    for channel in (ORIGIN, APPROVALS, REQUESTER, APPROVER, OUTSIDER):
        yield f"slack messages in {channel}", slack.messages(channel)


def _auth0_leaks(bot: Bot, secrets_: list[Secret]) -> list[str]:
    """Secrets the Auth0 sandbox saw anywhere but where they belong."""
    leaks = []
    for n, request in enumerate(bot.auth0.requests):
        writes_secret = request.method in ("POST", "PATCH") and request.path.endswith("/secrets")
        is_token_call = request.path == "/oauth/token"
        headers = dict(request.headers)
        authorization = headers.pop("authorization", "")
        parts: list[tuple[str, Any, set[str]]] = [
            ("path", request.path + "?" + request.query, set()),
            ("headers", headers, set()),
            ("authorization", authorization, {"access token"}),
            ("body", request.body, {"canary"} if writes_secret else set()),
            ("response", [request.response_headers], set()),
            ("response body", request.response_body, {"access token"} if is_token_call else set()),
        ]
        if is_token_call:
            parts[3] = ("body", request.body, {"client secret"})
        for part, blob, allowed in parts:
            for secret in secrets_:
                if secret.label not in allowed and secret.found_in(_blob(blob)):
                    leaks.append(
                        f"{secret.label} in auth0 request {n} {request.method} "
                        f"{request.path} {part}"
                    )
    return leaks


def _in_json(value: str, body: bytes) -> bool:
    return json.dumps(value)[1:-1].encode() in body


def _database_haystacks(db_url: str, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """Every row of every table; SQLite's files byte for byte, or a pg_dump of PostgreSQL."""
    engine = create_engine(db_url)
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            rows = connection.execute(select(table)).all()
            yield f"table {table.name}", repr([tuple(r) for r in rows])
    engine.dispose()
    if db_url.startswith("sqlite"):
        for path in sorted(tmp_path.glob("bot.db*")):
            yield f"file {path.name}", path.read_bytes()
        return
    dump = subprocess.run(
        ["/usr/bin/pg_dump", "--no-owner", db_url.replace("postgresql+psycopg", "postgresql")],
        capture_output=True,
        check=True,
    )
    yield "pg_dump", dump.stdout


def _cli(db_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AUTH0_", "HOOK_"))}
    env |= {"DATABASE_URL": db_url, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "audit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@dataclass
class Seen:
    """What one running bot produced, the secrets it held, and what reached Auth0."""

    secrets: list[Secret]
    haystacks: list[tuple[str, Any]]
    auth0_leaks: list[str]
    applied: list[tuple[str, int | None]]  # method and status of writes carrying a value
    errors: list[str]
    audit_lines: int


def _observe(bot: Bot, recorder: Recorder, applied_labels: tuple[str, ...]) -> Seen:
    """Everything the bot produced while running, and the secrets it held."""
    access_tokens = [
        json.loads(r.response_body)["access_token"]
        for r in bot.auth0.requests
        if r.path == "/oauth/token" and r.status == 200
    ]
    secrets_ = [
        Secret("canary", canary("applied")),
        Secret("bot token", BOT_TOKEN),
        Secret("signing secret", SIGNING_SECRET),
        Secret("client secret", CLIENT_SECRET),
        *(Secret("encryption key", k) for k in bot.settings.encryption_keys),
        *(Secret("access token", t) for t in access_tokens),
    ]
    audit_lines = bot.audit_stream.getvalue()
    return Seen(
        secrets=secrets_,
        haystacks=[
            ("audit lines", audit_lines),
            *_slack_haystacks(bot),
            *((f"ack {n}", a.body) for n, a in enumerate(recorder.acks)),
            *((f"ack {n} headers", dict(a.headers)) for n, a in enumerate(recorder.acks)),
            (
                "exceptions",
                ["".join(traceback.format_exception(e)) + repr(e.args) for e in recorder.errors],
            ),
        ],
        auth0_leaks=_auth0_leaks(bot, secrets_),
        applied=[
            (r.method, r.status)
            for r in bot.auth0.requests
            if any(_in_json(canary(label), r.body) for label in applied_labels)
        ],
        errors=[repr(e) for e in recorder.errors],
        audit_lines=len(audit_lines.splitlines()),
    )


def _run_without_approvals(bot: Bot) -> None:
    """Approvals off: the requester's submission applies at once, or fails."""
    assert not bot.submit(bot.open_form(), name="SELF_OK", value=canary("self-confirmed")).body
    bot.drain()
    bot.auth0.fail_next(1, 409, method="POST")
    assert not bot.submit(bot.open_form(), name="SELF_FAIL", value=canary("self-failed")).body
    bot.drain()
    outcomes = [(r["event"], r["outcome"]) for r in bot.audit()]
    assert ("secret.added", "applied") in outcomes and ("request.failed", "conflict") in outcomes


def test_canaries_surface_only_where_auth0_needs_them(
    db_url: str,
    tmp_path: Path,
    captured_logs: io.StringIO,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Every path runs with canaries, approvals on and off; values, tokens and keys appear
    nowhere the bot wrote, and each applied value reached Auth0 in exactly one write."""
    recorder, recorder_off = Recorder(), Recorder()
    with running_bot(db_url) as bot:
        recorder.attach(bot)
        _run_every_path(bot)
        # The next run's rule needs no approval: what is still pending expires as a start under
        # a changed rule expires it (policy_changed), told in this run's Slack.
        for request_id in bot.store.pending_ids():
            bot.services.workflow.expire_changed(request_id)
        bot.drain()
        _expected_events(bot)
        seen = _observe(bot, recorder, ("applied", "rotated"))
    with running_bot(db_url, hook_secret_required_approvals=0) as bot:
        recorder_off.attach(bot)
        _run_without_approvals(bot)
        seen_off = _observe(bot, recorder_off, ("self-confirmed",))
    assert len([s for s in seen.secrets if s.label == "access token"]) >= 3  # renewed twice
    export = _cli(db_url, tmp_path, "export")
    verify = _cli(db_url, tmp_path, "verify")
    assert export.returncode == 0 and verify.returncode == 0, (export.stderr, verify.stdout)
    assert len(export.stdout.splitlines()) == seen.audit_lines + seen_off.audit_lines
    output = capfd.readouterr()
    haystacks = [
        *seen.haystacks,
        *seen_off.haystacks,
        ("logs", captured_logs.getvalue()),
        ("audit export", export.stdout + export.stderr),
        ("audit verify", verify.stdout + verify.stderr),
        ("stdout", output.out),
        ("stderr", output.err),
        *_database_haystacks(db_url, tmp_path),
    ]
    _captured_everything(captured_logs.getvalue())
    # Seven failure paths; the unknown outcome ends with an error twice (checking, then failed).
    assert (len(seen.errors), len(seen_off.errors)) == (8, 1)
    assert seen.auth0_leaks == seen_off.auth0_leaks == []
    assert _hits([*seen.secrets, *seen_off.secrets], haystacks) == []
    assert seen.applied == [("POST", 201), ("PATCH", 201)]
    assert seen_off.applied == [("POST", 201)]


@pytest.mark.parametrize(
    "encode",
    [
        str,
        lambda v: quote(v, safe=""),
        quote_plus,
        json.dumps,
        lambda v: json.dumps(v, ensure_ascii=False),
        lambda v: base64.b64encode(v.encode()).decode(),
        lambda v: v.encode().hex(),
    ],
    ids=["raw", "url", "form", "json", "json-utf8", "base64", "hex"],
)
def test_the_search_finds_a_value_in_every_encoding(encode: Any) -> None:
    """The search is not vacuous: a value is found raw, URL-encoded, JSON-escaped or as bytes."""
    value = canary("probe")
    text = f"before {encode(value)} after"
    assert _hits([Secret("canary", value)], [("probe", text)]) != []
    assert _hits([Secret("token", "xoxb-probe-token")], [("probe", text)]) == []


APP_TOKEN = "xapp-1-A0APP-canary-app-token-0123456789"
# The variables of the settings table: the process gets only the ones the test sets.
_SETTING_PREFIXES = ("SLACK_", "AUTH0_", "HOOK_SECRET_", "DATABASE_URL", "PORT", "LOG_")


def _socket_env(slack: SlackStandIn, auth0: Auth0Sandbox, db: str, key: str) -> dict[str, str]:
    """An operator's settings for Socket Mode at DEBUG, pointed at the stand-ins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SETTING_PREFIXES)}
    return env | {
        "PYTHONPATH": str(REPO),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "AUTH0_DOMAIN": auth0.domain,
        "AUTH0_CLIENT_ID": auth0.client_id,
        "AUTH0_CLIENT_SECRET": "sandbox-client-secret",
        "AUTH0_BASE_URL": auth0.url,
        "HOOK_SECRET_REQUESTERS": REQUESTER,
        "HOOK_SECRET_APPROVERS": APPROVER,
        "HOOK_SECRET_APPROVAL_CHANNEL": APPROVALS,
        "HOOK_SECRET_ENCRYPTION_KEY": key,
        "DATABASE_URL": db,
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "json",
    }


def _socket_flow(slack: SlackStandIn, hook_id: str) -> None:
    """Over Socket Mode: a value typed into the command, then a request approved and applied."""
    with SlackDriver(slack, socket_mode=True) as driver:
        _socket_requests(slack, driver, hook_id)


def _socket_requests(slack: SlackStandIn, driver: SlackDriver, hook_id: str) -> None:
    text = f"add {hook_id} API_KEY={canary('socket-command')}"
    assert ":warning:" in driver.slash_command(REQUESTER, text, channel_id=ORIGIN).text
    assert driver.slash_command(REQUESTER, "add", channel_id=ORIGIN).status == 200
    view = slack.wait_for_view(REQUESTER, callback_id=ids.CALLBACK_ADD, timeout=10)
    option = {"text": {"type": "plain_text", "text": "Client Credentials Exchange"}}
    values = {
        ids.BLOCK_HOOK: {"selected_option": option | {"value": hook_id}},
        ids.BLOCK_SECRET_NAME: "SOCKET_KEY",
        ids.BLOCK_SECRET_VALUE: canary("socket-applied"),
        ids.BLOCK_REASON: "over socket mode",
    }
    assert driver.view_submission(REQUESTER, view, values).status == 200
    message = slack.wait_for_message(APPROVALS, _has_buttons, timeout=10)
    mark = slack.mark()
    driver.block_action(APPROVER, ids.ACTION_APPROVE, message=message, channel_id=APPROVALS)
    slack.wait_for("views.open", after=mark, timeout=10)
    decision = slack.wait_for_view(APPROVER, callback_id=ids.CALLBACK_APPROVE)
    assert driver.view_submission(APPROVER, decision, {ids.BLOCK_COMMENT: None}).status == 200
    slack.wait_for_message(ORIGIN, lambda m: "SOCKET_KEY" in m.get("text", ""), timeout=10)


def test_socket_mode_process_at_debug_prints_no_canary(tmp_path: Path) -> None:
    """``hook-secret-bot run`` in Socket Mode at LOG_LEVEL=DEBUG, a real process: its whole
    output and database hold no value, token or key, while Auth0 got the value once."""
    key = generate_key()
    with (
        SlackStandIn(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as slack,
        Auth0Sandbox() as auth0,
    ):
        for user, name in ((REQUESTER, "rita"), (APPROVER, "alex")):
            slack.add_user(user, name)
        slack.add_channel(APPROVALS, "secret-approvals")
        hook_id = auth0.add_hook("Client Credentials Exchange")
        env = _socket_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}", key)
        out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "run"],
                env=env,
                cwd=tmp_path,
                stdout=stdout,
                stderr=stderr,
            )
        try:
            slack.socket_mode.wait_connected(timeout=20)
            _socket_flow(slack, hook_id)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                status = proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
        assert status == 0, err.read_text()[-2000:]
        access_tokens = [
            json.loads(r.response_body)["access_token"]
            for r in auth0.requests
            if r.path == "/oauth/token" and r.status == 200
        ]
        posts = [r for r in auth0.requests if _in_json(canary("socket-applied"), r.body)]
        secrets_ = [
            Secret("canary", canary("socket-applied")),
            Secret("bot token", BOT_TOKEN),
            Secret("app token", APP_TOKEN),
            Secret("client secret", "sandbox-client-secret"),
            Secret("encryption key", key),
            *(Secret("access token", t) for t in access_tokens),
        ]
        output = out.read_text() + err.read_text()
        haystacks = [
            ("process output", output),
            *_slack_haystacks_of(slack),
            *((f"file {p.name}", p.read_bytes()) for p in sorted(tmp_path.glob("bot.db*"))),
        ]
    assert '"level": "debug"' in output and "on_message invoked" in output
    assert [r["event"] for r in map(json.loads, _audit_lines(output))][-1] == "secret.added"
    assert _hits(secrets_, haystacks) == []
    assert [(r.method, r.status) for r in posts] == [("POST", 201)]


def _audit_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith('{"audit":true')]


def _approval_for(name: str) -> Any:
    """A predicate: the approval message (with buttons) of the request for ``name``."""
    return lambda m: f"`{name}`" in m.get("text", "") and _has_buttons(m)


def _action_paths(bot: Bot, action_id: str) -> None:
    """Add (applied), then a rotation refused because someone left undeployed edits in the
    Dashboard, then list: each value a canary."""
    option = bot.services.targets[TargetKind.ACTION].find(action_id)
    assert option is not None
    picked = {"selected_option": hook_option(option).to_dict()}
    for text, name, label in (("add", "ACT_NEW", "action-applied"), ("update", "ACT_ONE", "")):
        view = bot.open_form(text=text)
        value = canary(label or "action-draft")
        ack = bot.submit(view, name=name, value=value, hook=picked)
        assert ack.status == 200 and not ack.body, ack.body
        message = bot.slack.wait_for_message(APPROVALS, _approval_for(name))
        if not label:  # someone edits ACT_TWO in the Dashboard and does not deploy
            bot.auth0.actions.edit(action_id, {"ACT_TWO": "dashboard"})
        _approve(bot, message)
    ack = bot.driver.slash_command(REQUESTER, f"list action:{action_id}", channel_id=ORIGIN)
    assert ack.status == 200
    bot.drain()


def test_action_canaries_surface_only_in_the_patch_that_carries_them(
    db_url: str, tmp_path: Path, captured_logs: io.StringIO
) -> None:
    """Action paths with canary values: each value reaches Auth0 only in its one whole-list
    PATCH, and appears nowhere the bot wrote (audit, Slack, acks, logs, database, errors)."""
    recorder = Recorder()
    with running_bot(db_url) as bot:
        bot.auth0.set_scopes(*FULL_SCOPES)
        bot.auth0.revoke_tokens()
        action_id = bot.auth0.actions.add("Enrich", {"ACT_ONE": "one", "ACT_TWO": "two"})
        recorder.attach(bot)
        _action_paths(bot, action_id)
        ends = ("secret.", "request.failed")
        outcomes = [(r["event"], r["outcome"]) for r in bot.audit() if r["event"].startswith(ends)]
        assert outcomes == [("secret.added", "applied"), ("request.failed", "draft_not_deployed")]
        seen = _observe(bot, recorder, ("action-applied", "action-draft"))
        path = f"/api/v2/actions/actions/{action_id}"
        carriers = [
            (r.method, r.path)
            for r in bot.auth0.requests
            if any(s.found_in(_blob(r.body)) for s in seen.secrets if s.label == "canary")
        ]
        assert carriers == [("PATCH", path)]
        assert seen.applied == [("PATCH", 200)]
        # Where it belongs: the body of that one PATCH (the hooks' rule knows only /secrets).
        (at,) = [n for n, r in enumerate(bot.auth0.requests) if r.method == "PATCH"]
        allowed = f"canary in auth0 request {at} PATCH {path} body"
        assert [leak for leak in seen.auth0_leaks if leak != allowed] == []
    haystacks = [
        *seen.haystacks,
        ("logs", captured_logs.getvalue()),
        *_database_haystacks(db_url, tmp_path),
    ]
    assert _hits(seen.secrets, haystacks) == []
