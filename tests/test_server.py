"""``hook-secret-bot run`` for real: a subprocess under gunicorn (or Socket Mode) and stand-ins."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from bot.serve.wsgi import Health
from bot.slack import ids
from standins.auth0 import Auth0Sandbox
from standins.slack import SlackDriver, SlackStandIn
from tests.harness.process import (
    APP_TOKEN,
    BOT_TOKEN,
    ORIGIN,
    REQUESTER,
    SIGNING_SECRET,
    BotProcess,
    add_people,
    bot_env,
    confirmations,
    free_port,
    open_approval,
    running,
    secret_posts,
    start,
    submit_request,
)


@dataclass
class Served:
    """One bot process in HTTP mode on SQLite, shared by the tests of this module."""

    bot: BotProcess
    slack: SlackStandIn
    auth0: Auth0Sandbox
    driver: SlackDriver
    hook_id: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Start the stand-ins and one ``run`` process; SIGTERM it after the module."""
    workdir = tmp_path_factory.mktemp("served")
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        hook_id = auth0.add_hook("Client Credentials Exchange", secrets={"EXISTING": "old"})
        env = bot_env(slack, auth0, f"sqlite:///{workdir / 'bot.db'}")
        with running(env, workdir) as bot:
            with SlackDriver(slack, bot.events_url, SIGNING_SECRET) as driver:
                # One request first: Bolt's authorization calls auth.test once, at the first
                # request, and a test that counts Slack calls may be the first in its worker.
                mark = slack.mark()
                driver.slash_command(REQUESTER, "add", channel_id=ORIGIN)
                slack.wait_for("views.open", after=mark)
                yield Served(bot, slack, auth0, driver, hook_id)
            assert bot.stop() == 0


def _command_body(served: Served, text: str = "add") -> bytes:
    fields = served.driver.slash_command_fields(REQUESTER, text, channel_id=ORIGIN)
    return urlencode(fields).encode()


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


def test_healthz_answers_ok_while_the_database_answers(served: Served) -> None:
    """GET /healthz is 200 {"status": "ok"}; an unknown path is 404."""
    health = httpx.get(f"{served.bot.url}/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert health.content == b'{"status":"ok"}'  # exactly as CONTRACT §3 writes it
    assert httpx.get(f"{served.bot.url}/nowhere").status_code == 404


def test_a_signed_slash_command_opens_the_request_modal(served: Served) -> None:
    """A signed /hook-secret add is acked within Slack's 3 s and opens the request modal."""
    mark = served.slack.mark()
    ack = served.driver.slash_command(REQUESTER, "add", channel_id=ORIGIN)
    assert ack.status == 200 and ack.elapsed < 3.0
    opened = served.slack.wait_for("views.open", after=mark)
    assert opened.ok and opened.args["view"]["callback_id"] == ids.CALLBACK_ADD


@pytest.mark.parametrize("forgery", ["unsigned", "bad signature", "stale"])
def test_unsigned_badly_signed_or_stale_requests_get_401_and_change_nothing(
    served: Served, forgery: str
) -> None:
    """Requests Slack did not sign just now are refused with 401 and make no Slack call."""
    body = _command_body(served)
    headers = served.driver.signed_headers(body)
    if forgery == "unsigned":
        headers = {"Content-Type": headers["Content-Type"]}
    elif forgery == "bad signature":
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    else:
        headers = served.driver.signed_headers(body, timestamp=int(time.time()) - 6 * 60)
    before = _metric(
        httpx.get(f"{served.bot.url}/metrics").text,
        "hook_secret_bot_slack_requests_total",
        kind="slash_command",
        status="401",
    )
    mark = served.slack.mark()
    refused = served.driver.post_raw(body, headers)
    assert refused.status == 401
    # A genuine request sent afterwards is the only one that reaches Slack.
    served.driver.slash_command(REQUESTER, "help", channel_id=ORIGIN)
    good = served.driver.slash_command(REQUESTER, "add", channel_id=ORIGIN)
    assert good.status == 200
    served.slack.wait_for("views.open", after=mark)
    assert [c.method for c in served.slack.calls[mark:]] == ["views.open"]
    after = _metric(
        httpx.get(f"{served.bot.url}/metrics").text,
        "hook_secret_bot_slack_requests_total",
        kind="slash_command",
        status="401",
    )
    assert after == before + 1


def test_a_request_approved_over_http_lands_once_and_shows_in_metrics(served: Served) -> None:
    """Submit → approve → one Auth0 POST, a redacted confirmation, Auth0 counters in /metrics."""
    value = "v@lue-CANARY-server"
    slack, driver = served.slack, served.driver
    message = submit_request(slack, driver, served.hook_id, name="SRV_KEY", value=value)
    view = open_approval(served.slack, served.driver, message)
    ack = served.driver.view_submission("U0APP", view, {ids.BLOCK_COMMENT: "ok"})
    assert (ack.status, ack.body) == (200, b"")
    served.slack.wait_for_message(ORIGIN, lambda m: "SRV_KEY" in m.get("text", ""))
    assert served.auth0.secrets(served.hook_id)["SRV_KEY"] == value
    assert len([p for p in secret_posts(served.auth0) if b"SRV_KEY" in p.body]) == 1
    assert value not in str(served.slack.calls) and value not in served.bot.output()
    events = [r["event"] for r in served.bot.audit() if r.get("secret_name") == "SRV_KEY"]
    assert events == ["request.submitted", "approval.added", "request.approved", "secret.added"]
    metrics = httpx.get(f"{served.bot.url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert (
        _metric(text, "hook_secret_bot_auth0_calls_total", operation="post_secrets", status="201")
        == 1
    )
    assert (
        _metric(text, "hook_secret_bot_auth0_calls_total", operation="get_secrets", status="200")
        >= 1
    )
    assert _metric(text, "hook_secret_bot_auth0_call_seconds_count", operation="post_secrets") == 1
    assert (
        _metric(text, "hook_secret_bot_slack_requests_total", kind="view_submission", status="200")
        >= 2
    )
    assert "hook_secret_bot_auth0_rate_limit_waits_total 0.0" in text
    assert _metric(text, "hook_secret_bot_pending_requests") == 0
    lookups = [
        _metric(text, "hook_secret_bot_prefetch_lookups_total", result=r) for r in ("hit", "miss")
    ]
    assert sum(lookups) == 1  # the request form's submission looked for read-ahead names once


# -- processes of their own ---------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_invalid_settings_exit_2_naming_each_variable_before_binding(tmp_path: Path) -> None:
    """Missing or invalid settings: exit 2, one line per variable, and the port never taken."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        env = bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}")
    env.update(AUTH0_DOMAIN="not a domain", HOOK_SECRET_REQUESTERS="rita")
    port = int(env["PORT"])
    # Hold the port: a bot that tried to bind would fail differently (and only after retrying).
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", port))
        holder.listen()
        bot = start(env, tmp_path)
        assert bot.proc.wait(15) == 2
    lines = bot.stderr.read_text().splitlines()
    named = sorted(line.split(":")[0] for line in lines)
    assert named == ["AUTH0_DOMAIN", "HOOK_SECRET_REQUESTERS"]
    assert "gunicorn" not in bot.output() and "Listening" not in bot.output()
    assert _port_is_free(port)


def test_unreachable_slack_fails_before_binding(tmp_path: Path) -> None:
    """When Slack can't be reached the bot exits 1 naming SLACK_API_URL, without a port."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        env = bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}")
    env["SLACK_API_URL"] = f"http://127.0.0.1:{free_port()}/api/"
    bot = start(env, tmp_path)
    assert bot.proc.wait(30) == 1
    assert "SLACK_API_URL" in bot.output() and "Listening" not in bot.output()
    assert _port_is_free(int(env["PORT"]))


def test_healthz_is_503_once_the_database_is_gone(tmp_path: Path) -> None:
    """With its SQLite directory gone, /healthz is 503 at once and /metrics still answers."""
    data = tmp_path / "data"
    data.mkdir()
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        env = bot_env(slack, auth0, f"sqlite:///{data / 'bot.db'}")
        with running(env, tmp_path / "run") as bot:
            shutil.rmtree(data)
            started = time.monotonic()
            health = httpx.get(f"{bot.url}/healthz", timeout=10)
            assert health.status_code == 503 and time.monotonic() - started < 3.0
            assert health.json()["status"] != "ok"
            assert b" " not in health.content  # compact, as the 200 body
            metrics = httpx.get(f"{bot.url}/metrics", timeout=10)
            assert metrics.status_code == 200
            assert "hook_secret_bot_pending_requests NaN" in metrics.text
            assert bot.stop() == 0


def test_a_hanging_database_makes_healthz_unhealthy_within_its_deadline() -> None:
    """A ping that never returns counts as down once the deadline passes; pings don't pile up."""
    release = threading.Event()
    pings: list[int] = []

    def hanging_ping() -> bool:
        pings.append(1)
        release.wait(10)
        return True

    health = Health(hanging_ping, deadline=0.2)
    started = time.monotonic()
    assert health.ok() is False and health.ok() is False
    assert time.monotonic() - started < 1.0 and len(pings) == 1
    release.set()


def test_sigterm_lets_an_in_flight_apply_finish(tmp_path: Path) -> None:
    """SIGTERM right after an approval's ack: the slow apply still lands, then exit 0."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        hook_id = auth0.add_hook("Client Credentials Exchange")
        env = bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}")
        with (
            running(env, tmp_path / "run") as bot,
            SlackDriver(slack, bot.events_url, SIGNING_SECRET) as driver,
        ):
            message = submit_request(slack, driver, hook_id, name="SLOW_KEY")
            view = open_approval(slack, driver, message)
            auth0.latency = 1.5  # every Auth0 call of the apply now takes 1.5 s
            ack = driver.view_submission("U0APP", view, {ids.BLOCK_COMMENT: None})
            assert (ack.status, ack.body) == (200, b"")
            assert secret_posts(auth0) == []
            stopped = time.monotonic()
            assert bot.stop() == 0
            assert time.monotonic() - stopped >= 1.5  # it waited for Auth0
        assert auth0.secrets(hook_id) == {"SLOW_KEY": "s3cr3t-value-0123"}
        assert [p.status for p in secret_posts(auth0)] == [201]
        assert confirmations(slack, "SLOW_KEY")
        events = [r["event"] for r in bot.audit()]
        assert events[-1] == "secret.added"
        assert "shut down cleanly" in bot.output()


def test_socket_mode_slash_command_opens_the_modal(tmp_path: Path) -> None:
    """With SLACK_APP_TOKEN the bot connects over Socket Mode and a command opens the modal."""
    with SlackStandIn(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        env = bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}", SLACK_APP_TOKEN=APP_TOKEN)
        env.pop("SLACK_SIGNING_SECRET")
        with running(env, tmp_path / "run", ready=False) as bot:
            slack.socket_mode.wait_connected(timeout=20)
            driver = SlackDriver(slack, socket_mode=True)
            ack = driver.slash_command(REQUESTER, "add", channel_id=ORIGIN)
            assert ack.status == 200 and not ack.problems
            view = slack.wait_for_view(REQUESTER, callback_id=ids.CALLBACK_ADD)
            assert {b["block_id"] for b in view["blocks"]} >= {
                ids.BLOCK_HOOK,
                ids.BLOCK_SECRET_NAME,
                ids.BLOCK_SECRET_VALUE,
            }
            assert [e["type"] for e in slack.socket_mode.envelopes] == ["slash_commands"]
            assert bot.stop() == 0
        assert "connected to Slack through Socket Mode" in bot.output()
        assert json.dumps(APP_TOKEN) not in bot.output() and APP_TOKEN not in bot.output()
