"""What ``hook-secret-bot run`` prints: its own lines at INFO, a plain reason it can't start."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from standins.auth0 import Auth0Sandbox
from standins.slack import SlackStandIn
from tests.harness.process import BOT_TOKEN, add_people, bot_env, free_port, running, start


def test_at_info_only_the_bots_own_lines_are_printed(tmp_path: Path) -> None:
    """Start (with a first migration) and SIGTERM: every line is the bot's, none alembic's,
    gunicorn's or Bolt's."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        env = bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}")
        with running(env, tmp_path / "run") as bot:
            assert bot.stop() == 0
    lines = bot.output().splitlines()
    records = [json.loads(line) for line in lines]
    assert {record["logger"] for record in records} == {"bot.serve.server"}, lines
    assert [r["event"] for r in records] == [
        "serving Slack over HTTP",
        "shutting down: finishing in-flight work",
        "shut down cleanly",
    ]


def test_at_debug_the_libraries_lines_are_back(tmp_path: Path) -> None:
    """LOG_LEVEL=DEBUG hides nothing: alembic's migration lines are there again."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        env = bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}", LOG_LEVEL="DEBUG")
        with running(env, tmp_path / "run") as bot:
            assert bot.stop() == 0
    records = [json.loads(line) for line in bot.stdout.read_text().splitlines()]
    loggers = {record["logger"].split(".")[0] for record in records}
    assert {"alembic", "gunicorn", "bot"} <= loggers


def test_cannot_start_is_the_first_thing_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal (console logs), an unreachable Slack makes the first line a plain
    ``cannot start: SLACK_API_URL: …``, and the exit status is 1."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        env = bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}")
    env["SLACK_API_URL"] = f"http://127.0.0.1:{free_port()}/api/"
    env.pop("LOG_FORMAT")  # the default: console on a terminal
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    printed = _read_all(primary)
    assert proc.wait(60) == 1
    first = printed.replace("\r\n", "\n").strip().splitlines()[0]
    assert first.startswith("cannot start: SLACK_API_URL: Slack can't be reached"), printed


def test_cannot_start_in_json_mode_keeps_its_log_line(tmp_path: Path) -> None:
    """Off a terminal the plain line goes to stderr and the JSON ``cannot start`` record to
    stdout, for log collectors."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        env = bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}")
    env["SLACK_API_URL"] = f"http://127.0.0.1:{free_port()}/api/"
    bot = start(env, tmp_path)
    assert bot.proc.wait(60) == 1
    assert bot.stderr.read_text().startswith("cannot start: SLACK_API_URL:")
    (record,) = [json.loads(line) for line in bot.stdout.read_text().splitlines()]
    assert record["event"] == "cannot start" and "SLACK_API_URL" in record["problem"]


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")
